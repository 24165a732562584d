-- echo_client.lua: n concurrent clients for a line-echo server, in one thread.
--
--   lua5.4 examples/echo_client.lua host port [n]
--
-- Every client is an ordinary blocking-style function run as a task: connect, send a line,
-- read the echo. Exits with status 0 when every client got its line back.
local socket = require("socket")
local async = socket.async

local host, port, n = arg[1] or "127.0.0.1", tonumber(arg[2]), tonumber(arg[3]) or 100
if not port then
  io.stderr:write("usage: echo_client.lua host port [clients]\n")
  os.exit(2)
end

local function client(i)
  local c, err = socket.connect(host, port)
  if not c then return false, err end
  c:settimeout(10)
  local line = ("client %d says hello"):format(i)
  c:send(line .. "\n")
  local back
  back, err = c:receive()
  c:close()
  return back == line, err
end

local ok, failed = 0, 0
local started = socket.gettime()
async.run(function()
  for i = 1, n do
    async.spawn(function()
      if client(i) then ok = ok + 1 else failed = failed + 1 end
    end)
  end
end)
print(("%d/%d clients echoed in %.2f s"):format(ok, n, socket.gettime() - started))
os.exit(failed == 0 and 0 or 1)
