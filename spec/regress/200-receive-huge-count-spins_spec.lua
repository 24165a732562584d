-- Regression 200: receive(n) with n at or above 2^63 never returned.
--
-- A count receive asks the receive buffer for room for the whole count (and udp:receive(n) asks
-- the pool for an n-byte block). The buffer pool rounds a
-- request beyond its largest size class up to a power of two by doubling, and for a request
-- above 2^63 the doubling wrapped to 0 and went on for ever, with the thread spinning. The pool
-- now refuses a size it cannot round up (and the buffer a request whose total wraps around), so
-- the receive fails at once. Whatever it returns, no byte may be lost: the partial result
-- followed by the next receive gives every byte the peer sent.
local socket = require("socket")
local H = require("support.helpers").use(_ENV)

local COUNTS = {
  { "2^63", 2 ^ 63 },
  { "2^63 + 4096", 2 ^ 63 + 4096 },
  { "1.5 * 2^63", 1.5 * 2 ^ 63 },
  { "1e19", 1e19 },
  { "math.maxinteger", math.maxinteger },
}

-- What receive(n) gave, completed with the bytes it left unread so that `total` bytes are back.
local function collect(c, total, r, err, partial)
  if r ~= nil then return r end
  assert.is_string(err)
  assert.is_string(partial)
  if #partial == total then return partial end
  return partial .. assert(c:receive(total - #partial))
end

H.modes("regression 200", function(run)
  for _, case in ipairs(COUNTS) do
    local name, n = case[1], case[2]

    it("receive(" .. name .. ") returns promptly and keeps the data", function()
      run(function()
        local c, s = H.pair()
        c:settimeout(0.2)
        assert(s:send("abc"))
        local took, r, err, partial = H.timed(c.receive, c, n)
        assert.is_true(took < 2, ("took %.2f s"):format(took))
        assert.are.equal("abc", collect(c, 3, r, err, partial))
        c:close()
        s:close()
      end)
    end)

    it("udp receive(" .. name .. ") returns promptly", function()
      run(function()
        local u = socket.udp4()
        assert(u:setsockname("127.0.0.1", 0))
        local ip, port = u:getsockname()
        u:settimeout(0.2)
        local peer = socket.udp4()
        assert(peer:sendto("datagram", ip, port))
        local took, r, err = H.timed(u.receive, u, n)
        assert.is_true(took < 2, ("took %.2f s"):format(took))
        assert.is_true(r == "datagram" or type(err) == "string")
        peer:close()
        u:close()
      end)
    end)

    it("receive(" .. name .. ") with bytes already buffered", function()
      run(function()
        local c, s = H.pair()
        c:settimeout(0.2)
        assert(s:send("line\nrest"))
        assert.are.equal("line", c:receive())  -- reads "rest" ahead into the buffer
        local took, r, err, partial = H.timed(c.receive, c, n)
        assert.is_true(took < 2, ("took %.2f s"):format(took))
        assert.are.equal("rest", collect(c, 4, r, err, partial))
        c:close()
        s:close()
      end)
    end)
  end
end)
