-- Regression 500: a graceful shutdown reset a connection that had been accepted but whose
-- first request was not read yet.
--
-- socket.http.server marked a connection "idle" whenever it waited for a request, the first
-- one included, and shutdown's hook closes idle connections at once. A client whose request
-- was on its way (or already in the socket's buffer, closing it then sends a reset) lost it:
-- under a reload of worker processes, a client connecting while the old workers drained saw
-- "closed" or "connection reset by peer". Only a kept-alive connection waiting for its next
-- request is idle now; a new connection is served, its response saying Connection: close.
local socket = require("socket")
local server = require("socket.http.server")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 500", function()
  after_each(function() H.assert_clean() end)

  it("a request sent after the shutdown started, on a connection accepted before, is served",
    function()
      async.run(function()
        local srv = assert(server.listen{ handler = function(_, res) res:finish("served") end })
        local _, port = srv:getsockname()
        local c = assert(socket.connect("127.0.0.1", port))
        c:settimeout(5)
        local t0 = async.now()
        while srv:connections() == 0 and async.now() - t0 < 5 do async.sleep(0.01) end
        assert.are.equal(1, srv:connections())
        local stopping = async.spawn(async.shutdown, 5)
        async.sleep(0.05)               -- the shutdown hook has run: the listener is closed
        assert.are.equal(0, async.serving())
        assert(c:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        local reply, err = c:receive("*a")
        assert.is_nil(err)
        assert.matches("^HTTP/1.1 200", reply)
        assert.matches("[Cc]onnection: close", reply)
        assert.matches("served$", reply)
        c:close()
        assert.are.equal(0, stopping:join(5))
      end)
    end)

  it("a kept-alive connection waiting for its next request is still closed at once", function()
    async.run(function()
      local srv = assert(server.listen{ handler = function(_, res) res:finish("one") end })
      local _, port = srv:getsockname()
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(5)
      assert(c:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
      assert.matches("^HTTP/1.1 200", assert(c:receive()))
      repeat local line = assert(c:receive()) until line == ""
      assert.are.equal("one", c:receive(3))
      local t0 = async.now()
      assert.are.equal(0, async.shutdown(5))
      assert.is_true(async.now() - t0 < 1)
      local _, err = c:receive()
      assert.are.equal("closed", err)
      c:close()
    end)
  end)
end)
