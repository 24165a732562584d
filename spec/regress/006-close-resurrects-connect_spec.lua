-- Regression 006: closing a socket while it connected gave it a new descriptor.
--
-- A task connected to "localhost" and another task closed the socket during the name lookup:
-- connect went on, returned 1, and the closed object was a connected tcp{client} with a new
-- descriptor, while the lookup job leaked. Closed during the TCP handshake, connect waited for
-- its whole timeout and the closed object again held a new descriptor. close() now ends the
-- connect in every phase with "closed", the abandoned lookup frees itself, and a closed object
-- never gets a descriptor again.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

local function closed_master(sock)
  assert.are.equal(-1, sock:getfd())
  assert.is_truthy(tostring(sock):find("^tcp{master}"))
  assert.are.same({ nil, "closed" }, { sock:connect("127.0.0.1", 9) })
  assert.are.equal(-1, sock:getfd(), "a closed object never gets a descriptor again")
end

describe("regression 006: close during connect", function()
  after_each(H.assert_clean)

  it("during the name lookup", function()
    async.run(function()
      local srv, port = H.server()
      for _ = 1, 20 do
        local sock = socket.tcp()
        local result
        local t = async.spawn(function()
          result = { sock:connect("localhost", port) }
          return true
        end)
        async.spawn(function() sock:close() end)
        assert(t:join(5))
        -- The connecting task runs first and waits for its lookup; the closer comes next.
        assert.are.same({ nil, "closed" }, result)
        closed_master(sock)
      end
      srv:close()
    end)
    local deadline = socket.gettime() + 5
    while async._debug().jobs > 0 and socket.gettime() < deadline do socket.sleep(0.01) end
    assert.are.equal(0, async._debug().jobs, "the abandoned lookups freed themselves")
  end)

  it("during the handshake, at once and not after the timeout", function()
    async.run(function()
      local port, release = H.stalled_port()
      local sock = socket.tcp()
      sock:settimeout(5)
      local result, took
      local t = async.spawn(function()
        local t0 = socket.gettime()
        result = { sock:connect("127.0.0.1", port) }
        took = socket.gettime() - t0
        return true
      end)
      async.sleep(0.1)
      assert.are.equal("waiting", t:status())
      sock:close()
      assert(t:join(5))
      assert.are.same({ nil, "closed" }, result)
      assert.is_true(took < 1, "connect returned at the close, not after its timeout")
      closed_master(sock)
      release()
    end)
  end)

  it("a closed object refuses bind, listen, sendto and setfd", function()
    local sock = socket.tcp()
    sock:close()
    assert.are.same({ nil, "closed" }, { sock:bind("127.0.0.1", 0) })
    assert.are.same({ nil, "closed" }, { sock:listen() })
    assert.are.equal(-1, sock:getfd())
    local u = socket.udp()
    u:close()
    assert.are.same({ nil, "closed" }, { u:sendto("x", "127.0.0.1", 9) })
    assert.are.same({ nil, "closed" }, { u:setsockname("127.0.0.1", 0) })
    assert.are.equal(-1, u:getfd())
    local other = socket.tcp4()
    local fd = other:getfd()
    assert.has_error(function() sock:setfd(fd) end)
    sock:setfd(-1)  -- giving nothing is allowed
    other:close()
  end)
end)
