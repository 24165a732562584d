-- serve_tls_spec.lua: async.serve with TLS parameters: every connection's handshake in its own
-- task under its own deadline; a failed or timed-out handshake closes the connection and never
-- runs the handler.
local socket = require("socket")
local tls = require("socket.tls")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local T = require("support.tls")

local certs

describe("async.serve over TLS", function()
  setup(function() certs = T.certs() end)
  after_each(function() H.assert_clean() end)

  local function server_params()
    return { certificate = certs.server.certificate, key = certs.server.key }
  end

  it("runs the handler on handshaken connections", function()
    async.run(function()
      local srv, port = H.server()
      local acceptor = async.serve(srv, function(c)
        assert.matches("^tls{client}", tostring(c))
        c:send("hello " .. c:receive() .. "\n")
      end, { tls = server_params(), handshake_timeout = 2 })
      local c = assert(tls.connect("127.0.0.1", port, { cafile = certs.ca,
        servername = "localhost", timeout = 5 }))
      c:send("you\n")
      assert.are.equal("hello you", c:receive())
      c:close()
      srv:close()
      acceptor:join()
    end)
  end)

  it("closes silent and failing clients without running the handler, others go on", function()
    async.run(function()
      local srv, port = H.server()
      local handled, failures = 0, {}
      local acceptor = async.serve(srv, function(c)
        handled = handled + 1
        c:send("served\n")
      end, { tls = server_params(), handshake_timeout = 0.3,
        onfailure = function(err) failures[#failures + 1] = err end })
      -- a client that never says a word
      local silent = assert(socket.connect("127.0.0.1", port))
      silent:settimeout(5)
      -- one that speaks something else
      local wrong = assert(socket.connect("127.0.0.1", port))
      wrong:settimeout(5)
      wrong:send("GET / HTTP/1.0\r\n\r\n")
      -- a good one, served while the silent one waits
      local t0 = socket.gettime()
      local good = assert(tls.connect("127.0.0.1", port, { cafile = certs.ca,
        servername = "localhost", timeout = 5 }))
      assert.are.equal("served", good:receive())
      assert.is_true(socket.gettime() - t0 < 0.3)
      good:close()
      local _, err = silent:receive()
      assert.are.equal("closed", err)
      assert.is_true(socket.gettime() - t0 >= 0.25)
      -- the server answered with a TLS alert, or nothing, and closed
      local data, werr = wrong:receive("*a")
      assert.is_true(data ~= nil or werr == "closed")
      silent:close()
      wrong:close()
      assert.are.equal(1, handled)
      table.sort(failures)
      assert.are.equal(2, #failures)
      assert.is_true(failures[1] ~= "timeout" and failures[2] == "timeout", failures[1])
      srv:close()
      acceptor:join()
    end)
  end)

  it("refuses unusable TLS parameters at once", function()
    async.run(function()
      local srv = H.server()
      assert.has_error(function()
        async.serve(srv, function() end, { tls = { certificate = "/nonexistent" } })
      end)
      srv:close()
    end)
  end)
end)
