-- async/timer.lua: callbacks on the clock. Each timer is a task sleeping on the scheduler's
-- deadline heap, so an idle program with timers wakes only when one is due. Both return the
-- task; task:cancel() stops the timer.
local core = require("socket.core")
local args = require("socket.async.args")

local async = core.async
local spawn, sleep, now = async.spawn, async.sleep, async.now
local error, type = error, type
local check_func = args.func

local M = {}

-- async.after(seconds, fn, ...) -> task: calls fn(...) once, `seconds` from now.
function M.after(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds ~= seconds then
    error("bad argument #1 to 'after' (number expected, got " ..
      (seconds ~= seconds and "nan" or args.typename(seconds)) .. ")", 2)
  end
  check_func(fn, 2, "after")
  return spawn(function(...)
    local _, err = sleep(seconds)
    if err then return end
    return fn(...)
  end, ...)
end

-- async.every(seconds, fn, ...) -> task: calls fn(...) every `seconds`, without drift, until the
-- task is cancelled or fn returns false.
function M.every(seconds, fn, ...)
  if type(seconds) ~= "number" or not (seconds > 0) then  -- NaN is refused too
    error("bad argument #1 to 'every' (positive number expected)", 2)
  end
  check_func(fn, 2, "every")
  return spawn(function(...)
    local due = now() + seconds
    while true do
      local _, err = sleep(math.max(0, due - now()))
      if err then return end
      if fn(...) == false then return end
      due = due + seconds
      local t = now()
      if due < t then due = t end  -- fell behind: do not fire a burst to catch up
    end
  end, ...)
end

return M
