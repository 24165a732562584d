-- Timer accuracy on uvsocket: N tasks each sleep ROUNDS times with socket.sleep, and every
-- wake-up's lateness is recorded. Part of bench/ (docs/performance.md).
-- Usage: lua5.4 timers.lua N ROUNDS LO_MS HI_MS
package.path = arg[0]:gsub("[^/]*/[^/]*$", "") .. "lib/?.lua;" .. package.path
local stats = require("timerstats")
local socket = require("socket")
local async = socket.async

local n, rounds, lo, hi = stats.args()
local late = {}

local function sleeper(i)
  for r = 1, rounds do
    local d = stats.interval_ms(i, r, lo, hi) / 1000
    local t0 = async.now()
    socket.sleep(d)
    late[#late + 1] = async.now() - t0 - d
  end
end

local t0 = async.now()
async.run(function()
  for i = 1, n do async.spawn(sleeper, i) end
end)
stats.report(n, late, async.now() - t0, os.clock())
