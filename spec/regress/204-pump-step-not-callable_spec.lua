-- Regression 204: ltn12.pump.step(42, sink) raised "attempt to call a number value" from inside
-- ltn12.lua.
--
-- pump.all checked its source and sink, but pump.step, which pump.all calls and which users
-- call directly, called whatever it was given. It now checks both (a function or a callable
-- table, as socket.source returns) and raises a standard argument error; pump.all checks its
-- optional step function the same way.
local ltn12 = require("ltn12")
local H = require("support.helpers").use(_ENV)

H.modes("regression 204", function(run)
  it("pump.step names a source or sink that cannot be called", function()
    run(function()
      local snk = ltn12.sink.null()
      local src = ltn12.source.string("x")
      for _, v in ipairs({ 42, "x", {}, true, io.stdout }) do
        local ok, err = pcall(ltn12.pump.step, v, snk)
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'step' %(source expected, got %w+%)", err)
        ok, err = pcall(ltn12.pump.step, src, v)
        assert.is_false(ok)
        assert.matches("bad argument #2 to 'step' %(sink expected, got %w+%)", err)
      end
      assert.has_error(function() ltn12.pump.step() end,
        "bad argument #1 to 'step' (source expected, got no value)")
    end)
  end)

  it("pump.all names a step that cannot be called", function()
    run(function()
      assert.has_error(function()
        ltn12.pump.all(ltn12.source.string("x"), ltn12.sink.null(), 42)
      end, "bad argument #3 to 'all' (function expected, got number)")
    end)
  end)

  it("callable tables still pump", function()
    run(function()
      local store, t = ltn12.sink.table()
      local read = ltn12.source.string("abc")
      local src = setmetatable({}, { __call = function() return read() end })
      local snk = setmetatable({}, {
        __call = function(_, chunk, err) return store(chunk, err) end,
      })
      assert.are.equal(1, ltn12.pump.step(src, snk))
      assert.is_nil(ltn12.pump.step(src, snk))
      assert.are.equal("abc", table.concat(t))
    end)
  end)
end)
