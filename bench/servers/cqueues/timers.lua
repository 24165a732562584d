-- Timer accuracy on cqueues (Debian's lua-cqueues): N coroutines each sleep ROUNDS times with
-- cqueues.sleep, and every wake-up's lateness is recorded. Part of bench/
-- (docs/performance.md).
-- Usage: lua5.4 timers.lua N ROUNDS LO_MS HI_MS
package.path = arg[0]:gsub("[^/]*/[^/]*$", "") .. "lib/?.lua;" .. package.path
local stats = require("timerstats")
local cqueues = require("cqueues")

local n, rounds, lo, hi = stats.args()
local late = {}

local function sleeper(i)
  for r = 1, rounds do
    local d = stats.interval_ms(i, r, lo, hi) / 1000
    local t0 = cqueues.monotime()
    cqueues.sleep(d)
    late[#late + 1] = cqueues.monotime() - t0 - d
  end
end

local cq = cqueues.new()
local start = cqueues.monotime()
for i = 1, n do cq:wrap(sleeper, i) end
assert(cq:loop())
stats.report(n, late, cqueues.monotime() - start, os.clock())
