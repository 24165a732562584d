-- Regression 205: async.serve(socket.tcp(), handler) was accepted, and its accept task then
-- failed with "calling 'accept' on bad self (tcp{server} expected)".
--
-- serve took any userdata with an `accept` field for a listening socket, and the master object
-- of a socket that was never put into listening mode has one. Found by spec/args_spec.lua,
-- which records the failures of the tasks its calls start. serve now wants an object whose
-- class, when it tells one, is a server's, and raises an argument error otherwise.
local socket = require("socket")
local unix = require("socket.unix")
local async = socket.async
local H = require("support.helpers").use(_ENV)

H.modes("regression 205", function(run)
  it("serve refuses sockets that do not listen", function()
    run(function()
      local failed = {}
      async.onerror(function(_, err) failed[#failed + 1] = err end)
      for _, make in ipairs({ socket.tcp, socket.udp, unix.stream, unix.dgram }) do
        local s = make()
        local ok, err = pcall(async.serve, s, print)
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'serve' %(server socket expected, got %S+%)", err)
        s:close()
      end
      local c, s = H.pair()
      assert.is_false(pcall(async.serve, c, print))
      c:close()
      s:close()
      assert.is_false(pcall(async.serve, 42, print))
      assert.is_false(pcall(async.serve, io.stdout, print))
      async.onerror(nil)
      assert.are.same({}, failed)
      assert.are.equal(0, async.serving())
    end)
  end)
end)

describe("regression 205 [task]", function()
  after_each(H.assert_clean)

  it("a listening socket is still served", function()
    async.run(function()
      local srv, port = H.server()
      async.serve(srv, function(c) c:send("ok\n") end)
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(2)
      assert.are.equal("ok", c:receive())
      c:close()
      async.shutdown(1)
    end)
  end)
end)
