-- Regression 004: two tasks sending on one socket lost data.
--
-- Task A sent 8 MiB and waited for room; task B sent "hello" on the same socket. B's entry
-- wrote its range into the socket before the busy check refused it ("Operation already in
-- progress"), so A went on with B's range and returned 5, although the peer had received only
-- part of A's data. Each direction of a socket now belongs to one call from entry to return:
-- B waits its turn, and each send returns its own count with every byte delivered in order.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 004: two writers", function()
  after_each(H.assert_clean)

  it("a large send and a small one from two tasks both arrive whole, in call order", function()
    async.run(function()
      local c, s = H.pair()
      local big = string.rep("0123456789abcdef", 512 * 1024)  -- 8 MiB
      local got = {}
      local reader = async.spawn(function()
        got.data = assert(s:receive(#big + 5))
        return true
      end)
      local a = async.spawn(function() got.a = { c:send(big) }; return true end)
      local b = async.spawn(function() got.b = { c:send("hello") }; return true end)
      assert(a:join(30))
      assert(b:join(30))
      assert(reader:join(30))
      assert.are.same({ #big, nil, nil }, got.a)
      assert.are.same({ 5, nil, nil }, got.b)
      assert.is_true(got.data:sub(1, #big) == big, "the large send arrived whole and first")
      assert.are.equal("hello", got.data:sub(#big + 1))
      c:close(); s:close()
    end)
  end)

  it("many writers of lines: no line is cut by another", function()
    async.run(function()
      local c, s = H.pair()
      local n, line = 40, string.rep("x", 200000) .. "\n"
      local tasks = {}
      for i = 1, n do
        tasks[i] = async.spawn(function()
          local tag = ("%03d"):format(i)
          assert.are.equal(#line + 3, c:send(tag .. line))
          return true
        end)
      end
      local seen = {}
      for _ = 1, n do
        local l = assert(s:receive("*l"))
        assert.are.equal(#line + 2, #l)
        assert.is_nil(l:find("[^x]", 4), "a line holds only its own bytes")
        seen[#seen + 1] = tonumber(l:sub(1, 3))
      end
      for i = 1, n do assert(tasks[i]:join(10)) end
      for i = 1, n do assert.are.equal(i, seen[i], "lines in call order") end
      c:close(); s:close()
    end)
  end)
end)
