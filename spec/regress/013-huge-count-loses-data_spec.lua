-- Regression 013: receive(1e12) failed at once and lost sight of the data waiting.
--
-- A count receive allocated its whole size up front: receive(1e12) failed at once with "Cannot
-- allocate memory" and returned none of the 5 bytes already waiting. The buffer now grows with
-- the data that arrives (at most 1 MiB is set aside before it comes), so such a call waits like
-- any other and returns what came as its partial result.
local H = require("support.helpers").use(_ENV)

H.modes("regression 013: huge counts", function(run)
  it("receive(1e12) returns the bytes that came with the timeout", function()
    run(function()
      local c, s = H.pair()
      c:send("hello")
      s:settimeout(0.1)
      assert.are.same({ nil, "timeout", "hello" }, { s:receive(1e12) })
      c:send("world")
      c:close()
      s:settimeout(2)
      assert.are.same({ nil, "closed", "world" }, { s:receive(2 ^ 40) })
      s:close()
    end)
  end)

  it("a large count is read whole as its data arrives", function()
    run(function()
      local c, s = H.pair()
      local data = string.rep("0123456789", 400000)  -- 4 MB
      c:settimeout(5)
      s:settimeout(5)
      -- a writer in the same thread would block in blocking mode: send in pieces instead
      local got = {}
      for i = 1, #data, 1000000 do
        assert(c:send(data, i, i + 999999))
        got[#got + 1] = assert(s:receive(math.min(1000000, #data - i + 1)))
      end
      assert.are.equal(data, table.concat(got))
      c:close(); s:close()
    end)
  end)
end)
