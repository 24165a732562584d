-- 402: LuaSec waits in poll(2) with the connection's timeout: a handshake with a silent server
-- inside a task stopped every other task until it timed out. Through the bridge it yields.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local T = require("support.tls")

describe("regression 402", function()
  it("a LuaSec handshake in a task lets the other tasks run", function()
    local ssl = T.luasec()
    if not ssl then return pending("LuaSec is not installed") end
    local srv, port = H.server()  -- accepts TCP (the backlog does) and never answers
    local ticks, r = 0, nil
    async.run(function()
      async.spawn(function()
        for _ = 1, 6 do
          async.sleep(0.05)
          ticks = ticks + 1
        end
      end)
      local conn = assert(ssl.wrap(assert(socket.connect("127.0.0.1", port)),
        { mode = "client", protocol = "any", verify = "none" }))
      conn:settimeout(0.5)
      r = { conn:dohandshake() }
      conn:close()
    end)
    srv:close()
    assert.are.same({ nil, "timeout" }, r)
    assert.are.equal(6, ticks)
    H.assert_clean()
  end)
end)
