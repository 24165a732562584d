-- async_spec.lua: the task runtime: join, cancel, groups, deadlines, timers, synchronisation,
-- servers, signals, errors, introspection, and waits from user coroutines.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

teardown(H.cleanup)

-- Runs `code` in a separate interpreter and returns its exit status and all its output.
local function script(code)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write('local socket = require("socket")\nlocal async = socket.async\n', code)
  f:close()
  local p = assert(io.popen(("timeout 60 %s %s 2>&1"):format(H.LUA, file)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(file)
  return ok, out
end

describe("tasks", function()
  after_each(H.assert_clean)

  it("join returns results or the error, and can be repeated", function()
    async.run(function()
      local t = async.spawn(function(a, b)
        async.sleep(0.01)
        return a + b, "sum"
      end, 2, 3)
      assert.are.same({ 5, "sum" }, { t:join() })
      assert.are.same({ 5, "sum" }, { t:join() })
      assert.are.equal("done", t:status())
      async.onerror(function() end)
      local bad = async.spawn(function() error({ code = 42 }) end)
      local r, err = bad:join()
      async.onerror(nil)
      assert.is_nil(r)
      assert.are.same({ code = 42 }, err)
      assert.are.equal("failed", bad:status())
    end)
  end)

  it("join times out and refuses to join itself", function()
    async.run(function()
      local t = async.spawn(function() async.sleep(0.2) end)
      assert.are.same({ nil, "timeout" }, { t:join(0.02) })
      assert.are.equal("waiting", t:status())
      local me = async.current()
      assert.has_error(function() me:join() end)
      t:join()
    end)
  end)

  it("have names, ids, and are listed while alive", function()
    async.run(function()
      local t = async.spawn(function() async.sleep(0.05) end):setname("sleeper")
      assert.are.equal("sleeper", t:name())
      assert.is_true(math.type(t:id()) == "integer")
      assert.matches("^task %d+ 'sleeper'", tostring(t))
      local found = false
      for _, x in ipairs(async.tasks()) do
        if x == t then found = true end
      end
      assert.is_true(found)
      assert.are.equal(async.current(), async.current())
      t:join()
    end)
    assert.is_nil(async.current())
  end)

  it("status reports what each task waits for", function()
    async.run(function()
      local c, s = H.pair()
      local r = async.spawn(function() s:receive() end):setname("reader")
      local z = async.spawn(function() async.sleep(10) end):setname("sleeper")
      async.sleep(0.02)
      local st = async.status()
      assert.are.equal(3, st.tasks)
      assert.is_true(st.waiting >= 2)
      local by_name = {}
      for _, e in ipairs(st.list) do by_name[e.name or "?"] = e end
      assert.matches("^receive %(fd %d+%)$", by_name.reader.waiting_for)
      assert.are.equal("sleep", by_name.sleeper.waiting_for)
      assert.is_true(by_name.sleeper.waited > 0)
      assert.matches("async_spec.lua:%d+:", by_name.sleeper.spawned_at)
      assert.is_number(st.lag)
      assert.is_number(st.idle)
      assert.is_number(st.cpu)
      z:cancel()
      c:close(); s:close()
      r:join()
    end)
  end)

  it("errors are reported with the task's name, spawn site and traceback", function()
    local ok, out = script([[
      async.run(function()
        async.spawn(function() error("it broke") end):setname("worker")
      end)
      print("the others went on")
    ]])
    assert.is_true(ok, out)
    assert.matches("task %d+ 'worker' %(spawned at [^)]*:%d+:%s*%) failed: [^\n]*it broke", out)
    assert.matches("stack traceback", out)
    assert.matches("the others went on", out)
  end)

  it("onerror replaces the report", function()
    local seen
    async.run(function()
      local prev = async.onerror(function(task, err, tb)
        seen = { task:name(), err, tb }
      end)
      assert.is_nil(prev)
      async.spawn(function() error("handled", 0) end):setname("h"):join()
      async.onerror(prev)
    end)
    assert.are.equal("h", seen[1])
    assert.are.equal("handled", seen[2])
    assert.matches("stack traceback", seen[3])
  end)

  it("the watchdog names a task that runs too long without yielding", function()
    local ok, out = script([[
      async.watchdog(0.1)
      async.run(function()
        async.spawn(function()
          local t = os.clock() + 0.3
          while os.clock() < t do end
        end):setname("hog")
      end)
      print("status lag", async.status().lag >= 0.25)
    ]])
    assert.is_true(ok, out)
    assert.matches("task %d+ 'hog' %(spawned at [^)]*%) ran 0%.%d+ s without yielding", out)
    assert.matches("status lag\ttrue", out)
  end)

  it("run reports tasks that wait for each other with nothing to wake them", function()
    local ok, err = pcall(async.run, function()
      local ev = async.event()
      ev:wait()  -- nobody will ever set it
    end)
    assert.is_false(ok)
    assert.matches("deadlock", err)
    -- the event waiter is still parked; cancel it so the next cases start clean
    for _, t in ipairs(async.tasks()) do t:cancel() end
    async.run(function() end)
  end)
end)

describe("cancellation", function()
  after_each(H.assert_clean)

  -- Starts `waiter` as a task, cancels it once it waits, and returns what its call returned.
  local function cancel_while(waiter)
    local result
    async.run(function()
      local t = async.spawn(function() result = table.pack(waiter()) end)
      async.sleep(0.02)
      assert.are.equal("waiting", t:status())
      assert.is_true(t:cancel("test"))
      assert.are.equal("test", t:cancelled())
      t:join()
    end)
    return result
  end

  it("interrupts receive, keeping LuaSocket's result shape", function()
    local c, s = H.pair()
    c:send("part")
    local r = cancel_while(function() return s:receive() end)
    assert.are.same({ nil, "cancelled", "part", n = 3 }, r)
    c:close(); s:close()
  end)

  it("interrupts accept, send, connect's lookup-free wait, select and sleep", function()
    local srv = H.server()
    assert.are.same({ nil, "cancelled", n = 2 }, cancel_while(function() return srv:accept() end))
    assert.are.same({ nil, "cancelled", n = 2 }, cancel_while(function() return async.sleep(5) end))
    local r = cancel_while(function() return socket.select({ srv }, nil, 5) end)
    assert.are.equal("cancelled", r[3])
    local c, s = H.pair()
    c:setoption("send-buffer-size", 4096)
    r = cancel_while(function() return c:send(string.rep("x", 50000000)) end)
    assert.is_nil(r[1])
    assert.are.equal("cancelled", r[2])
    assert.is_true(r[3] > 0)
    srv:close(); c:close(); s:close()
  end)

  it("interrupts a lookup, a join, a lock, a queue and a signal wait", function()
    local r = cancel_while(function()
      async.sleep(0.03)  -- cancelled during the sleep already: every later wait fails at once
      return socket.dns.toip("localhost")
    end)
    assert.are.same({ nil, "cancelled", n = 2 }, r)
    async.run(function()
      local long = async.spawn(function() async.sleep(1) end)
      local m = async.lock()
      assert(m:lock())
      local q = async.queue(1)
      local waits = {
        function() return long:join() end,
        function() return m:lock() end,
        function() return q:get() end,
        function() return async.signal("SIGUSR2") end,
      }
      for _, w in ipairs(waits) do
        local res
        local t = async.spawn(function() res = table.pack(w()) end)
        async.sleep(0.01)
        t:cancel()
        t:join()
        assert.are.same({ nil, "cancelled", n = 2 }, res)
      end
      m:unlock()
      assert.is_false(m:locked())  -- the cancelled waiter never got it
      long:cancel()
    end)
  end)

  it("is sticky, and cleanup code runs", function()
    local log = {}
    async.run(function()
      local t = async.spawn(function()
        local guard <close> = setmetatable({}, -- luacheck: ignore 211 (there for its __close)
          { __close = function() log[#log + 1] = "closed" end })
        local _, e1 = async.sleep(5)
        local _, e2 = async.sleep(5)
        log[#log + 1] = e1
        log[#log + 1] = e2
      end)
      async.sleep(0.01)
      t:cancel()
      t:join()
      assert.is_false(t:cancel())  -- already finished
    end)
    assert.are.same({ "cancelled", "cancelled", "closed" }, log)
  end)

  it("a queue producer and consumer under cancellation lose no item", function()
    local got, put = {}, 0
    async.run(function()
      local q = async.queue(3)
      local producer = async.spawn(function()
        for i = 1, 1000 do
          if not q:put(i) then return end
          put = put + 1
        end
      end)
      local consumer = async.spawn(function()
        while true do
          local item, err = q:get()
          if not item then return err end
          got[#got + 1] = item
          if #got % 7 == 0 then async.sleep(0) end
        end
      end)
      async.sleep(0.02)
      producer:cancel()
      producer:join()
      -- everything put is either received or still in the queue
      async.sleep(0.01)
      consumer:cancel()
      assert.are.equal("cancelled", consumer:join())
      while q:length() > 0 do got[#got + 1] = q:get() end
    end)
    assert.are.equal(put, #got)
    for i = 1, #got do assert.are.equal(i, got[i]) end
  end)
end)

describe("deadline scopes", function()
  after_each(H.assert_clean)

  it("apply to every wait inside, with LuaSocket's timeout", function()
    async.run(function()
      local c, s = H.pair()
      local dt, r = H.timed(async.timeout, 0.1, function()
        local a, err, partial = s:receive()
        return { a, err, partial }
      end)
      assert.are.same({ nil, "timeout", "" }, r)
      assert.is_true(dt >= 0.09 and dt < 1, dt)
      assert.are.same({ nil, "timeout" }, { async.timeout(0.01, async.sleep, 5) })
      assert.is_nil(async.deadline())
      async.timeout(5, function()
        assert.is_true(async.deadline() <= 5)
        async.timeout(0.05, function()
          assert.is_true(async.deadline() <= 0.05)   -- the nearer one wins
          assert.are.same({ nil, "timeout" }, { async.sleep(1) })
        end)
        assert.is_true(async.deadline() > 1)  -- restored
      end)
      c:close(); s:close()
    end)
  end)

  it("bound http-like code that knows nothing of them", function()
    -- a server that answers slowly, and a client written for plain LuaSocket
    local function fetch(port)
      local c = assert(socket.connect("127.0.0.1", port))
      c:send("GET / HTTP/1.0\r\n\r\n")
      local status, err = c:receive()
      c:close()
      return status, err
    end
    async.run(function()
      local srv, port = H.server()
      async.serve(srv, function(client)
        client:receive()
        client:receive()
        async.sleep(0.3)
        client:send("HTTP/1.0 200 OK\r\n\r\n")
      end)
      assert.are.same({ nil, "timeout" }, { async.timeout(0.1, fetch, port) })
      assert.are.same({ "HTTP/1.0 200 OK" }, { async.timeout(2, fetch, port) })
      async.shutdown(1)
    end)
  end)

  it("are inherited by the tasks spawned inside them", function()
    async.run(function()
      local inner
      async.timeout(0.05, function()
        inner = async.spawn(function() return async.sleep(5) end)
      end)
      local dt, r1, r2 = H.timed(inner.join, inner)
      assert.are.same({ nil, "timeout" }, { r1, r2 })
      assert.is_true(dt < 1, dt)
      local outside = async.spawn(function() return async.deadline() end)
      assert.is_nil(outside:join())
    end)
  end)

  it("pass errors through and restore the outer deadline", function()
    async.run(function()
      local ok, err = pcall(async.timeout, 1, function() error("inner", 0) end)
      assert.is_false(ok)
      assert.are.equal("inner", err)
      assert.is_nil(async.deadline())
    end)
    assert.has_error(function() async.timeout(1, function() end) end)  -- outside a task
  end)
end)

describe("structured concurrency", function()
  after_each(H.assert_clean)

  it("a group waits for all its children", function()
    local done = 0
    async.run(function()
      local g = async.group()
      for i = 1, 10 do g:spawn(function() async.sleep(0.001 * i); done = done + 1 end) end
      assert.is_true(g:wait())
    end)
    assert.are.equal(10, done)
  end)

  it("the first error cancels the siblings and reaches the waiter", function()
    local sibling_saw
    async.run(function()
      local g = async.group()
      g:spawn(function()
        local _, err = async.sleep(5)
        sibling_saw = err
      end)
      g:spawn(function()
        async.sleep(0.02)
        error("second child fails", 0)
      end)
      local ok, err = pcall(g.wait, g)
      assert.is_false(ok)
      assert.are.equal("second child fails", err)
      local e, tb = g:error()
      assert.are.equal("second child fails", e)
      assert.matches("stack traceback", tb)
    end)
    assert.are.equal("cancelled", sibling_saw)
  end)
end)

describe("time", function()
  after_each(H.assert_clean)

  it("sleep has millisecond precision and is never early", function()
    async.run(function()
      for _, d in ipairs({ 0.001, 0.005, 0.02 }) do
        local t0 = async.now()
        async.sleep(d)
        local dt = async.now() - t0
        assert.is_true(dt >= d, dt)
        assert.is_true(dt < d + 0.05, dt)
      end
    end)
  end)

  it("after and every fire, and cancel stops them", function()
    local once, ticks = 0, 0
    async.run(function()
      async.after(0.02, function() once = once + 1 end)
      local stopped = async.after(0.02, function() once = once + 100 end)
      stopped:cancel()
      local tick = async.every(0.01, function() ticks = ticks + 1 end)
      async.sleep(0.105)
      tick:cancel()
      local n = 0
      async.every(0.001, function() n = n + 1; return n < 3 end):join()
      assert.are.equal(3, n)
    end)
    assert.are.equal(1, once)
    assert.is_true(ticks >= 8 and ticks <= 11, ticks)
  end)

  it("an idle loop uses no CPU", function()
    local ok, out = script([[
      local srv = assert(socket.bind("127.0.0.1", 0))
      local cpu0
      async.run(function()
        async.spawn(function() srv:accept() end)   -- a server with nobody connecting
        cpu0 = async.status().cpu
        async.sleep(2)
        print("cpu", async.status().cpu - cpu0)
        srv:close()
      end)
    ]])
    assert.is_true(ok, out)
    local used = tonumber(out:match("cpu\t(%S+)"))
    assert.is_true(used < 0.05, out)  -- getrusage: no spinning, no periodic wake-ups
  end)
end)

describe("synchronisation", function()
  after_each(H.assert_clean)

  it("a lock contended by 1,000 tasks is granted in arrival order", function()
    local order = {}
    async.run(function()
      local m = async.lock()
      local g = async.group()
      for i = 1, 1000 do
        g:spawn(function()
          local guard <close> = assert(m:lock()) -- luacheck: ignore 211 (held for the scope)
          order[#order + 1] = i
          if i % 10 == 0 then async.sleep(0) end
        end)
      end
      g:wait()
      assert.is_false(m:locked())
    end)
    assert.are.equal(1000, #order)
    for i = 1, 1000 do assert.are.equal(i, order[i]) end
  end)

  it("a lock wait times out without taking the lock later", function()
    async.run(function()
      local m = async.lock()
      assert(m:lock())
      local r
      local t = async.spawn(function() r = { m:lock(0.02) } end)
      t:join()
      assert.are.same({ nil, "timeout" }, r)
      assert.are.same({ nil, "locked" }, { async.spawn(function() return m:trylock() end):join() })
      m:unlock()
      assert.is_false(m:locked())
      assert.has_error(function() m:unlock() end)
    end)
  end)

  it("a semaphore hands out its permits in order, never more than it has", function()
    local entered, inside, most = {}, 0, 0
    async.run(function()
      local sem = async.semaphore(2)
      local g = async.group()
      for i = 1, 6 do
        g:spawn(function()
          assert(sem:acquire())
          entered[#entered + 1] = i
          inside = inside + 1
          if inside > most then most = inside end
          async.sleep(0.01)
          inside = inside - 1
          sem:release()
        end)
      end
      g:wait()
      assert.are.equal(2, sem:available())
    end)
    assert.are.same({ 1, 2, 3, 4, 5, 6 }, entered)
    assert.are.equal(2, most)
  end)

  it("a queue is bounded, closable and iterable", function()
    async.run(function()
      local q = async.queue(2)
      assert.is_true(q:put("a"))
      assert.is_true(q:put("b"))
      assert.are.same({ nil, "timeout" }, { q:put("c", 0.01) })
      local got = {}
      async.spawn(function()
        for item in q:items() do got[#got + 1] = item end
      end)
      q:put("c")
      q:close()
      assert.are.same({ nil, "closed" }, { q:put("d") })
      async.sleep(0.01)
      assert.are.same({ "a", "b", "c" }, got)
      assert.are.same({ nil, "closed" }, { q:get() })
      assert.has_error(function() q:put(nil) end)
      -- unbuffered: put waits for a get
      local u = async.queue(0)
      local t = async.spawn(function() return u:put("x") end)
      async.sleep(0.01)
      assert.are.equal("waiting", t:status())
      assert.are.equal("x", u:get())
      assert.is_true(t:join())
    end)
  end)

  it("events and conditions", function()
    async.run(function()
      local ev, cond = async.event(), async.condition()
      local woke = 0
      for _ = 1, 3 do
        async.spawn(function()
          ev:wait()
          woke = woke + 1
          cond:wait()
          woke = woke + 10
        end)
      end
      async.sleep(0.01)
      ev:set()
      async.sleep(0.01)
      assert.are.equal(3, woke)
      assert.is_true(ev:isset())
      assert.is_true(ev:wait())
      assert.is_true(cond:signal())
      async.sleep(0.01)
      assert.are.equal(13, woke)
      assert.are.equal(2, cond:broadcast())
      async.sleep(0.01)
      assert.are.equal(33, woke)
      assert.is_false(cond:signal())
      ev:clear()
      assert.are.same({ nil, "timeout" }, { ev:wait(0.01) })
    end)
  end)
end)

describe("servers", function()
  after_each(H.assert_clean)

  it("serve runs a task per client and closes it; shutdown is graceful", function()
    local served, cancelled = 0, nil
    async.run(function()
      local srv, port = H.server()
      async.onerror(function() end)
      async.serve(srv, function(client)
        local line = client:receive()
        if line == "fail" then error("handler fails") end
        if line == "slow" then
          async.sleep(10)  -- still running at shutdown: cancelled after the grace period
          return
        end
        client:send(line:upper() .. "\n")
        served = served + 1
      end)
      assert.are.equal(1, async.serving())
      local function ask(what)
        local c = assert(socket.connect("127.0.0.1", port))
        c:send(what .. "\n")
        local r, err = c:receive()
        c:close()
        return r, err
      end
      assert.are.equal("HELLO", ask("hello"))
      assert.are.same({ nil, "closed" }, { ask("fail") })  -- closed for it, nobody else hurt
      assert.are.equal("AGAIN", ask("again"))
      local slow = assert(socket.connect("127.0.0.1", port))
      slow:send("slow\n")
      async.sleep(0.02)
      local t0 = async.now()
      cancelled = async.shutdown(0.1)
      assert.is_true(async.now() - t0 < 2)
      assert.are.equal(0, async.serving())
      assert.is_nil(socket.connect("127.0.0.1", port))  -- no longer accepting
      assert.are.same({ nil, "closed", "" }, { slow:receive() })
      slow:close()
      async.onerror(nil)
    end)
    assert.are.equal(2, served)
    assert.are.equal(1, cancelled)
  end)

  it("a signal wakes the task waiting for it", function()
    local got
    async.run(function()
      local t = async.spawn(function() got = async.signal("SIGUSR1") end)
      async.sleep(0.02)
      os.execute("kill -USR1 " .. H.pid())
      t:join(2)
      assert.are.same({ nil, "timeout" }, { async.signal("SIGUSR1", 0.01) })
    end)
    assert.are.equal("SIGUSR1", got)
  end)
end)

describe("coroutines inside tasks", function()
  after_each(H.assert_clean)

  it("a user's coroutine can wait on sockets; the wait goes up to the scheduler", function()
    local ticks, lines = 0, {}
    async.run(function()
      local c, s = H.pair()
      async.spawn(function()
        for _ = 1, 5 do
          ticks = ticks + 1
          async.sleep(0.01)
        end
        c:send("one\ntwo\nthree\n")
        c:close()
      end)
      -- an iterator built on a coroutine, as a library might write it
      local function lines_of(sock)
        return coroutine.wrap(function()
          while true do
            local l = sock:receive()
            if not l then return end
            coroutine.yield(l)
          end
        end)
      end
      for l in lines_of(s) do lines[#lines + 1] = l end
      s:close()
    end)
    assert.are.same({ "one", "two", "three" }, lines)
    assert.are.equal(5, ticks)  -- the other task ran while the iterator waited
  end)

  it("coroutine.resume keeps Lua's results and errors", function()
    async.run(function()
      local co = coroutine.create(function(a)
        local b = coroutine.yield(a + 1)
        async.sleep(0.001)
        error("stop " .. b, 0)
      end)
      assert.are.same({ true, 2 }, { coroutine.resume(co, 1) })
      assert.are.same({ false, "stop x" }, { coroutine.resume(co, "x") })
      assert.are.same({ false, "cannot resume dead coroutine" }, { coroutine.resume(co) })
      local w = coroutine.wrap(function() error("inside") end)
      local ok, err = pcall(w)
      assert.is_false(ok)
      assert.matches("inside", err)
      assert.has_error(function() coroutine.resume(42) end)
    end)
  end)

  it("where Lua cannot yield, the call blocks instead of failing, and says so once", function()
    local ok, out = script([[
      async.run(function()
        local srv = assert(socket.bind("127.0.0.1", 0))
        local _, port = srv:getsockname()
        local c = assert(socket.connect("127.0.0.1", port))
        local s = assert(srv:accept())
        c:send("b\na\n")
        local items = { "x", "y" }
        local got = {}
        -- a comparator is called from C: no yield possible there
        table.sort(items, function(p, q)
          got[#got + 1] = s:receive()
          return p < q
        end)
        print("received", table.concat(got, ","))
        socket.sleep(0.001)
        table.sort(items, function(p, q) socket.sleep(0.001) return p < q end)
        print("second blocking call went unreported")
      end)
    ]])
    assert.is_true(ok, out)
    assert.matches("received\tb", out)
    assert.matches("cannot yield", out)
    local _, count = out:gsub("cannot yield", "")
    assert.are.equal(1, count)
  end)
end)
