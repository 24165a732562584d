-- Regression 502: taking a header block from a socket that had nothing buffered passed a null
-- pointer to memchr.
--
-- client:_headers looks for a whole header block in what the status line's read left in the
-- receive buffer. A buffer that never held anything has no storage, and the scanner handed its
-- null data pointer to memchr with a length of zero: undefined behaviour, which the sanitizer
-- build stops on (it did, in the http and bounds specs). The scanner now answers "incomplete"
-- for an empty buffer before it searches, and the method returns false.
local H = require("support.helpers").use(_ENV)

local function check()
  local c, s = H.pair()
  c:settimeout(5)
  -- nothing was ever received: the buffer is empty and has no storage
  assert.is_false(c:_headers(8192, 65536))
  -- and once a line was read and nothing is left over, still false and nothing lost
  assert(s:send("HTTP/1.1 200 OK\r\n"))
  assert.are.equal("HTTP/1.1 200 OK", c:receive("*l"))
  assert.is_false(c:_headers(8192, 65536))
  assert(s:send("A: 1\r\n\r\n"))
  assert.are.equal("A: 1", c:receive("*l"))
  c:close()
  s:close()
end

H.modes("regression 502", function(run)
  it("_headers on a socket with an empty receive buffer returns false", function()
    run(check)
  end)
end)
