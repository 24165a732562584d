-- HTTP/1.1 keep-alive "hello" server on uvsocket, in task mode: a task per connection reads
-- the request line and headers with receive("*l") and sends a fixed response. Part of bench/
-- (docs/performance.md).
-- Usage: lua5.4 http.lua PORT [WORKERS]   (WORKERS: serve in that many worker processes,
-- 0 for one per core, through async.serve{workers = N}; the accept loop is then serve's)
local socket = require("socket")
local async = socket.async

local port = assert(tonumber(arg[1]), "usage: http.lua PORT [WORKERS]")
local workers = tonumber(arg[2])

local RESPONSE = "HTTP/1.1 200 OK\r\n" ..
                 "Content-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n" ..
                 "\r\n" ..
                 "Hello, World!"

local function serve(client)
  while true do
    local request = client:receive("*l")
    if not request then break end
    local close = false
    while true do
      local header = client:receive("*l")
      if not header then
        client:close()
        return
      end
      if header == "" then break end
      if header:lower() == "connection: close" then close = true end
    end
    client:send(RESPONSE)
    if close then break end
  end
  client:close()
end

if workers then
  async.serve(assert(socket.bind("127.0.0.1", port, 1024)), serve, { workers = workers })
  return
end

async.run(function()
  local server = assert(socket.bind("127.0.0.1", port))
  while true do
    local client = server:accept()
    if client then async.spawn(serve, client) end
  end
end)
