-- Regression 005: a second reader changed the first reader's pattern.
--
-- Task A waited in receive("*l") with "ab" buffered; task B called receive(1) on the same
-- socket. B's entry reset the socket's pattern before the busy check, so B got "a" and A then
-- returned "b" as its line. The read direction now belongs to A until its call returns: B waits
-- its turn and reads what follows A's line.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 005: two readers", function()
  after_each(H.assert_clean)

  it("a queued receive never sees another receive's pattern", function()
    async.run(function()
      local c, s = H.pair()
      c:send("ab")
      local a, b
      local ta = async.spawn(function() a = { s:receive("*l") }; return true end)
      async.sleep(0.02)
      local tb = async.spawn(function() b = { s:receive(1) }; return true end)
      async.sleep(0.02)
      assert.is_nil(a, "A still waits for its line")
      assert.is_nil(b, "B waits for its turn")
      c:send("c\nz")
      assert(ta:join(5))
      assert(tb:join(5))
      assert.are.same({ "abc", nil, nil }, a)
      assert.are.same({ "z", nil, nil }, b)
      c:close(); s:close()
    end)
  end)

  it("three readers with prefixes and counts are served in arrival order", function()
    async.run(function()
      local c, s = H.pair()
      local results = {}
      local tasks = {}
      for i, args in ipairs({ { "*l", "p1:" }, { 3, "p2:" }, { "*l" } }) do
        tasks[i] = async.spawn(function()
          results[i] = { s:receive(args[1], args[2]) }
          return true
        end)
        async.sleep(0.01)
      end
      c:send("first\nsecond\n")
      for i = 1, 3 do assert(tasks[i]:join(5)) end
      assert.are.same({ "p1:first", nil, nil }, results[1])
      assert.are.same({ "p2:", nil, nil }, results[2])  -- the prefix already holds 3 bytes
      assert.are.same({ "second", nil, nil }, results[3])
      c:close(); s:close()
    end)
  end)
end)
