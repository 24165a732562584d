-- chat_server.lua: a line-based chat room. Every line a client sends goes to every other
-- client. Each client has a reader task (its serve() handler) and a writer task fed by a
-- bounded queue, so one slow client cannot hold up the others: when its queue is full it is
-- disconnected. Ctrl-C (SIGINT) or SIGTERM shuts the server down gracefully.
--
--   lua5.4 examples/chat_server.lua [port]         serve (default: any free port)
--   lua5.4 examples/chat_server.lua --check [n]    serve, let n clients chat (default 20), exit
local socket = require("socket")
local async = socket.async

local check = arg[1] == "--check"
local nclients = check and (tonumber(arg[2]) or 20) or 0

local members = {}  -- client socket -> its outgoing queue

local function broadcast(from, line)
  for client, q in pairs(members) do
    if client ~= from and not q:put(line, 0) then
      client:close()  -- too slow to keep up: its tasks end with "closed"
    end
  end
end

local function handle(client)
  client:settimeout(300)
  local q = async.queue(100)
  members[client] = q
  local writer = async.spawn(function()
    for line in q:items() do
      if not client:send(line .. "\n") then break end
    end
  end)
  local name = "guest" .. select(2, client:getpeername())
  broadcast(client, "* " .. name .. " joined")
  while true do
    local line = client:receive()
    if not line then break end
    if line:match("^/nick %S+$") then
      local new = line:match("^/nick (%S+)$")
      broadcast(client, "* " .. name .. " is now " .. new)
      name = new
    else
      broadcast(client, name .. ": " .. line)
    end
  end
  members[client] = nil
  q:close()
  writer:join(1)
  broadcast(client, "* " .. name .. " left")
end

-- The self-check: n clients join, each says one line, and each must hear all the others.
local function self_check(port, n)
  local heard, done = {}, 0
  local all_joined = async.event()
  local joined = 0
  local g = async.group()
  for i = 1, n do
    g:spawn(function()
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(10)
      c:send("/nick user" .. i .. "\n")
      joined = joined + 1
      if joined == n then all_joined:set() end
      all_joined:wait()
      async.sleep(0.05)  -- let every nick change reach the server
      c:send("hello from " .. i .. "\n")
      heard[i] = 0
      while heard[i] < n - 1 do
        local line = c:receive()
        if not line then break end
        if line:match("^user%d+: hello from %d+$") then heard[i] = heard[i] + 1 end
      end
      c:close()
      done = done + 1
    end)
  end
  g:wait()
  local ok = 0
  for i = 1, n do if heard[i] == n - 1 then ok = ok + 1 end end
  print(("%d/%d clients heard every other client"):format(ok, n))
  return ok == n
end

local passed = async.run(function()
  local server = assert(socket.bind("*", check and 0 or (tonumber(arg[1]) or 0)))
  local _, port = server:getsockname()
  async.serve(server, handle)
  if check then
    local ok = self_check(port, nclients)
    async.shutdown(1)
    return ok
  end
  print("chat server on port " .. port .. "; Ctrl-C stops it")
  -- wait for whichever of SIGINT and SIGTERM comes first
  local signals = async.group()
  for _, name in ipairs({ "SIGINT", "SIGTERM" }) do
    signals:spawn(function()
      if async.signal(name) then signals:cancel() end
    end)
  end
  signals:wait()
  print("shutting down: " .. async.shutdown(5) .. " client(s) had to be cut off")
  return true
end)
os.exit(passed and 0 or 1)
