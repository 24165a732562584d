-- HTTP/1.1 keep-alive "hello" server on cqueues (Debian's lua-cqueues): a coroutine per
-- connection reads the request line and headers with read("*l") and writes a fixed response.
-- Part of bench/ (docs/performance.md).
-- Usage: lua5.4 http.lua PORT
local cqueues = require("cqueues")
local socket = require("cqueues.socket")

local port = assert(tonumber(arg[1]), "usage: http.lua PORT")

local RESPONSE = "HTTP/1.1 200 OK\r\n" ..
                 "Content-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n" ..
                 "\r\n" ..
                 "Hello, World!"

socket.onerror(function(_, _, why) return why end)

local function serve(client)
  client:setmode("t", "bn")
  while true do
    local request = client:read("*l")
    if not request then break end
    local close = false
    while true do
      local header = client:read("*l")
      if not header then
        client:close()
        return
      end
      if header == "" then break end
      if header:lower() == "connection: close" then close = true end
    end
    client:write(RESPONSE)
    if close then break end
  end
  client:close()
end

local cq = cqueues.new()
local server = assert(socket.listen("127.0.0.1", port))

cq:wrap(function()
  for client in server:clients() do
    cq:wrap(serve, client)
  end
end)

assert(cq:loop())
