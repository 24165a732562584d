-- Regression 012: a cancelled task that ignored "cancelled" kept the program alive.
--
-- `while true do async.sleep(1) end` cancelled spun at 100% CPU and run never returned: every
-- wait after cancellation returned at once and the loop ignored the result. Waits still return
-- "cancelled" at once, so cleanup code runs, but a wait made more than 0.1 s after the first
-- cancelled one ends the task: its to-be-closed variables run and it finishes as failed with
-- "cancelled".
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 012: cancellation that ends", function()
  after_each(H.assert_clean)

  it("a task ignoring cancellation is ended, and run returns", function()
    local t0 = socket.gettime()
    local closed = false
    local status, joined
    async.run(function()
      local t = async.spawn(function()
        local guard <close> =  -- luacheck: ignore 211 (kept for its __close)
          setmetatable({}, { __close = function() closed = true end })
        while true do async.sleep(1) end
      end)
      async.sleep(0.01)
      t:cancel()
      joined = { t:join(5) }
      status = t:status()
    end)
    local took = socket.gettime() - t0
    assert.is_true(took < 2, "run returned after " .. took .. " s")
    assert.are.same({ nil, "cancelled" }, joined)
    assert.are.equal("failed", status)
    assert.is_true(closed, "its to-be-closed variable ran")
  end)

  it("cleanup right after cancellation still runs, its waits returning cancelled", function()
    async.run(function()
      local c, s = H.pair()
      local log = {}
      local t = async.spawn(function()
        local ok, err = s:receive()
        log[#log + 1] = tostring(ok) .. " " .. tostring(err)
        -- cleanup: a send that need not wait is done; a sleep returns "cancelled" at once
        log[#log + 1] = tostring(s:send("bye\n"))
        log[#log + 1] = select(2, async.sleep(1))
        s:close()
        return "cleaned"
      end)
      async.sleep(0.01)
      t:cancel()
      assert.are.equal("cleaned", t:join(2))
      assert.are.same({ "nil cancelled", "4.0", "cancelled" }, log)
      assert.are.equal("bye", c:receive())
      c:close()
    end)
  end)
end)
