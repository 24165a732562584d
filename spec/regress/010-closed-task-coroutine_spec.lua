-- Regression 010: coroutine.close() on the coroutine of a waiting task.
--
-- The scheduler later resumed the closed coroutine and read an error object that no longer
-- existed (a Lua built with API checks aborts there), and the lookup job the task held leaked.
-- The runtime's coroutine.close now ends such a task cleanly: its wait is abandoned (a lookup
-- orphaned, a socket direction released), its to-be-closed variables run, and it finishes as
-- failed with "coroutine closed".
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 010: closing a task's coroutine", function()
  after_each(H.assert_clean)

  it("a task waiting in receive: the read direction is free again", function()
    async.run(function()
      local c, s = H.pair()
      local co
      local closed_var = false
      local t = async.spawn(function()
        co = coroutine.running()
        local guard <close> =  -- luacheck: ignore 211 (kept for its __close)
          setmetatable({}, { __close = function() closed_var = true end })
        return s:receive("*l")
      end)
      async.sleep(0.02)
      assert.are.equal("waiting", t:status())
      assert.is_true(coroutine.close(co))
      assert.is_true(closed_var, "its to-be-closed variable ran")
      assert.are.equal("failed", t:status())
      assert.are.same({ nil, "coroutine closed" }, { t:join() })
      c:send("next\n")
      assert.are.equal("next", s:receive("*l"), "the direction was released")
      c:close(); s:close()
    end)
  end)

  it("a task waiting for a lookup: the job frees itself, run returns", function()
    async.run(function()
      local co
      local t = async.spawn(function()
        co = coroutine.running()
        return socket.dns.toip("localhost")
      end)
      async.sleep(0)  -- let it start its lookup
      assert.is_true(coroutine.close(co))
      assert.are.same({ nil, "coroutine closed" }, { t:join() })
    end)
    local deadline = socket.gettime() + 5
    while async._debug().jobs > 0 and socket.gettime() < deadline do socket.sleep(0.01) end
    assert.are.equal(0, async._debug().jobs)
  end)

  it("a task that never ran, and one ready to run", function()
    async.run(function()
      local ran = false
      local t = async.spawn(function() ran = true end)
      local co = debug.getuservalue(t, 1)  -- a task's handle keeps its coroutine there
      assert.is_true(coroutine.close(co))
      async.sleep(0.01)
      assert.is_false(ran)
      assert.are.equal("failed", t:status())
    end)
  end)

  it("closing the running task's own coroutine is refused as Lua refuses it", function()
    async.run(function()
      local ok, err = pcall(coroutine.close, coroutine.running())
      assert.is_false(ok)
      assert.is_truthy(err:find("cannot close a running coroutine", 1, true))
    end)
  end)
end)
