-- Regression 003: in a task, connect to a host name failed with "Bad file descriptor".
--
-- connect's continuation took "resumed after a yield" to mean "back from waiting for the
-- handshake", but the yield had been for the name lookup; it then read the handshake result of a
-- socket that did not exist yet. It now tells the two apart by the phase the socket is in.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 003", function()
  after_each(H.assert_clean)

  it("connect by name in a task", function()
    async.run(function()
      local srv, port = H.server()
      for _ = 1, 3 do
        local c = assert(socket.connect("localhost", port))
        assert(srv:accept()):close()
        c:close()
      end
      srv:close()
    end)
  end)
end)
