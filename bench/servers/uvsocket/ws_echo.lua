-- WebSocket echo server on socket.http.server and socket.websocket: every message goes back to
-- its sender. Part of bench/ (docs/performance.md).
-- Usage: lua5.4 ws_echo.lua PORT
local socket = require("socket")
local server = require("socket.http.server")
local websocket = require("socket.websocket")

local port = assert(tonumber(arg[1]), "usage: ws_echo.lua PORT")

socket.async.run(function()
  assert(server.listen{ host = "127.0.0.1", port = port, max_connections = 20000,
    handler = function(req, res)
      local ws = websocket.upgrade(req, res)
      if not ws then return end
      while true do
        local msg, kind = ws:receive()
        if not msg then break end
        ws:send(msg, kind)
      end
    end })
end)
