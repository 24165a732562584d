-- unix_echo.lua: a line-echo server on a Unix-domain socket, and clients, in one thread.
--
--   lua5.4 examples/unix_echo.lua [path] [clients]
--
-- The server and every client are tasks; a stale socket file at `path` is removed first.
local socket = require("socket")
local unix = require("socket.unix")
local async = socket.async

local path = arg[1] or os.tmpname() .. ".sock"
local n = tonumber(arg[2]) or 50
os.remove(path)

local answered = 0
async.run(function()
  local server = assert(unix.stream())
  assert(server:bind(path))
  assert(server:listen())
  async.spawn(function()
    for _ = 1, n do
      local c = assert(server:accept())
      async.spawn(function()
        for line in function() return c:receive() end do c:send(line .. "\n") end
        c:close()
      end)
    end
    server:close()
  end)
  for i = 1, n do
    async.spawn(function()
      local c = unix.stream()
      assert(c:connect(path))
      c:send("ping " .. i .. "\n")
      if c:receive() == "ping " .. i then answered = answered + 1 end
      c:close()
    end)
  end
end)
os.remove(path)
print(("%d/%d clients echoed over %s"):format(answered, n, path))
os.exit(answered == n and 0 or 1)
