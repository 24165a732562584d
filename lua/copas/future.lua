-- copas/future.lua: `require "copas.future"` for programs written for copas: uvsocket's
-- copas.future (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").future
