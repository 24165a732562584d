-- Bulk echo server on cqueues (Debian's lua-cqueues). Part of bench/ (docs/performance.md).
-- Usage: lua5.4 bulk.lua PORT block|all
--   block: read(65536) in a loop, each block written back as it arrives ("-65536" would
--          return partial blocks; a fixed count is what receive(65536) does)
--   all:   read("*a") until the client half-closes, then one write
local cqueues = require("cqueues")
local socket = require("cqueues.socket")

local port = assert(tonumber(arg[1]), "usage: bulk.lua PORT block|all")
local mode = arg[2] or "block"

socket.onerror(function(_, _, why) return why end)

local function serve_blocks(client)
  while true do
    local data = client:read(65536)
    if not data then break end
    client:write(data)
  end
  client:close()
end

local function serve_all(client)
  local data = client:read("*a")
  if data then client:write(data) end
  client:close()
end

local serve = mode == "all" and serve_all or serve_blocks

local cq = cqueues.new()
local server = assert(socket.listen("127.0.0.1", port))

cq:wrap(function()
  for client in server:clients() do
    cq:wrap(function()
      client:setmode("b", "bn")
      serve(client)
    end)
  end
end)

assert(cq:loop())
