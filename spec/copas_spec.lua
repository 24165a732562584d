-- copas_spec.lua: the copas compatibility module (socket.async.copas, alias `copas`): threads,
-- the loop and its exit protocol, steps, sleeping and waking, error handlers, wrapped sockets
-- and servers over loopback, socket timeouts, lock, semaphore, queue, timer and future.
local socket = require("socket")
local copas = require("copas")
local H = require("support.helpers").use(_ENV)

local function silent() end

-- Errors raised in copas threads (failed assertions included) go to copas's error handler, not
-- to busted: collect them, and fail the case if any is left unexpected.
local thread_errors = {}
local function collect(msg, co, skt)
  thread_errors[#thread_errors + 1] = copas.gettraceback(msg, co, skt)
end

describe("copas compatibility", function()
  before_each(function()
    thread_errors = {}
    copas.seterrorhandler(collect, true)
  end)
  after_each(function()
    copas.seterrorhandler(nil)
    assert.are.same({}, thread_errors)
    H.assert_clean()
  end)

  describe("module", function()
    it("is the same table under both names, callable, with its submodules", function()
      assert.are.equal(copas, require("socket.async.copas"))
      assert.are.equal(copas.lock, require("copas.lock"))
      assert.are.equal(copas.timer, require("copas.timer"))
      assert.are.equal(copas.queue, require("copas.queue"))
      assert.are.equal(copas.semaphore, require("copas.semaphore"))
      assert.are.equal(copas.future, require("copas.future"))
      local ran = false
      copas(function() ran = true end)
      assert.is_true(ran)
      assert.is_false(copas.running)
    end)

    it("reloading copas restores the default error handler", function()
      copas.seterrorhandler(silent, true)
      package.loaded.copas = nil
      local again = require("copas")
      assert.are.equal(copas, again)
      assert.are_not.equal(silent, copas.geterrorhandler())
      copas.seterrorhandler(collect, true)
    end)
  end)

  describe("threads and the loop", function()
    it("addthread passes arguments, returns the thread's coroutine, and the loop ends", function()
      local seen, inside
      local co = copas.addthread(function(a, b)
        inside = coroutine.running()
        copas.pause(0.01)
        seen = a + b
      end, 2, 3)
      assert.are.equal("thread", type(co))
      assert.is_false(copas.finished())
      copas.loop()
      assert.are.equal(5, seen)
      assert.are.equal(co, inside)
      assert.are.equal("dead", coroutine.status(co))
      assert.is_true(copas.finished())
    end)

    it("names threads, and the initializer is copas_initializer", function()
      local name, named
      copas.loop(function()
        name = copas.getthreadname()
        local co = copas.addnamedthread("worker", function()
          named = copas.getthreadname()
          copas.setthreadname("renamed")
        end)
        copas.pause(0.01)
        assert.are.equal("renamed", copas.getthreadname(co))
      end)
      assert.are.equal("copas_initializer", name)
      assert.are.equal("worker", named)
    end)

    it("pauseforever sleeps until wakeup; pause returns the time slept", function()
      local order = {}
      copas.loop(function()
        local sleeper = copas.addthread(function()
          order[#order + 1] = "sleep"
          local slept = copas.pauseforever()
          order[#order + 1] = "woke"
          assert.is_true(slept >= 0.04)
        end)
        local slept = copas.pause(0.05)
        assert.is_true(slept >= 0.05 and slept < 0.5)
        copas.wakeup(sleeper)
        copas.pause()
        order[#order + 1] = "main"
      end)
      assert.are.same({ "sleep", "woke", "main" }, order)
    end)

    it("wakeup cuts a pause short; sleep(-1) sleeps until woken", function()
      local took
      copas.loop(function()
        local a = copas.addthread(function()
          local t0 = socket.gettime()
          copas.pause(10)
          took = socket.gettime() - t0
        end)
        local b = copas.addthread(function() copas.sleep(-1) end)
        copas.pause(0.02)
        copas.wakeup(a)
        copas.wakeup(b)
      end)
      assert.is_true(took < 1)
    end)

    it("ends while a thread still sleeps forever, dropping it without resuming it", function()
      local closed, resumed = false, false
      copas.addthread(function()
        local _ <close> = setmetatable({}, { __close = function() closed = true end })
        copas.pauseforever()
        resumed = true
      end)
      local t0 = socket.gettime()
      copas.loop()
      assert.is_true(socket.gettime() - t0 < 1)
      assert.is_false(resumed)
      assert.is_true(closed)
    end)

    it("removethread drops a thread at once, even before it first ran", function()
      local ticks, started = 0, false
      copas.loop(function()
        local endless = copas.addthread(function()
          while true do
            ticks = ticks + 1
            copas.pause(0.01)
          end
        end)
        local never = copas.addthread(function() started = true end)
        copas.removethread(never)
        copas.pause(0.05)
        copas.removethread(endless)
      end)
      local at_end = ticks
      assert.is_true(at_end > 0)
      assert.is_false(started)
    end)

    it("exit wakes waitforexit, and work scheduled during the exit still runs", function()
      local log = {}
      copas.loop(function()
        copas.addthread(function()
          copas.waitforexit()
          log[#log + 1] = "exit seen"
          assert.is_true(copas.exiting())
          copas.addthread(function()
            copas.pause(0.01)
            log[#log + 1] = "late work"
          end)
        end)
        assert.is_false(copas.exiting())
      end)
      assert.are.same({ "exit seen", "late work" }, log)
    end)

    it("cancelall ends a loop with sleepers, servers and blocked readers", function()
      local t0 = socket.gettime()
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, function() copas.pause(3600) end)
        copas.addthread(function() copas.pause(3600) end)
        copas.addthread(function()
          local c = copas.wrap(socket.tcp())
          assert(c:connect("127.0.0.1", port))
          c:receive()
          c:close()
        end)
        copas.pause(0.05)
        copas.cancelall()
      end)
      assert.is_true(socket.gettime() - t0 < 2)
    end)

    it("step runs the threads a round at a time", function()
      local count = 0
      copas.addthread(function()
        for _ = 1, 3 do
          count = count + 1
          copas.pause(0.01)
        end
      end)
      local steps = 0
      while not copas.finished() and steps < 1000 do
        copas.step(0.1)
        steps = steps + 1
      end
      assert.are.equal(3, count)
      assert.is_true(steps >= 3)
      assert.is_false(copas.step(0))
    end)

    it("copas.timeout calls back for a coroutine, and 0 cancels it", function()
      local fired, cancelled_fired = nil, false
      copas.loop(function()
        local me = coroutine.running()
        copas.timeout(0.02, function(co)
          fired = co
          copas.wakeup(co)
        end)
        copas.pauseforever()
        copas.timeout(0.02, function() cancelled_fired = true end)
        assert.are.equal(1, copas.gettimeouts())
        copas.timeout(0)
        assert.are.equal(0, copas.gettimeouts())
        copas.pause(0.05)
        assert.are.equal(me, fired)
      end)
      assert.is_false(cancelled_fired)
    end)

    it("status counts the threads by what they wait for", function()
      local st
      copas.loop(function()
        copas.addthread(function() copas.pause(0.2) end)
        local idle = copas.addthread(function() copas.pauseforever() end)
        copas.pause(0.01)
        st = copas.status()
        copas.wakeup(idle)
      end)
      assert.is_true(st.running)
      assert.are.equal(1, st.timer)
      assert.are.equal(1, st.inactive)
      assert.are.equal(1, st.active)  -- the initializer itself
    end)
  end)

  describe("errors", function()
    it("go to the thread's handler, else the default, with a traceback naming it", function()
      local got = {}
      copas.seterrorhandler(function(msg, co, skt)
        got.default = copas.gettraceback(msg, co, skt)
      end, true)
      copas.loop(function()
        copas.addnamedthread("own", function()
          copas.seterrorhandler(function(msg) got.own = msg end)
          error("mine", 0)
        end)
        copas.addnamedthread("failing", function() error("boom") end)
      end)
      package.loaded.copas = nil
      require("copas")  -- restores the default handler
      assert.are_not.equal(collect, copas.geterrorhandler())
      copas.seterrorhandler(collect, true)
      assert.are.equal("mine", got.own)
      assert.matches("copas_spec%.lua:%d+: boom %(coroutine: failing, socket: nil%)", got.default)
      assert.matches("stack traceback:", got.default)
    end)

    it("a bare coroutine.yield in a thread is reported", function()
      local msg
      copas.loop(function()
        copas.seterrorhandler(function(m) msg = m end)
        coroutine.yield()
      end)
      assert.matches("user-code cannot yield to Copas", msg, 1, true)
    end)

    it("the default report prints the traceback", function()
      package.loaded.copas = nil
      require("copas")  -- the default report again
      local printed
      local old = _G.print
      _G.print = function(s) printed = s end
      copas.loop(function() error("printed error", 0) end)
      _G.print = old
      copas.seterrorhandler(collect, true)
      assert.matches("printed error %(coroutine: copas_initializer, socket: nil%)", printed)
    end)
  end)

  describe("sockets", function()
    it("echo server with addserver and handler; client with wrap and connect", function()
      local server_name, client_name, peer, lines = nil, nil, nil, {}
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, copas.handler(function(skt)
          server_name = copas.getsocketname(skt)
          client_name = copas.getthreadname()
          peer = skt:getpeername()
          while true do
            local line = skt:receive()
            if not line then break end
            skt:send(line .. "\n")
          end
        end), nil, "echo")
        local c = copas.wrap(socket.tcp())
        assert.matches("copas wrapped", tostring(c))
        assert(c:connect("127.0.0.1", port))
        for i = 1, 3 do
          assert(c:send("line " .. i .. "\n"))
          lines[i] = c:receive()
        end
        c:close()
        copas.removeserver(srv)
      end)
      assert.are.same({ "line 1", "line 2", "line 3" }, lines)
      assert.are.equal("echo:client_1", server_name)
      assert.are.equal("echo:handler_1", client_name)
      assert.are.equal("127.0.0.1", peer)
    end)

    it("closes accepted clients when their handler ends (autoclose)", function()
      local got
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, function(skt) copas.send(skt, "bye\n") end)
        local c = copas.wrap(socket.tcp())
        assert(c:connect("127.0.0.1", port))
        assert.are.equal("bye", c:receive())
        got = { c:receive() }
        c:close()
        copas.removeserver(srv)
      end)
      assert.are.same({ nil, "closed" }, { got[1], got[2] })
    end)

    it("raw copas.receive/copas.send/copas.connect work on plain sockets", function()
      local echoed
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, function(skt)
          local data = copas.receive(skt, 5)
          copas.send(skt, data:upper())
        end)
        local c = socket.tcp()
        assert(copas.connect(c, "127.0.0.1", port))
        assert.are.equal(5, copas.send(c, "hello"))
        echoed = copas.receive(c, 5)
        copas.close(c)
        copas.removeserver(srv)
      end)
      assert.are.equal("HELLO", echoed)
    end)

    it("read timeouts: settimeout, settimeouts and the socket's own errors", function()
      local r = {}
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, function() copas.pause(0.3) end)
        local c = copas.wrap(socket.tcp())
        assert.are.same({ nil, "timeout must be 'nil' or a number" }, { c:settimeout("x") })
        c:settimeouts(nil, nil, 0.02)
        assert(c:connect("127.0.0.1", port))
        local t0 = socket.gettime()
        r.plain = { c:receive() }
        r.took = socket.gettime() - t0
        c:settimeout(-1)
        c:settimeout(0.02)
        r.again = { c:receive(10) }
        c:close()
        copas.removeserver(srv)
      end)
      assert.are.same({ nil, "timeout" }, { r.plain[1], r.plain[2] })
      assert.is_true(r.took >= 0.02 and r.took < 0.25)
      assert.are.same({ nil, "timeout" }, { r.again[1], r.again[2] })
    end)

    it("receivepartial returns as soon as some data arrived", function()
      local got
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, function(skt)
          copas.send(skt, "part")
          copas.pause(0.2)
        end)
        local c = copas.wrap(socket.tcp())
        assert(c:connect("127.0.0.1", port))
        c:settimeout(0)  -- copas: receive on a read timeout of 0 is receivepartial
        got = { c:receive("*a") }
        c:close()
        copas.removeserver(srv)
      end)
      assert.are.same({ nil, "timeout", "part" }, got)
    end)

    it("a close from another thread ends a pending receive with closed", function()
      local got
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, function() copas.pause(0.2) end)
        local c = copas.wrap(socket.tcp())
        assert(c:connect("127.0.0.1", port))
        copas.addthread(function()
          copas.pause(0.02)
          c:close()
        end)
        got = { c:receive() }
        copas.removeserver(srv)
      end)
      assert.are.same({ nil, "closed" }, { got[1], got[2] })
    end)

    it("removeserver with keep_open leaves the socket usable for a new addserver", function()
      local served = 0
      copas.loop(function()
        local srv, port = H.server()
        for _ = 1, 2 do
          copas.addserver(srv, function(skt)
            served = served + 1
            copas.removeserver(srv, true)
            skt:receive()
          end)
          local c = copas.wrap(socket.tcp())
          assert(c:connect("127.0.0.1", port))
          c:send("x\n")
          copas.pause(0.02)
          c:close()
        end
        srv:close()
      end)
      assert.are.equal(2, served)
    end)

    it("an idle loop collects garbage, closing sockets dropped without close", function()
      local got
      copas.loop(function()
        local srv, port = H.server()
        copas.addserver(srv, function(skt)
          got = copas.receive(skt, "*a")
          copas.removeserver(srv)
        end)
        copas.addthread(function()
          local c = socket.tcp()
          assert(copas.connect(c, "127.0.0.1", port))
          copas.send(c, "unclosed")
        end)
      end)
      assert.are.equal("unclosed", got)
    end)

    it("UDP: wrapped sockets and a UDP server thread", function()
      local got
      copas.loop(function()
        local server = socket.udp()
        assert(server:setsockname("127.0.0.1", 0))
        local _, port = server:getsockname()
        copas.addserver(server, function(skt)
          local s = copas.wrap(skt)
          local data, ip, p = s:receivefrom()
          s:sendto(data:upper(), ip, p)
          server:close()
        end)
        local c = copas.wrap(socket.udp())
        c:settimeout(1)
        assert(c:setpeername("127.0.0.1", port))
        c:send("ping")
        got = c:receive()
        assert.is_true(c:close())  -- copas leaves wrapped UDP sockets open
        c.socket:close()
      end)
      assert.are.equal("PING", got)
    end)
  end)

  describe("lock", function()
    it("re-entrant by default; timeouts; release by the owner only; destroy", function()
      local r = {}
      copas.loop(function()
        local l = copas.lock.new()
        assert.are.equal(0, l:get())
        assert.are.equal(0, l:get())  -- re-entrant
        copas.addthread(function()
          r.other = { l:get(0.05) }
          r.release = { l:release() }
        end)
        copas.pause(0.1)
        assert(l:release())
        assert(l:release())
        local strict = copas.lock.new(nil, true)
        assert(strict:get())
        r.strict = { strict:get(0.02) }
        copas.addthread(function() r.destroyed = { strict:get() } end)
        copas.pause(0.01)
        strict:destroy()
        copas.pause(0.01)
        r.after = { strict:get() }
      end)
      assert.are.equal("timeout", r.other[2])
      assert.are.same({ nil, "cannot release a lock not owned" }, r.release)
      assert.are.equal("timeout", r.strict[2])
      assert.are.equal("destroyed", r.destroyed[2])
      assert.are.same({ nil, "destroyed" }, r.after)
    end)

    it("hands the lock over in arrival order", function()
      local order = {}
      copas.loop(function()
        local l = copas.lock.new()
        l:get()
        for i = 1, 3 do
          copas.addthread(function()
            assert(l:get())
            order[#order + 1] = i
            copas.pause(0.005)
            l:release()
          end)
        end
        copas.pause(0.01)
        l:release()
      end)
      assert.are.same({ 1, 2, 3 }, order)
    end)
  end)

  describe("semaphore", function()
    it("takes and gives counted resources in order", function()
      local r = {}
      copas.loop(function()
        local s = copas.semaphore.new(10, 5, 1)
        assert(s:take(3))
        assert.are.equal(2, s:get_count())
        r.now = { s:take(3, 0) }
        r.toomany = { s:take(11) }
        local got = {}
        copas.addthread(function() s:take(4); got[#got + 1] = "a" end)
        copas.addthread(function() s:take(1); got[#got + 1] = "b" end)
        copas.pause(0.01)
        assert.are.equal(3, s:get_wait())  -- 5 wanted, 2 there
        assert(s:give(3))
        copas.pause(0.01)
        r.order = got
        r.capped = { s:give(100) }
        assert.are.equal(10, s:get_count())
        s:destroy()
        r.destroyed = { s:take() }
      end)
      assert.are.same({ nil, "timeout" }, r.now)
      assert.are.same({ nil, "too many" }, r.toomany)
      assert.are.same({ "a", "b" }, r.order)
      assert.are.same({ nil, "too many" }, r.capped)
      assert.are.same({ nil, "destroyed" }, r.destroyed)
    end)
  end)

  describe("queue", function()
    it("is FIFO with nil items; pop times out; workers handle items; finish", function()
      local r, handled = {}, {}
      copas.loop(function()
        local q = copas.queue.new({ name = "jobs" })
        q:push(1)
        q:push(nil)
        q:push(3)
        assert.are.equal(3, q:get_size())
        r.items = { q:pop(), q:pop(), q:pop() }
        r.timeout = { q:pop(0.01) }
        for i = 1, 4 do q:push(i) end
        local w = q:add_worker(function(item)
          copas.pause(0.001)
          handled[#handled + 1] = item
        end)
        assert.are.equal("jobs:worker_1", copas.getthreadname(w))
        assert(q:finish(2))
        r.after = { q:push(5) }
      end)
      assert.are.same({ 1, nil, 3 }, r.items)
      assert.are.same({ nil, "timeout" }, r.timeout)
      assert.are.same({ 1, 2, 3, 4 }, handled)
      assert.are.same({ nil, "destroyed" }, r.after)
    end)

    it("finish times out when nobody takes the items", function()
      local r
      copas.loop(function()
        local q = copas.queue.new()
        q:push("left")
        r = { q:finish(0.05) }
      end)
      assert.are.same({ nil, "timeout" }, r)
    end)
  end)

  describe("timer", function()
    it("one-shot, recurring, cancel, re-arm, and errors to its handler", function()
      local log = { once = 0, every = 0, errors = 0 }
      copas.loop(function()
        copas.timer.new({ delay = 0.01, callback = function(_, p)
          log.once = log.once + 1
          log.param = p
        end, params = "P" })
        copas.timer.new({ delay = 0.01, recurring = true, callback = function(t)
          log.every = log.every + 1
          if log.every == 3 then t:cancel() end
        end })
        local rearmed = false
        copas.timer.new({ delay = 0.01, callback = function(t)
          if not rearmed then
            rearmed = true
            assert.are.equal(t, t:arm(0.01))
          else
            log.rearmed = true
          end
        end })
        copas.timer.new({ delay = 0.01, recurring = true, name = "bad",
          errorhandler = function(_, co)
            log.errors = log.errors + 1
            log.where = copas.getthreadname(co)
          end,
          callback = function(t)
            if log.errors == 1 then t:cancel() end
            error("timer error")
          end })
        local t = copas.timer.new({ delay = 10, callback = function() log.never = true end })
        assert.are.same({ nil, "already armed" }, { t:arm() })
        assert.are.equal(t, t:cancel())
        assert.are.same({ nil, "not armed" }, { t:cancel() })
      end)
      assert.are.equal(1, log.once)
      assert.are.equal("P", log.param)
      assert.are.equal(3, log.every)
      assert.is_true(log.rearmed)
      assert.are.equal(2, log.errors)
      assert.are.equal("bad", log.where)
      assert.is_nil(log.never)
    end)
  end)

  describe("future", function()
    it("get, try and cancel", function()
      local r = {}
      copas.loop(function()
        local f = copas.future.addthread(function(a)
          copas.pause(0.01)
          return a, "x"
        end, 7)
        assert.are.equal(copas.future.PENDING, f:try())
        r.got = { f:get() }
        r.try = { f:try() }
        local bad = copas.future.addthread(function() error("fail", 0) end)
        r.bad = { bad() }
        local slow = copas.future.addthread(function() copas.pause(5) end)
        assert.is_true(slow:cancel())
        r.cancelled = { slow:get() }
      end)
      assert.are.same({ true, 7, "x" }, r.got)
      assert.are.same({ true, 7, "x" }, r.try)
      assert.are.same({ false, "fail" }, r.bad)
      assert.are.same({ false, "cancelled" }, r.cancelled)
      assert.has_error(function() return copas.future.PNEDING end)
    end)
  end)

  describe("inside socket.async.run", function()
    it("copas.loop runs as part of the current task", function()
      local done = false
      socket.async.run(function()
        copas.addthread(function()
          copas.pause(0.01)
          done = true
        end)
        copas.loop()
      end)
      assert.is_true(done)
    end)
  end)
end)
