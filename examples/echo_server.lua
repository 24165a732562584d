-- echo_server.lua: the introduction's echo server, made concurrent with socket.async.
--
--   lua5.4 examples/echo_server.lua [port]      serve on port (default: any free port)
--   lua5.4 examples/echo_server.lua --check [n] serve, and check it with n concurrent clients
--                                               (default 2000) in the same thread, then exit
--
-- Each connection gets its own task: it reads one line (10 s to send it), echoes it and closes,
-- exactly as the blocking original did one client at a time. The code inside the tasks is the
-- original's, unchanged: receive and send yield instead of blocking.
local socket = require("socket")
local async = socket.async

local check = arg[1] == "--check"
local clients = check and (tonumber(arg[2]) or 2000) or 0
local want_port = (not check and tonumber(arg[1])) or 0

local function serve(server)
  while true do
    local client = server:accept()
    if not client then break end  -- the server was closed
    async.spawn(function()
      client:settimeout(10)
      local line, err = client:receive()
      if not err then client:send(line .. "\n") end
      client:close()
    end)
  end
end

local function self_check(port, n)
  local ok, started = 0, socket.gettime()
  local finished = 0
  for i = 1, n do
    async.spawn(function()
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(10)
      c:send("hello from client " .. i .. "\n")
      if c:receive() == "hello from client " .. i then ok = ok + 1 end
      c:close()
      finished = finished + 1
    end)
  end
  while finished < n do async.sleep(0.01) end
  print(("%d/%d clients echoed in %.2f s"):format(ok, n, socket.gettime() - started))
  return ok == n
end

local passed = async.run(function()
  local server = assert(socket.bind("*", want_port))
  local _, port = server:getsockname()
  if not check then
    print("Please telnet to localhost on port " .. port)
    print("After connecting, you have 10s to enter a line to be echoed")
    serve(server)
    return true
  end
  async.spawn(serve, server)
  local result = self_check(port, clients)
  server:close()
  return result
end)
os.exit(passed and 0 or 1)
