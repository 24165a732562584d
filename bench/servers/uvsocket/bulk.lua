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

async.run(function()
  local server = assert(socket.bind("127.0.0.1", port))
  while true do
    local client = server:accept()
    if client then async.spawn(serve, client) end
  end
end)
