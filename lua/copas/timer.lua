-- copas/timer.lua: `require "copas.timer"` for programs written for copas: uvsocket's copas.timer
-- (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").timer
