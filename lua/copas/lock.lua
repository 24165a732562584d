-- copas/lock.lua: `require "copas.lock"` for programs written for copas: uvsocket's copas.lock
-- (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").lock
