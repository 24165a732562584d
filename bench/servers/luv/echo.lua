-- Line echo server on luv (Debian's lua-luv), in luv's callback idiom: a read callback per
-- client that buffers data and writes back each complete line. Part of bench/
-- (docs/performance.md).
-- Usage: lua5.4 echo.lua PORT
local uv = require("luv")

local port = assert(tonumber(arg[1]), "usage: echo.lua PORT")

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
  local pending = ""
  client:read_start(function(rerr, data)
    if rerr or not data then
      client:close()
      return
    end
    if pending ~= "" then data = pending .. data end
    local start = 1
    while true do
      local nl = data:find("\n", start, true)
      if not nl then break end
      client:write(data:sub(start, nl))
      start = nl + 1
    end
    pending = data:sub(start)
  end)
end))

uv.run()
