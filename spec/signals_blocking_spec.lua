-- signals_blocking_spec.lua: signals arriving during each kind of wait in blocking mode
-- (docs/reliability.md, "Fault injection"; the task-mode cases are in faults_wait_spec.lua).
-- Without a handler, a stop and continue (SIGSTOP, SIGCONT) still makes the kernel end a wait
-- with EINTR; the wait must go on to its own deadline, neither ending early nor starting its
-- timeout over. SIGINT under the standalone interpreter (whose handler raises "interrupted!" at
-- the next Lua instruction) must let the call end as it would have, then raise, as LuaSocket's
-- do. The signals come from a shell in the background, by process id.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")

local pid = H.pid()

-- Stops this process `at` seconds from now and continues it `for_` seconds later.
local function stop_later(at, for_)
  assert(os.execute(("(sleep %.2f; kill -STOP %d; sleep %.2f; kill -CONT %d) &")
    :format(at, pid, for_, pid)))
end

-- Each kind of wait, set up to time out after 1 s unless something arrives.
local waits = {
  ["receive"] = function()
    local c, s = H.pair()
    c:settimeout(1)
    return function() return c:receive("*l") end, function() c:close(); s:close() end
  end,
  ["send (a peer that does not read)"] = function()
    local c, s = H.pair()
    c:settimeout(1)
    local big = ("x"):rep(32 * 1024 * 1024)
    return function() return c:send(big) end, function() c:close(); s:close() end
  end,
  ["accept"] = function()
    local srv = H.server()
    srv:settimeout(1)
    return function() return srv:accept() end, function() srv:close() end
  end,
  ["connect (a full accept queue)"] = function()
    local port, release = H.stalled_port()
    local c = socket.tcp()
    c:settimeout(1)
    return function() return c:connect("127.0.0.1", port) end, function() c:close(); release() end
  end,
  ["select"] = function()
    local c, s = H.pair()
    return function()
      local r, _, err = socket.select({ c }, nil, 1)
      if #r == 0 then return nil, err end
      return r
    end, function() c:close(); s:close() end
  end,
  ["udp receive"] = function()
    local u = assert(socket.udp())
    assert(u:setsockname("127.0.0.1", 0))
    u:settimeout(1)
    return function() return u:receive() end, function() u:close() end
  end,
  ["sleep"] = function()
    return function() socket.sleep(1); return nil, "timeout" end, function() end
  end,
}

describe("a stop and continue during a blocking wait", function()
  after_each(H.assert_clean)

  for name, setup in pairs(waits) do
    it(name .. ": the wait ends at its own deadline", function()
      local call, cleanup = setup()
      stop_later(0.2, 0.3)
      local t, r, err = H.timed(call)
      cleanup()
      assert.is_nil(r)
      assert.are.equal("timeout", err)
      assert.is_true(t >= 0.95 and t < 1.6, ("ended after %.3f s"):format(t))
    end)
  end

  it("a stop that outlasts the timeout: the wait ends when the process continues", function()
    local call, cleanup = waits.receive()
    stop_later(0.2, 1.3)
    local t, r, err = H.timed(call)
    cleanup()
    assert.is_nil(r)
    assert.are.equal("timeout", err)
    assert.is_true(t >= 1.4 and t < 2.2, ("ended after %.3f s"):format(t))
  end)

  it("data that arrives while the process is stopped is received once it continues", function()
    local p, port = H.listen_peer([[
      socket.sleep(0.4)
      c:send("during the stop\n")
      c:receive("*l")
    ]])
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(3)
    stop_later(0.2, 0.5)
    local t, line = H.timed(c.receive, c, "*l")
    assert.are.equal("during the stop", line)
    assert.is_true(t >= 0.6 and t < 1.5, ("ended after %.3f s"):format(t))
    c:send("bye\n")
    c:close()
    p:close()
  end)
end)

describe("SIGINT under the standalone interpreter during a blocking receive", function()
  it("the receive ends at its timeout, then the interpreter raises 'interrupted!'", function()
    local p = H.peer([[
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = assert(socket.connect("127.0.0.1", port))
      local s = assert(srv:accept())
      c:settimeout(1)
      local f = assert(io.open("/proc/self/stat"))
      local me = f:read("n")
      f:close()
      os.execute(("(sleep 0.3; kill -INT %d) &"):format(me))
      local t0 = socket.gettime()
      local ok, a, b = pcall(c.receive, c, "*l")
      io.write(tostring(ok), " ", tostring(a), " ", tostring(b), " ",
        ("%.3f"):format(socket.gettime() - t0), "\n")
      s:close()
    ]])
    local out = p:read("a")
    p:close()
    local ok, a, b, t = out:match("^(%S+) (%S+) (%S+) (%S+)\n")
    assert.are.same({ "false", "interrupted!", "nil" }, { ok, a, b }, out)
    assert.is_true(tonumber(t) >= 0.95 and tonumber(t) < 1.5, out)
  end)
end)
