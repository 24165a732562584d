-- bench/http_requests.lua: N sequential GETs of one URL with socket.http, for counting the
-- client's instructions per request with callgrind (wall-clock figures on a shared machine
-- move with the load; instruction counts do not). Run it twice, with N and with a tenth of N,
-- and divide the difference of the totals by the difference of the counts, so that start-up
-- does not count:
--
--   valgrind --tool=callgrind lua5.4 bench/http_requests.lua URL 2000 [pooled|plain]
--   valgrind --tool=callgrind lua5.4 bench/http_requests.lua URL 200 [pooled|plain]
--
-- `pooled` (the default) sends them through a keep-alive pool (http.setpool), `plain` with a
-- connection each. The URL must answer 200; bench/pool_bench.lua's nginx "hello" is one.
local http = require("socket.http")

local url = assert(arg[1], "usage: http_requests.lua URL [N] [pooled|plain]")
local n = tonumber(arg[2]) or 2000
local mode = arg[3] or "pooled"
assert(mode == "pooled" or mode == "plain", "mode: pooled or plain")
local p = http.pool()
if mode == "pooled" then http.setpool(p) end
for _ = 1, n do
  local body, code = http.request(url)
  assert(body and code == 200, code)
end
http.setpool(nil)
p:close()
