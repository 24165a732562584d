-- faults_wait_spec.lua: fault injection into every kind of wait a task can be in (receive,
-- send, accept, connect, select, sleep, waitfd, a name lookup, a join): the task cancelled, its
-- socket closed or collected, or a signal arriving meanwhile. Tasks only: these are faults of
-- the scheduler's waits (the blocking-mode counterparts are in faults_spec.lua). After each case
-- no task, watcher or deadline may be left.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")
local async = socket.async

local pid = H.pid()

-- Whether task `t` finished (without failing) within `limit` seconds.
local function joined(t, limit)
  t:join(limit)
  return t:status() == "done"
end

-- Each kind of wait: `setup()` returns the function a task runs (it waits, for several
-- seconds at least, unless disturbed) and a cleanup function.
local WAITS = {
  receive = function()
    local c, s = H.pair()
    c:settimeout(10)
    return function() return c:receive("*l") end, function() c:close(); s:close() end, c
  end,
  send = function()
    local c, s = H.pair()
    c:settimeout(10)
    local big = ("z"):rep(64 * 1024 * 1024)
    return function() return c:send(big) end, function() c:close(); s:close() end, c
  end,
  accept = function()
    local srv = H.server()
    srv:settimeout(10)
    return function() return srv:accept() end, function() srv:close() end, srv
  end,
  connect = function()
    local port, release = H.stalled_port()
    local c = socket.tcp()
    c:settimeout(10)
    return function() return c:connect("127.0.0.1", port) end,
      function() c:close(); release() end, c
  end,
  select = function()
    local c, s = H.pair()
    return function()
      local r, _, err = socket.select({ c }, nil, 10)
      if #r == 0 then return nil, err end
      return r
    end, function() c:close(); s:close() end, c
  end,
  sleep = function()
    return function()
      local r, err = async.sleep(10)
      return r == nil and err == nil and "slept" or nil, err
    end, function() end
  end,
  waitfd = function()
    local c, s = H.pair()
    return function() return async.waitfd(c:getfd(), "r", 10) end,
      function() c:close(); s:close() end, c
  end,
  lookup = function()
    -- A lookup of a name that is not in /etc/hosts goes to the resolver, which has no server on
    -- this machine; it takes long enough to be interrupted, or fails, either of which is fine.
    return function() return socket.dns.toip("faults-spec-lookup.invalid") end, function() end
  end,
}
local ORDER = { "receive", "send", "accept", "connect", "select", "sleep", "waitfd", "lookup" }

describe("faults in every kind of wait", function()
  after_each(H.assert_clean)

  for _, kind in ipairs(ORDER) do
    it("cancelling a task waiting in " .. kind .. " ends the wait at once", function()
      async.run(function()
        local fn, cleanup = WAITS[kind]()
        local result
        local t = async.spawn(function() result = table.pack(fn()) end)
        async.sleep(0.1)
        local elapsed = H.timed(function()
          t:cancel("fault")
          assert.is_true(joined(t, 2))
        end)
        assert.is_true(elapsed < 0.5, kind .. " took " .. elapsed)
        assert.is_nil(result[1], kind .. " returned " .. tostring(result[1]))
        if kind == "lookup" then
          assert.is_true(result[2] == "cancelled" or result[2] == "host not found", result[2])
        else
          assert.are.equal("cancelled", result[2])
        end
        cleanup()
      end)
    end)
  end

  for _, kind in ipairs(ORDER) do
    local sock = kind ~= "sleep" and kind ~= "lookup"
    if sock then
      it("closing the socket a task waits on in " .. kind .. " ends the wait", function()
        async.run(function()
          local fn, cleanup, s = WAITS[kind]()
          local result
          local t = async.spawn(function() result = table.pack(fn()) end)
          async.sleep(0.1)
          s:close()
          assert.is_true(joined(t, 2))
          if kind == "select" then
            -- select reports the closed socket as ready (regression 007), where the socket's
            -- own calls then give "closed".
            assert.are.equal(s, result[1][1])
          else
            assert.is_nil(result[1])
            assert.are.equal("closed", result[2])
          end
          cleanup()
        end)
      end)
    end
  end

  it("a task waiting on a socket nobody else holds keeps it alive through collections",
    function()
      async.run(function()
        local srv, port = H.server()
        local got
        local t = async.spawn(function()
          local c = assert(socket.connect("127.0.0.1", port))
          c:settimeout(5)
          got = c:receive("*l")
          c:close()
        end)
        local s = assert(srv:accept())
        for _ = 1, 5 do
          collectgarbage()
          async.sleep(0.02)
        end
        assert(s:send("still here\n"))
        assert.is_true(joined(t, 2))
        assert.are.equal("still here", got)
        s:close()
        srv:close()
      end)
    end)

  -- A signal that arrives while tasks wait: the task waiting for it wakes, every other wait
  -- goes on as if nothing happened (ends at its own time, with its own result), and a second
  -- signal is not lost.
  for _, kind in ipairs(ORDER) do
    if kind ~= "lookup" then
      it("SIGUSR1 during a wait in " .. kind .. " wakes the signal's waiter only", function()
        async.run(function()
          local fn, cleanup = WAITS[kind]()
          local result
          local t = async.spawn(function()
            result = table.pack(async.timeout(0.6, fn))
          end)
          local got = {}
          local sig = async.spawn(function()
            for i = 1, 2 do got[i] = async.signal("SIGUSR1", 5) end
          end)
          async.sleep(0.05)
          -- From another process, so that the signal arrives while this one is parked.
          os.execute(("(sleep 0.15; kill -USR1 %d; sleep 0.15; kill -USR1 %d) &"):format(pid, pid))
          local t0 = socket.gettime()
          assert.is_true(joined(sig, 3))
          assert.are.same({ "SIGUSR1", "SIGUSR1" }, got)
          assert.is_true(joined(t, 3))
          local elapsed = socket.gettime() - t0
          -- The wait ran to the end of its timeout scope, not cut short by the signal.
          if kind == "sleep" then
            assert.are.same({ nil, "timeout" }, { result[1], result[2] })
          else
            assert.is_nil(result[1])
            assert.are.equal("timeout", result[2])
          end
          assert.is_true(elapsed > 0.4, kind .. " ended after " .. elapsed)
          cleanup()
        end)
      end)
    end
  end

  it("a signal during a lookup does not disturb it", function()
    async.run(function()
      local got
      local sig = async.spawn(function() got = async.signal("SIGUSR1", 5) end)
      local res
      local t = async.spawn(function() res = table.pack(socket.dns.toip("localhost")) end)
      async.sleep(0.05)  -- both wait now (SIGUSR1 with no waiter would end the process)
      os.execute(("(kill -USR1 %d) &"):format(pid))
      assert.is_true(joined(sig, 3))
      assert.is_true(joined(t, 3))
      assert.are.equal("SIGUSR1", got)
      assert.are.equal("127.0.0.1", res[1])
    end)
  end)
end)
