-- faults_spec.lua: fault injection with real sockets (docs/reliability.md, "Fault injection"):
-- peers that reset in the middle of a receive or a send, half-closed connections, peers that
-- never answer or never read, lookups that fail, and errors or shutdowns while requests are in
-- flight. Each case runs in both modes; the cases about tasks (cancellation, signals, collected
-- tasks) are in faults_wait_spec.lua.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")
local async = socket.async

local pid = H.pid()

-- Open descriptors of this process (the pipe to ls is left out). ls may start before popen
-- closed this process's copy of the pipe's other end, and then lists that one too: a count can
-- be one too high, never too low, so the smallest of three is taken.
local function fd_count()
  local best
  for _ = 1, 3 do
    local p = assert(io.popen("ls /proc/" .. pid .. "/fd"))
    local n = 0
    for _ in p:lines() do n = n + 1 end
    p:close()
    if not best or n - 1 < best then best = n - 1 end
  end
  return best
end

local function fd_list()
  local p = assert(io.popen("ls -l /proc/" .. pid .. "/fd"))
  local s = p:read("a")
  p:close()
  return s
end

local function reset(s)
  assert(s:setoption("linger", { on = true, timeout = 0 }))
  s:close()
end

H.modes("a peer that resets", function(run)
  it("in the middle of a receive: nil, 'closed' and the partial line", function()
    run(function()
      local c, s = H.pair()
      c:settimeout(2)
      assert(s:send("partial"))
      reset(s)
      local line, err, partial = c:receive("*l")
      assert.is_nil(line)
      assert.are.equal("closed", err)
      assert.are.equal("partial", partial)
      -- And stays closed: a second receive and a send fail the same way, at once.
      local d, again = H.timed(c.receive, c, "*l")
      assert.are.same({ nil, "closed", "" }, { select(2, H.timed(c.receive, c, "*l")) })
      assert.is_true(d < 0.5, again)
      local n, serr = c:send("x")
      assert.is_nil(n)
      assert.are.equal("closed", serr)
      c:close()
    end)
  end)

  it("while a receive waits (the reset arrives during the wait)", function()
    run(function()
      local p, port = H.listen_peer([[
        c:send("abc")
        socket.sleep(0.3)
        c:setoption("linger", { on = true, timeout = 0 })
      ]])
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(5)
      local t, line, err, partial = H.timed(c.receive, c, 10)
      assert.is_nil(line)
      assert.are.equal("closed", err)
      assert.are.equal("abc", partial)
      assert.is_true(t > 0.2 and t < 3, "took " .. t)
      c:close()
      p:close()
    end)
  end)

  it("in the middle of a send: nil, 'closed' and how much was sent", function()
    run(function()
      local p, port = H.listen_peer([[
        socket.sleep(0.3)        -- never reads: the client's send fills both buffers
        c:setoption("linger", { on = true, timeout = 0 })
      ]])
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(5)
      local big = ("x"):rep(32 * 1024 * 1024)
      local t, n, err, last = H.timed(c.send, c, big)
      assert.is_nil(n)
      assert.are.equal("closed", err)
      assert.is_true(last >= 0 and last < #big, "partial " .. tostring(last))
      assert.is_true(t < 3, "took " .. t)       -- ends when the reset arrives
      -- Later sends fail at once.
      local n2, err2 = c:send("more")
      assert.is_nil(n2)
      assert.are.equal("closed", err2)
      c:close()
      p:close()
    end)
  end)
end)

H.modes("half-closed connections", function(run)
  it("shutdown('send'): the peer reads to the end and can still answer", function()
    run(function()
      local c, s = H.pair()
      c:settimeout(2)
      s:settimeout(2)
      assert(c:send("request body"))
      assert(c:shutdown("send"))
      assert.are.equal("request body", s:receive("*a"))
      assert(s:send("answer"))
      s:close()
      assert.are.equal("answer", c:receive("*a"))
      local n, err = c:send("x")
      assert.is_nil(n)
      assert.are.equal("closed", err)
      c:close()
    end)
  end)

  it("the peer's shutdown('send'): '*a' ends, the other way still works", function()
    run(function()
      local c, s = H.pair()
      c:settimeout(2)
      s:settimeout(2)
      assert(s:send("from peer"))
      assert(s:shutdown("send"))
      assert.are.equal("from peer", c:receive("*a"))
      assert.are.same({ nil, "closed", "" }, { c:receive("*a") })
      assert(c:send("still\n"))
      assert.are.equal("still", s:receive("*l"))
      c:close()
      s:close()
    end)
  end)

  it("shutdown('receive'): sends still go out; a receive never waits for ever", function()
    run(function()
      local c, s = H.pair()
      c:settimeout(1)
      s:settimeout(2)
      assert(c:shutdown("receive"))
      assert(c:send("out\n"))
      assert.are.equal("out", s:receive("*l"))
      -- Linux still delivers what arrives after SHUT_RD; once the peer is gone the receive
      -- ends with "closed", without waiting for the timeout.
      s:close()
      local t, line, err = H.timed(c.receive, c, "*l")
      assert.is_nil(line)
      assert.are.equal("closed", err)
      assert.is_true(t < 0.5, "took " .. t)
      c:close()
    end)
  end)

  it("shutdown on both sides: every call on the socket ends", function()
    run(function()
      local c, s = H.pair()
      c:settimeout(1)
      assert(c:shutdown("both"))
      assert.are.same({ nil, "closed", "" }, { c:receive("*a") })
      assert.are.equal("closed", select(2, c:send("x")))
      c:close()
      s:close()
    end)
  end)
end)

H.modes("a peer that vanishes", function(run)
  it("a receive from a peer that never sends times out at its time", function()
    run(function()
      local c, s = H.pair()
      c:settimeout(0.3)
      local t, line, err = H.timed(c.receive, c, "*l")
      assert.is_nil(line)
      assert.are.equal("timeout", err)
      assert.is_true(t >= 0.29 and t < 0.8, "took " .. t)
      -- The connection is still usable after the timeout.
      assert(s:send("late\n"))
      c:settimeout(2)
      assert.are.equal("late", c:receive("*l"))
      c:close()
      s:close()
    end)
  end)

  it("a send to a peer that never reads times out with the count sent", function()
    run(function()
      local c, s = H.pair()
      c:settimeout(0.3)
      local big = ("y"):rep(64 * 1024 * 1024)
      local t, n, err, last = H.timed(c.send, c, big)
      assert.is_nil(n)
      assert.are.equal("timeout", err)
      assert.is_true(last > 0 and last < #big, "sent " .. tostring(last))
      assert.is_true(t >= 0.29 and t < 1.5, "took " .. t)
      -- Resuming from the index sent finishes once the peer reads.
      c:close()
      s:close()
    end)
  end)

  it("a connect to a full accept queue times out at its time", function()
    run(function()
      local port, release = H.stalled_port()
      local c = socket.tcp()
      c:settimeout(0.3)
      local t, ok, err = H.timed(c.connect, c, "127.0.0.1", port)
      assert.is_nil(ok)
      assert.are.equal("timeout", err)
      assert.is_true(t >= 0.29 and t < 1.5, "took " .. t)
      c:close()
      release()
    end)
  end)

  it("a connect to a closed port is refused at once", function()
    run(function()
      local srv, port = H.server()
      srv:close()
      local c = socket.tcp()
      c:settimeout(2)
      local t, ok, err = H.timed(c.connect, c, "127.0.0.1", port)
      assert.is_nil(ok)
      assert.are.equal("connection refused", err)
      assert.is_true(t < 0.5, "took " .. t)
      c:close()
    end)
  end)
end)

H.modes("a lookup that fails", function(run)
  it("a name that does not exist: 'host not found', the messages LuaSocket gives", function()
    run(function()
      assert.are.same({ nil, "host not found" }, { socket.dns.toip("nonexistent.invalid") })
      local ok, err = socket.connect("nonexistent.invalid", 80)
      assert.is_nil(ok)
      assert.are.equal("host or service not provided, or not known", err)
      local u = socket.udp()
      assert.is_nil((u:setpeername("nonexistent.invalid", 53)))
      u:close()
    end)
  end)
end)

describe("errors and shutdowns with sockets held", function()
  after_each(H.assert_clean)

  it("a task that raises while holding sockets: they are closed when collected", function()
    collectgarbage()
    collectgarbage()
    local base = fd_count()
    local errors = {}
    async.onerror(function(_, err) errors[#errors + 1] = err end)
    async.run(function()
      local srv, port = H.server()
      local t = async.spawn(function()
        local held = {}
        for _ = 1, 20 do
          held[#held + 1] = assert(socket.connect("127.0.0.1", port))
          held[#held + 1] = assert(srv:accept())
        end
        assert.is_true(fd_count() >= base + 40)
        error("boom")
      end)
      t:join()
      srv:close()
    end)
    async.onerror(nil)
    assert.are.equal(1, #errors)
    assert.matches("boom", errors[1])
    collectgarbage()
    collectgarbage()
    assert.are.equal(base, fd_count(), fd_list())
  end)

  it("sockets dropped in every state are closed when collected", function()
    collectgarbage()
    collectgarbage()
    local base = fd_count()
    do
      local srv = H.server()                          -- listening
      local c, s = H.pair()                           -- connected, with unread data
      assert(s:send("unread"))
      local port, release = H.stalled_port()
      local pending = socket.tcp()                    -- connect in progress
      pending:settimeout(0)
      pending:connect("127.0.0.1", port)
      local u = socket.udp()                          -- bound, datagram queued
      assert(u:setsockname("127.0.0.1", 0))
      local unix = require("socket.unix").stream()
      local _ = { srv, c, s, pending, u, unix }
      assert.is_true(fd_count() >= base + 6)
      release()
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(base, fd_count(), fd_list())
  end)

  it("async.shutdown lets requests in flight finish within the grace period", function()
    local answered, cancelled = {}, nil
    async.run(function()
      local srv, port = H.server()
      async.serve(srv, function(client)
        client:settimeout(5)
        local line = client:receive("*l")
        async.sleep(0.2)                              -- the request is being worked on
        client:send(line .. " done\n")
      end)
      local clients = async.group()
      for i = 1, 5 do
        clients:spawn(function()
          local c = assert(socket.connect("127.0.0.1", port))
          c:settimeout(5)
          assert(c:send("req" .. i .. "\n"))
          local line = c:receive("*l")     -- (the index is taken after the wait)
          answered[#answered + 1] = line
          c:close()
        end)
      end
      async.sleep(0.05)                               -- every request is in flight
      cancelled = async.shutdown(2)
      clients:wait(5)
      -- No new client once shut down.
      local late = socket.tcp()
      late:settimeout(1)
      assert.is_nil((late:connect("127.0.0.1", port)))
      late:close()
    end)
    assert.are.equal(0, cancelled)
    table.sort(answered)
    assert.are.same({ "req1 done", "req2 done", "req3 done", "req4 done", "req5 done" },
      answered)
  end)

  it("async.shutdown cancels what outlives the grace period; its clients see 'closed'", function()
    local results, cancelled = {}, nil
    async.run(function()
      local srv, port = H.server()
      async.serve(srv, function(client)
        client:settimeout(30)
        client:receive("*l")
        -- Never finishes on its own: the cancellation ends the wait with nil, "cancelled"
        -- (cancelling is cooperative, docs/async.md), and the handler gives up.
        local more, err = client:receive("*l")
        if more then client:send("never\n") end
        assert.are.equal("cancelled", err)
      end)
      local clients = async.group()
      for _ = 1, 3 do
        clients:spawn(function()
          local c = assert(socket.connect("127.0.0.1", port))
          c:settimeout(5)
          assert(c:send("req\n"))
          local r = { c:receive("*l") }
          results[#results + 1] = r
          c:close()
        end)
      end
      async.sleep(0.05)
      local t
      t, cancelled = H.timed(async.shutdown, 0.2)
      assert.is_true(t < 2, "shutdown took " .. t)
      clients:wait(5)
    end)
    assert.are.equal(3, cancelled)
    assert.are.equal(3, #results)
    for _, r in ipairs(results) do assert.are.same({ nil, "closed", "" }, r) end
  end)
end)
