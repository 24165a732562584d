-- Shared by the timers.lua scripts of bench/servers: the interval sequence every
-- implementation sleeps through, and the one-line report of how late the wake-ups came.
local M = {}

-- The i-th task's r-th interval, in milliseconds, between lo and hi (same formula as uvtimers.c).
function M.interval_ms(i, r, lo, hi)
  return lo + (i * 7919 + r * 104729) % (hi - lo + 1)
end

-- Prints the report line; `late` holds lateness values in seconds.
function M.report(tasks, late, wall, cpu)
  table.sort(late)
  local n = #late
  local early = 0
  for k = 1, n do
    if late[k] < 0 then early = early + 1 end
  end
  local function q(p)
    local k = math.max(1, math.min(n, math.ceil(p * n)))
    return late[k] * 1000
  end
  print(("tasks=%d wakeups=%d early=%d late_p50_ms=%.3f late_p99_ms=%.3f late_max_ms=%.3f " ..
         "wall_s=%.3f cpu_s=%.3f"):format(tasks, n, early, q(0.5), q(0.99), q(1.0), wall, cpu))
end

-- The command-line arguments N ROUNDS LO_MS HI_MS, checked.
function M.args()
  local n, rounds, lo, hi = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  assert(n and rounds and lo and hi, "usage: timers.lua N ROUNDS LO_MS HI_MS")
  return n, rounds, lo, hi
end

return M
