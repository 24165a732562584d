-- 403: LuaSec writes without MSG_NOSIGNAL and counts on LuaSocket ignoring SIGPIPE for the
-- whole process; uvsocket does not, so a LuaSec send to a peer that had gone away killed the
-- program silently. The bridge blocks SIGPIPE in the thread around LuaSec's calls.
local H = require("support.helpers").use(_ENV)
local T = require("support.tls")

describe("regression 403", function()
  it("a LuaSec send to a closed peer returns an error instead of killing the process", function()
    if not T.luasec() then return pending("LuaSec is not installed") end
    local certs = T.certs()
    local p = H.peer(([[
      local ssl = require("ssl")
      local tls = require("socket.tls")
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = assert(socket.connect("127.0.0.1", port))
      local s = assert(srv:accept())
      local conn = assert(ssl.wrap(c, { mode = "client", protocol = "any", verify = "none" }))
      local peer = assert(tls.wrap(s, { mode = "server", certificate = %q, key = %q }))
      conn:settimeout(0); peer:settimeout(0)
      for _ = 1, 100 do
        local a, b = conn:dohandshake(), peer:dohandshake()
        if a and b then break end
        socket.sleep(0.005)
      end
      peer:close()
      socket.sleep(0.05)
      conn:settimeout(1)
      local err
      for _ = 1, 20 do
        local ok, e = conn:send(("x"):rep(16384))
        if not ok then err = e; break end
        socket.sleep(0.01)
      end
      print("alive", err)
    ]]):format(certs.server.certificate, certs.server.key))
    local out = p:read("a")
    p:close()
    assert.matches("^alive\t", out)
  end)
end)
