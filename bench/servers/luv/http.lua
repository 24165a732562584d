-- HTTP/1.1 keep-alive "hello" server on luv (Debian's lua-luv), in luv's callback idiom: the
-- read callback buffers data and answers each complete request head. Part of bench/
-- (docs/performance.md).
-- Usage: lua5.4 http.lua PORT
local uv = require("luv")

local port = assert(tonumber(arg[1]), "usage: http.lua PORT")

local RESPONSE = "HTTP/1.1 200 OK\r\n" ..
                 "Content-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n" ..
                 "\r\n" ..
                 "Hello, World!"

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
      local head_end = data:find("\r\n\r\n", start, true)
      if not head_end then break end
      local head = data:sub(start, head_end):lower()
      client:write(RESPONSE)
      start = head_end + 4
      if head:find("\nconnection: close", 1, true) then
        client:shutdown(function() client:close() end)
        return
      end
    end
    pending = data:sub(start)
  end)
end))

uv.run()
