-- websocket_chat.lua: a chat room over WebSocket: every text message a client sends goes to
-- every other client. Server and client in one file. Each client has a bounded send queue, so a
-- client that stops reading is dropped (on_full = "close") instead of growing the server.
--
--   lua5.4 examples/websocket_chat.lua [port]      the server, on 127.0.0.1
--   lua5.4 examples/websocket_chat.lua --client URL NAME   read lines from stdin, print the room
--   lua5.4 examples/websocket_chat.lua --check [N] a server and N clients (default 10)
local socket = require("socket")
local server = require("socket.http.server")
local websocket = require("socket.websocket")
local async = socket.async

local members = {}   -- websocket -> name

local function broadcast(from, text)
  for ws in pairs(members) do
    if ws ~= from then ws:send(text) end   -- a full queue closes that member, no one waits
  end
end

local function chat(req, res)
  local ws <close> = websocket.upgrade(req, res, { queue_size = 256 * 1024, on_full = "close",
    ping_interval = 30, max_message = 4096 })
  if not ws then return end
  local name = req:params().name or ("guest" .. math.random(1000))
  members[ws] = name
  broadcast(ws, name .. " joined")
  while true do
    local msg = ws:receive()
    if not msg then break end
    broadcast(ws, name .. ": " .. msg)
  end
  members[ws] = nil
  broadcast(ws, name .. " left")
end

local function listen(port)
  local srv = assert(server.listen{ port = port, handler = chat })
  return srv, select(2, srv:getsockname())
end

if arg[1] == "--client" then
  async.run(function()
    local ws = assert(websocket.connect(arg[2] .. "?name=" .. (arg[3] or "me")))
    async.spawn(function()
      while true do
        local msg = ws:receive()
        if not msg then return end
        print(msg)
      end
    end)
    for line in io.lines() do ws:send(line) end  -- (blocks the thread: fine for a demo)
    ws:close()
  end)
elseif arg[1] == "--check" then
  local n = tonumber(arg[2]) or 10
  async.run(function()
    local srv, port = listen(0)
    local clients, heard = {}, 0
    for i = 1, n do
      clients[i] = assert(websocket.connect(("ws://127.0.0.1:%d/?name=c%d"):format(port, i)))
    end
    async.sleep(0.2)          -- every join is announced before anyone speaks
    local g = async.group()
    for i, ws in ipairs(clients) do
      g:spawn(function()
        ws:send("hello from c" .. i)
        local want = {}
        for j = 1, n do if j ~= i then want["c" .. j .. ": hello from c" .. j] = true end end
        local left = n - 1
        while left > 0 do
          local msg = assert(ws:receive(5))
          if want[msg] then want[msg], left = nil, left - 1 end
        end
        heard = heard + 1
      end)
    end
    g:wait()
    for _, ws in ipairs(clients) do ws:close() end
    srv:close()
    print(("%d/%d clients heard every other client"):format(heard, n))
  end)
else
  async.run(function()
    local _, port = listen(tonumber(arg[1]) or 8080)
    print(("chat on ws://127.0.0.1:%d/ (join with --client ws://127.0.0.1:%d/ NAME)"):format(
      port, port))
    async.signal("SIGINT")
    async.shutdown(2)
  end)
end
