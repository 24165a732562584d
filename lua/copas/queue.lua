-- copas/queue.lua: `require "copas.queue"` for programs written for copas: uvsocket's copas.queue
-- (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").queue
