-- Timer accuracy on luv (Debian's lua-luv): N timers each expire ROUNDS times, and every
-- expiry's lateness is recorded. Part of bench/ (docs/performance.md).
-- Usage: lua5.4 timers.lua N ROUNDS LO_MS HI_MS
package.path = arg[0]:gsub("[^/]*/[^/]*$", "") .. "lib/?.lua;" .. package.path
local stats = require("timerstats")
local uv = require("luv")

local n, rounds, lo, hi = stats.args()
local late = {}

local function sleeper(i)
  local timer = uv.new_timer()
  local r, t0, d = 0, 0, 0
  local function arm()
    r = r + 1
    d = stats.interval_ms(i, r, lo, hi)
    t0 = uv.hrtime()
    timer:start(d, 0, function()
      late[#late + 1] = (uv.hrtime() - t0) / 1e9 - d / 1000
      if r < rounds then arm() else timer:close() end
    end)
  end
  arm()
end

local start = uv.hrtime()
for i = 1, n do sleeper(i) end
uv.run()
stats.report(n, late, (uv.hrtime() - start) / 1e9, os.clock())
