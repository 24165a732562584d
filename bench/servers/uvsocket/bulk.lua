-- Bulk echo server on uvsocket, in task mode. Part of bench/ (docs/performance.md).
-- Usage: lua5.4 bulk.lua PORT block|all
--   block: receive(65536) in a loop, each block sent back as it arrives
--   all:   receive("*a") (everything until the client half-closes), then one send
local socket = require("socket")
local async = socket.async

local port = assert(tonumber(arg[1]), "usage: bulk.lua PORT block|all")
local mode = arg[2] or "block"

local function serve_blocks(client)
  while true do
    local data, _, partial = client:receive(65536)
    if not data then
      if partial and #partial > 0 then client:send(partial) end
      break
    end
    client:send(data)
  end
  client:close()
end

local function serve_all(client)
  local data = client:receive("*a")
  if data then client:send(data) end
  client:close()
end

local serve = mode == "all" and serve_all or serve_blocks

-- With BENCH_STALL_FILE set (the stall scenario), a ticker task sleeps 1 ms at a time and
-- writes the longest gap between two of its ticks to that file whenever it grows: how long the
-- bulk transfer kept the other tasks waiting. Gaps are counted from BENCH_STALL_WARMUP seconds
-- after the first client came, as the load generator measures after its warm-up.
local first_client
local function ticker(path, warmup)
  local longest, last = 0, async.now()
  while true do
    async.sleep(0.001)
    local now = async.now()
    if first_client and now - first_client >= warmup and now - last > longest then
      longest = now - last
      local f = io.open(path .. ".new", "w")  -- renamed into place: never read half-written
      if f then
        f:write(("%.3f\n"):format(longest * 1000))
        f:close()
        os.rename(path .. ".new", path)
      end
    end
    last = now
  end
end

async.run(function()
  local stall = os.getenv("BENCH_STALL_FILE")
  if stall then
    async.spawn(ticker, stall, tonumber(os.getenv("BENCH_STALL_WARMUP")) or 0)
  end
  local server = assert(socket.bind("127.0.0.1", port))
  while true do
    local client = server:accept()
    first_client = first_client or async.now()
    if client then async.spawn(serve, client) end
  end
end)
