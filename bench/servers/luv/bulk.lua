-- Bulk echo server on luv (Debian's lua-luv). Part of bench/ (docs/performance.md).
-- Usage: lua5.4 bulk.lua PORT block|all
--   block: every chunk read is written back at once
--   all:   chunks are collected until the client half-closes, then written back in one go
local uv = require("luv")

local port = assert(tonumber(arg[1]), "usage: bulk.lua PORT block|all")
local mode = arg[2] or "block"

local function finish(client)
  client:shutdown(function() client:close() end)
end

-- A client that goes away while data is being written must not kill the server: handling
-- SIGPIPE (with a handler that does nothing) keeps its default action away.
local sigpipe = uv.new_signal()
sigpipe:start("sigpipe", function() end)
sigpipe:unref()

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", port))
assert(server:listen(4096, function(err)
  if err then return end
  local client = uv.new_tcp()
  server:accept(client)
  local chunks = {}
  client:read_start(function(rerr, data)
    if rerr then
      client:close()
    elseif not data then
      if mode == "all" then client:write(table.concat(chunks)) end
      finish(client)
    elseif mode == "all" then
      chunks[#chunks + 1] = data
    else
      client:write(data)
    end
  end)
end))

uv.run()
