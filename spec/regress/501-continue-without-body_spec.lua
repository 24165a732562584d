-- Regression 501: a request without a body that carried Expect: 100-continue got an interim
-- "100 Continue" when its handler asked for the body.
--
-- socket.http.server's request objects once came with a "_done" mark for requests without
-- body framing; when the head parser began making the request object itself, the mark was
-- left to the body reader, which sent the interim answer before it looked at the framing. A
-- GET with the expectation (which HTTP/1.1 allows, and which a client may send out of habit)
-- then saw "HTTP/1.1 100 Continue" before its response. No interim answer is due for a body
-- that does not exist: the body reader now looks at the framing first.
local socket = require("socket")
local server = require("socket.http.server")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 501", function()
  after_each(function() H.assert_clean() end)

  it("a body-less request expecting 100-continue gets its response and nothing before it",
    function()
      async.run(function()
        local srv = assert(server.listen{ handler = function(req, res)
          local whole = assert(req:body())
          local pieces = 0
          for _ in req:source() do pieces = pieces + 1 end
          res:finish("[" .. whole .. "]" .. pieces)
        end })
        local _, port = srv:getsockname()
        local c = assert(socket.connect("127.0.0.1", port))
        c:settimeout(5)
        for _ = 1, 2 do  -- twice: the connection stays in step
          assert(c:send("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"))
          local line = assert(c:receive("*l"))
          assert.are.equal("HTTP/1.1 200 OK", line)
          repeat line = assert(c:receive("*l")) until line == ""
          assert.are.equal("[]0", assert(c:receive(3)))
        end
        c:close()
        srv:close()
      end)
    end)
end)
