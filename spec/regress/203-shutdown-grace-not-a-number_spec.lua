-- Regression 203: async.shutdown(io.stdout) raised "attempt to perform arithmetic on a FILE*
-- value" from inside serve.lua.
--
-- shutdown added its grace argument to the clock without looking at it, so any value that is
-- not a number failed deep inside, after the listeners had already been closed. The argument
-- is now checked first: anything but nil or a number raises a standard argument error and
-- changes nothing.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

H.modes("regression 203", function(run)
  it("a grace that is not a number raises an argument error naming it", function()
    run(function()
      for _, v in ipairs({ io.stdout, "soon", {}, true, print }) do
        local ok, err = pcall(async.shutdown, v)
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'shutdown' %(number expected, got [%w*]+%)", err)
        assert.is_nil(err:find("attempt to", 1, true))
      end
      local _, err = pcall(async.shutdown, io.stdout)
      assert.matches("got FILE%*%)$", err)
    end)
  end)

  it("no grace or a number still shuts down", function()
    run(function()
      assert.are.equal(0, async.shutdown())
      assert.are.equal(0, async.shutdown(0))
      assert.are.equal(0, async.shutdown(0.01))
    end)
  end)
end)

describe("regression 203 [task]", function()
  after_each(H.assert_clean)

  it("a bad grace leaves the serve loops running", function()
    async.run(function()
      local srv, port = H.server()
      async.serve(srv, function(c) c:send("hi\n") end)
      assert.is_false(pcall(async.shutdown, io.stdout))
      assert.are.equal(1, async.serving())
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(2)
      assert.are.equal("hi", c:receive())
      c:close()
      assert.are.equal(0, async.shutdown(1))
      assert.are.equal(0, async.serving())
    end)
  end)
end)
