-- Regression 009: a socket collected while a task waited on its descriptor.
--
-- A task can wait on a socket's descriptor without holding the socket (socket.async.waitfd on
-- getfd(), as a C library would). When the socket is collected, its descriptor is closed:
-- the waiting task must wake with "closed", not wait on a closed (and maybe reused) descriptor.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 009: collected while waited on", function()
  after_each(H.assert_clean)

  it("waitfd on the descriptor of a socket that is then collected", function()
    async.run(function()
      local c, s = H.pair()
      local fd = s:getfd()
      local r
      local t = async.spawn(function() r = { async.waitfd(fd, "r", 5) }; return true end)
      async.sleep(0.02)
      s = nil  -- luacheck: ignore 311 (dropped on purpose, for the collector)
      collectgarbage()
      collectgarbage()
      assert(t:join(2))
      assert.are.same({ nil, "closed" }, r)
      c:close()
    end)
  end)

  it("select on a socket that another task closes and drops", function()
    async.run(function()
      local c, s = H.pair()
      local r
      local t = async.spawn(function() r = { socket.select({ s }, nil, 5) }; return true end)
      async.sleep(0.02)
      s:close()
      assert(t:join(2))
      assert.are.equal(1, #r[1])
      c:close()
    end)
  end)
end)
