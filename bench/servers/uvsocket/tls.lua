-- The uvsocket side of the TLS scenarios (bench/tls_bench.py), in task mode, on socket.tls.
-- Usage:
--   lua5.4 tls.lua bulk-server PORT CERT KEY   like tlsbulk server: read all, answer one byte
--   lua5.4 tls.lua bulk-client PORT MB         like tlsbulk client: prints bytes= seconds= mbps=
--   lua5.4 tls.lua server PORT CERT KEY        handshakes (for openssl s_time): reads until closed
--   lua5.4 tls.lua https PORT CERT KEY         HTTP/1.1 keep-alive hello over TLS (for wrk)
local socket = require("socket")
local tls = require("socket.tls")
local async = socket.async

local mode, port = arg[1], tonumber(arg[2])
local cert, key = arg[3], arg[4]

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
  .. "Hello, World!"

local handlers = {}

function handlers.bulk(c)
  while c:receive(65536) do end  -- "closed" at the client's close_notify
  c:send("k")
end

function handlers.server(c)
  while c:receiveany(65536) do end
end

function handlers.https(c)
  while true do
    if not c:receive("*l") then return end
    while true do
      local header = c:receive("*l")
      if not header then return end
      if header == "" then break end
    end
    c:send(RESPONSE)
  end
end

async.run(function()
  if mode == "bulk-client" then
    local c = assert(tls.connect("127.0.0.1", port, { verify = "none" }))
    local block = ("x"):rep(65536)
    local total = tonumber(arg[3]) * 1048576
    local t0 = async.now()
    for _ = 1, total // #block do assert(c:send(block)) end
    c:shutdown("send")
    c:receive(1)
    local secs = async.now() - t0
    print(("bytes=%d seconds=%.3f mbps=%.1f"):format(total, secs, total / secs / 1048576))
    c:close()
    return
  end
  local server = assert(socket.bind("127.0.0.1", port))
  print("listening port " .. port)
  io.stdout:flush()
  local handler = handlers[mode == "bulk-server" and "bulk" or mode]
  async.serve(server, function(c)
    c:settimeout(60)
    handler(c)
  end, { tls = { certificate = cert, key = key } })
  async.signal("SIGTERM")
  async.shutdown(0)
end)
