-- waitfd_spec.lua: socket.async.waitfd and cancelfd, on a pipe and on a descriptor no uvsocket
-- socket owns, in blocking mode and in tasks.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

-- The descriptor number of a FIFO opened with io.open, read from /proc (Lua does not give it).
local function fd_of(path)
  local stat = assert(io.open("/proc/self/stat")):read("l")
  local pid = stat:match("^(%d+)")
  local ls = assert(io.popen("ls -l /proc/" .. pid .. "/fd"))
  local out = ls:read("a")
  ls:close()
  for line in out:gmatch("[^\n]+") do
    local n, target = line:match("(%d+) %-> (.*)$")
    if target == path then return tonumber(n) end
  end
end

-- A FIFO open for reading and writing (so opening it does not block): returns the FILE* and fd.
local function fifo()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkfifo " .. path))
  local f = assert(io.open(path, "r+"))
  f:setvbuf("no")
  local fd = assert(fd_of(path), "descriptor of the fifo")
  return f, fd, path
end

H.modes("async.waitfd", function(run, mode)
  it("waits until a pipe is readable", function()
    run(function()
      local f, fd, path = fifo()
      assert.are.same({ nil, "timeout" }, { async.waitfd(fd, "r", 0.05) })
      assert.are.equal("w", async.waitfd(fd, "w", 1))
      f:write("x")
      assert.are.equal("r", async.waitfd(fd, "r", 1))
      assert.are.equal("rw", async.waitfd(fd, "rw", 1))
      assert.are.equal("x", f:read(1))
      f:close()
      os.remove(path)
    end)
  end)

  it("waits on a descriptor that a socket gave away", function()
    run(function()
      local c, s = H.pair()
      local fd = s:getfd()
      s:setfd(-1)  -- the descriptor is foreign now, as after LuaSec's wrap
      assert.are.same({ nil, "timeout" }, { async.waitfd(fd, "r", 0.05) })
      c:send("ping\n")
      assert.are.equal("r", async.waitfd(fd, "r", 2))
      -- hand it to a new object to read and close it
      local t = socket.tcp()
      t:setfd(fd)
      t:close()
      c:close()
    end)
  end)

  it("checks its arguments", function()
    run(function()
      assert.has_error(function() async.waitfd(-1, "r") end)
      assert.has_error(function() async.waitfd(0, "x") end)
      assert.has_error(function() async.waitfd("a", "r") end)
      assert.has_error(function() async.waitfd(0) end)
    end)
  end)

  if mode == "task" then
    it("other tasks run while one waits, and cancel ends the wait", function()
      local f, fd, path = fifo()
      async.run(function()
        local r
        local t = async.spawn(function() r = { async.waitfd(fd, "r") }; return true end)
        local ticks = 0
        for _ = 1, 5 do async.sleep(0.01); ticks = ticks + 1 end
        assert.are.equal(5, ticks)
        assert.are.equal("waiting", t:status())
        t:cancel()
        assert(t:join(1))
        assert.are.same({ nil, "cancelled" }, r)
        -- a deadline scope bounds it too
        assert.are.same({ nil, "timeout" }, { async.timeout(0.05, async.waitfd, fd, "r") })
      end)
      f:close()
      os.remove(path)
    end)

    it("cancelfd ends the waits before the descriptor is closed", function()
      local f, fd, path = fifo()
      async.run(function()
        local r1, r2
        local t1 = async.spawn(function() r1 = { async.waitfd(fd, "r") }; return true end)
        local entry = { getfd = function() return fd end }
        local t2 = async.spawn(function()
          r2 = { socket.select({ entry }, nil, 5) }
          return true
        end)
        async.sleep(0.02)
        assert.are.equal(2, async.cancelfd(fd))
        assert(t1:join(1))
        assert(t2:join(1))
        assert.are.same({ nil, "closed" }, r1)
        assert.are.equal(entry, r2[1][1], "the select reports the descriptor as ready")
        assert.are.equal(0, async._debug().watchers, "nobody watches the descriptor any more")
        assert.are.equal(0, async.cancelfd(fd))
      end)
      f:close()
      os.remove(path)
    end)

    it("shares the socket's own watcher with the socket's calls", function()
      async.run(function()
        local c, s = H.pair()
        local line, ready
        local reader = async.spawn(function() line = s:receive("*l"); return true end)
        local watcher = async.spawn(function()
          ready = async.waitfd(s:getfd(), "r", 2)
          return true
        end)
        async.sleep(0.02)
        c:send("both\n")
        assert(reader:join(2))
        assert(watcher:join(2))
        assert.are.equal("both", line)
        assert.are.equal("r", ready)
        c:close(); s:close()
      end)
    end)
  end
end)
