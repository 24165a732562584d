-- Regression 016: the idle collection waited for the next I/O event when the last task had run
-- longer than the idle delay.
--
-- The idle timer was started from the loop's cached clock, which is as old as the tasks' run
-- was long: after a run of more than 100 ms it was due at once, fired at the start of the next
-- uv_run, before the poll, and the poll then waited with no timeout for whatever came next, so
-- the scheduler saw the timer only then (in bench/'s hold scenario, about one run in three kept
-- the burst's garbage). The timer now counts from the real time and ends the uv_run it fires in.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")
local async = socket.async

describe("regression 016", function()
  after_each(H.assert_clean)

  it("collects about 100 ms after the loop went idle, after a long run too", function()
    local p, port = H.listen_peer("socket.sleep(1) c:send('x\\n')")
    local seen = {}
    local pause = collectgarbage("setpause", 1000)  -- only the idle collection collects below
    collectgarbage()
    local ok, err = pcall(async.run, function()
      local c = assert(socket.connect("127.0.0.1", port))
      do
        local junk = {}
        for i = 1, 3 * 1024 do junk[i] = string.rep("x", 1000) .. i end
        setmetatable(junk, { __gc = function() seen.at = async.now() end })
      end
      local stop = async.now() + 0.2
      while async.now() < stop do end  -- the loop's cached clock falls 0.2 s behind
      local t0 = async.now()
      assert.are.equal("x", c:receive())  -- only the peer's line, about 0.8 s later, ends this
      c:close()
      assert.is_not_nil(seen.at, "the burst was not collected")
      assert.is_true(seen.at - t0 < 0.4, ("collected %.3f s after the loop went idle"):format(
        seen.at - t0))
    end)
    collectgarbage("setpause", pause)
    p:close()
    assert(ok, err)
  end)
end)
