-- Regression 201: socket.skip(-1e6) crashed the interpreter (SIGSEGV).
--
-- skip narrowed its count to an int and returned "the number of arguments minus the count",
-- so a negative count made it return a million stack slots below its arguments, and a count
-- beyond 2^31 wrapped to a negative one. The count is now compared as an integer, a count of at
-- least the number of arguments returns nothing (as LuaSocket does for skipping more than there
-- are), and a negative count raises an argument error.
local socket = require("socket")
local H = require("support.helpers").use(_ENV)

H.modes("regression 201", function(run)
  it("a negative count raises an argument error", function()
    run(function()
      for _, n in ipairs({ -1, -2, -1e6, math.mininteger, -2 ^ 31 }) do
        local ok, err = pcall(socket.skip, n, "a", "b")
        assert.is_false(ok)
        assert.matches("bad argument #1 to '[%w.]*skip' %(non%-negative count expected%)", err)
      end
    end)
  end)

  it("a count of all the arguments or more returns nothing", function()
    run(function()
      for _, n in ipairs({ 2, 3, 1e6, 2 ^ 31, 2 ^ 32 + 1, 2 ^ 53, math.maxinteger }) do
        assert.are.equal(0, select("#", socket.skip(n, "a", "b")))
      end
    end)
  end)

  it("smaller counts return the arguments after them", function()
    run(function()
      assert.are.same({ "a", "b" }, { socket.skip(0, "a", "b") })
      assert.are.same({ "b" }, { socket.skip(1, "a", "b") })
      assert.are.same({ "b" }, { socket.skip(1.0, "a", "b") })
      assert.are.equal(0, select("#", socket.skip(0)))
    end)
  end)

  it("a count that is not an integer raises", function()
    run(function()
      assert.is_false(pcall(socket.skip, 1.5, "a"))
      assert.is_false(pcall(socket.skip, 0 / 0, "a"))
      assert.is_false(pcall(socket.skip, "x", "a"))
      assert.is_false(pcall(socket.skip))
    end)
  end)
end)
