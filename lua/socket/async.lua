-- socket/async.lua: the `socket.async` namespace: the scheduler's C functions (run, spawn,
-- sleep, timeout, signal, status, ...) and the parts written in Lua: structured concurrency
-- (group), timers, synchronisation (lock, semaphore, queue, event, condition) and servers
-- (serve, shutdown, worker processes).
--
-- Loading it also replaces coroutine.resume, coroutine.wrap and coroutine.close with versions
-- that behave the same, except that a coroutine resumed by a task can wait on a socket (the
-- wait is passed up to the scheduler instead of blocking the thread), and that closing a task's
-- coroutine ends the task cleanly (docs/async.md).
local core = require("socket.core")

local M = core.async

-- Replacing the standard functions is the point here (see above).
coroutine.resume = M._coroutine.resume -- luacheck: ignore 122
coroutine.wrap = M._coroutine.wrap -- luacheck: ignore 122
coroutine.close = M._coroutine.close or coroutine.close -- luacheck: ignore 122

local function merge(name)
  for k, v in pairs(require("socket.async." .. name)) do M[k] = v end
end

merge("sync")
merge("group")
merge("timer")
merge("serve")

-- Worker processes: serve{workers = N} itself goes through serve (above).
local workers = require("socket.async.workers")
M.worker = workers.worker
M.exiting = workers.exiting

return M
