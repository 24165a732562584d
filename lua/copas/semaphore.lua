-- copas/semaphore.lua: `require "copas.semaphore"` for programs written for copas: uvsocket's
-- copas.semaphore (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").semaphore
