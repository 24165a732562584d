-- Regression 206: numbers outside int's range reached C++ casts to int (undefined behaviour).
--
-- listen(backlog), setfd(fd), setstats(...), setoption for integer options and linger, the
-- IPv6 multicast interface and udp:receive(size) cast the Lua number they were given straight
-- to an integer type, so 1e308, math.huge or NaN gave whatever the machine made of it (on
-- x86-64 INT_MIN: setfd(1e308) set the descriptor to -2147483648, setstats(1e308) stored
-- -9.2e18) and the sanitizer build, with float-cast-overflow, aborted. The numbers are now
-- truncated and clamped to the type's range (NaN to a neutral value), and an integer option
-- given something that is not a number raises instead of silently setting 0.
local socket = require("socket")
local H = require("support.helpers").use(_ENV)

H.modes("regression 206", function(run)
  it("listen takes any backlog", function()
    run(function()
      for _, backlog in ipairs({ 1e308, math.huge, -math.huge, 0 / 0, -1e308, 2 ^ 31 }) do
        local srv = socket.tcp4()
        assert(srv:bind("127.0.0.1", 0))
        assert(srv:listen(backlog))
        local _, port = srv:getsockname()
        local c = assert(socket.connect("127.0.0.1", port))
        c:close()
        srv:close()
      end
    end)
  end)

  it("setfd clamps the descriptor to int's range", function()
    run(function()
      local s = socket.tcp4()
      local fd = s:getfd()
      s:setfd(1e308)
      assert.are.equal(2147483647, s:getfd())
      s:setfd(-math.huge)
      assert.are.equal(-2147483648, s:getfd())
      s:setfd(0 / 0)
      assert.are.equal(-1, s:getfd())
      s:setfd(fd)
      assert.are.equal(fd, s:getfd())
      s:close()
    end)
  end)

  it("setstats keeps huge and infinite counts", function()
    run(function()
      local c, s = H.pair()
      assert(c:setstats(1e308, -math.huge, 0))
      local received, sent = c:getstats()
      assert.are.equal(1e308, received)
      assert.are.equal(-math.huge, sent)
      assert(c:setstats(0 / 0, 2.75))
      received, sent = c:getstats()
      assert.are.equal(0, received)
      assert.are.equal(2, sent)
      c:close()
      s:close()
    end)
  end)

  it("integer options clamp numbers and refuse other values", function()
    run(function()
      local s = socket.tcp4()
      for _, v in ipairs({ 1e308, -1e308, math.huge, 0 / 0 }) do
        local ok, err = s:setoption("recv-buffer-size", v)
        assert.is_true(ok == 1 or err == "setsockopt failed")
      end
      assert(s:getoption("recv-buffer-size"))
      local ok, err = pcall(s.setoption, s, "recv-buffer-size", {})
      assert.is_false(ok)
      assert.matches("bad argument #3 to '[%w?]+' %(number expected, got table%)", err)
      assert.are.equal(1, s:setoption("linger", { on = true, timeout = 1e308 }))
      assert.are.equal(1, s:setoption("linger", { on = false, timeout = 0 / 0 }))
      s:close()
    end)
  end)

  it("udp:receive with a size beyond any datagram returns at once", function()
    run(function()
      local u = socket.udp4()
      assert(u:setsockname("127.0.0.1", 0))
      u:settimeout(0.2)
      for _, size in ipairs({ 1e308, math.huge, 2 ^ 63, 2 ^ 63 + 4096 }) do
        local took, r, err = H.timed(u.receive, u, size)
        assert.is_nil(r)
        assert.is_string(err)
        assert.is_true(took < 2)
      end
      u:close()
    end)
  end)
end)
