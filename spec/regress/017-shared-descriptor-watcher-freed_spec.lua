-- Regression 017: a socket kept a pointer to its descriptor's watcher after another socket,
-- given the same descriptor with setfd, closed it.
--
-- The loop freed the watcher soon after, and the first socket's next setfd or close used the
-- freed memory (valgrind reports an invalid read in drop_watch). A socket now finds its watcher
-- by descriptor each time it needs it, so a watcher closed through another object is gone.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 017: a watcher closed through another socket of its descriptor", function()
  after_each(H.assert_clean)

  it("the reader hears closed; the first socket can still be given up and closed", function()
    async.run(function()
      local c, s = H.pair()
      local r
      local t = async.spawn(function() r = { c:receive("*l") }; return true end)
      async.sleep(0.02)  -- c's watcher exists and its reader waits
      local other = socket.tcp()
      other:setfd(c:getfd())
      assert.are.equal(1, other:close())  -- closes the descriptor and its watcher
      assert(t:join(2))
      assert.are.same({ nil, "closed" }, { r[1], r[2] })
      async.sleep(0.02)  -- the loop runs: the watcher's memory is gone by now
      c:setfd(-1)
      assert.are.equal(-1, c:getfd())
      assert.are.equal(1, c:close())
      s:close()
    end)
  end)
end)
