-- select_spec.lua: socket.select in both modes, without a descriptor ceiling.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

teardown(H.cleanup)

describe("socket.select arguments", function()
  after_each(H.assert_clean)

  it("raises for sets that are not tables", function()
    local ok, err = pcall(socket.select, "wrong", nil, 0)
    assert.is_false(ok)
    assert.matches("table expected, got string", err)
    assert.is_false(pcall(socket.select, {}, 1, 0))
    assert.has_error(function() socket.select({ 1 }, nil, 0) end)  -- a number has no getfd
  end)

  it("ignores entries without getfd, closed sockets, and stops at the first hole", function()
    local u = socket.udp4()
    u:close()
    local r, w, e = socket.select({ "text", {}, u }, { u }, 0)
    assert.are.same({}, r)
    assert.are.same({}, w)
    assert.are.equal("timeout", e)
    local c, s = H.pair()
    r, w = socket.select(nil, { c, nil, s }, 0)
    assert.are.same({}, r)
    assert.are.equal(1, #w)
    assert.are.equal(c, w[1])
    c:close(); s:close()
  end)

  it("returns empty tables and timeout with nothing to wait for", function()
    local r, w, e = socket.select(nil, nil, 0.05)
    assert.are.same({ {}, {}, "timeout" }, { r, w, e })
  end)
end)

H.modes("socket.select", function(run)
  it("reports readable and writable sockets, indexed both ways", function()
    run(function()
      local c, s = H.pair()
      local r, w, e = socket.select({ s }, { c }, 1)
      assert.is_nil(e)
      assert.are.same({}, r)
      assert.are.equal(c, w[1])
      assert.are.equal(1, w[c])
      c:send("ping\n")
      r, w, e = socket.select({ s, s }, nil, 1)  -- a socket listed twice appears once
      assert.are.same({}, w)
      assert.are.equal(1, #r)
      assert.are.equal(s, r[1])
      assert.are.equal(1, r[s])
      assert.is_nil(e)
      c:close(); s:close()
    end)
  end)

  it("times out when nothing is ready", function()
    run(function()
      local c, s = H.pair()
      local dt, r, w, e = H.timed(socket.select, { s }, nil, 0.1)
      assert.are.same({ {}, {}, "timeout" }, { r, w, e })
      assert.is_true(dt >= 0.09 and dt < 2, dt)
      c:close(); s:close()
    end)
  end)

  it("returns dirty sockets at once", function()
    run(function()
      local c, s = H.pair()
      c:send("one\ntwo\n")
      assert.are.equal("one", s:receive())
      assert.is_true(s:dirty())
      -- the kernel has nothing more, but the buffer has: ready without waiting
      local dt, r = H.timed(socket.select, { s }, nil, 5)
      assert.are.equal(s, r[1])
      assert.is_true(dt < 0.5)
      c:close(); s:close()
    end)
  end)

  it("wakes for data that arrives later, and for a listening socket", function()
    run(function()
      local srv, port = H.server()
      local p = H.connect_peer(port, [[
        socket.sleep(0.2)
        c:send("late\n")
        c:receive()
      ]])
      local r = socket.select({ srv }, nil, 5)
      assert.are.equal(srv, r[1])
      local s = assert(srv:accept())
      local dt
      dt, r = H.timed(socket.select, { s }, nil, 5)
      assert.are.equal(s, r[1])
      assert.is_true(dt >= 0.05, dt)
      assert.are.equal("late", s:receive())
      s:send("bye\n")
      s:close(); srv:close()
      p:close()
    end)
  end)

  it("accepts any object with getfd", function()
    run(function()
      local c, s = H.pair()
      c:send("x")
      local wrapper = { getfd = function() return s:getfd() end,
        dirty = function() return false end }
      local r = socket.select({ wrapper }, nil, 1)
      assert.are.equal(wrapper, r[1])
      c:close(); s:close()
    end)
  end)

  it("works on 5,000 sockets, descriptors above 1024 included", function()
    run(function()
      local socks = {}
      for i = 1, 5000 do socks[i] = assert(socket.udp4()) end
      assert.is_true(socks[5000]:getfd() > 1024)
      local last = socks[5000]
      assert(last:setsockname("127.0.0.1", 0))
      local _, port = last:getsockname()
      local r, _, e = socket.select(socks, nil, 0)
      assert.are.equal("timeout", e)
      assert.are.equal(0, #r)
      socks[1]:sendto("wake", "127.0.0.1", port)
      r = socket.select(socks, nil, 2)
      assert.are.equal(1, #r)
      assert.are.equal(last, r[1])
      local _, w = socket.select(nil, socks, 0)
      assert.are.equal(5000, #w)
      for _, u in ipairs(socks) do u:close() end
    end)
  end)
end)

describe("socket.select in tasks", function()
  after_each(H.assert_clean)

  it("yields while waiting, so other tasks run", function()
    local ticks, result = 0, nil
    async.run(function()
      local c, s = H.pair()
      async.spawn(function()
        result = { socket.select({ s }, nil, 0.3) }
      end)
      async.spawn(function()
        for _ = 1, 5 do
          ticks = ticks + 1
          async.sleep(0.02)
        end
        c:send("now")
      end)
      while not result do async.sleep(0.01) end
      c:close(); s:close()
    end)
    assert.are.equal(5, ticks)
    assert.are.equal(1, #result[1])
  end)

  it("times out in a task while other tasks run", function()
    local ticks, result = 0, nil
    async.run(function()
      local c, s = H.pair()
      async.spawn(function() result = { socket.select({ s }, nil, 0.15) } end)
      async.spawn(function()
        while not result do
          ticks = ticks + 1
          async.sleep(0.01)
        end
      end)
      while not result do async.sleep(0.01) end
      c:close(); s:close()
    end)
    assert.are.same({}, result[1])
    assert.are.equal("timeout", result[3])
    assert.is_true(ticks >= 5, ticks)
  end)
end)
