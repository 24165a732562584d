-- Regression 015: leaving a program waited for name lookups still running.
--
-- A lookup abandoned by its task (cancelled, timed out by a deadline scope) goes on on libuv's
-- thread pool; the runtime's shutdown waited for it, so a program ended seconds after its last
-- task. Shutdown now closes what it can and leaves a lookup that is still running behind.
--
-- A slow lookup needs a resolver that never answers: the peer runs in its own mount namespace
-- (unshare -m) where /etc/resolv.conf names 127.0.0.1, and it binds UDP port 53 there without
-- ever answering.
local H = require("support.helpers").use(_ENV)

local function can_unshare()
  return os.execute("unshare -m true 2>/dev/null")
end

describe("regression 015: exit and orphaned lookups", function()
  it("a program whose lookup was abandoned ends at once", function()
    if not can_unshare() then
      pending("unshare -m is not permitted here")
      return
    end
    local conf = os.tmpname()
    local h = assert(io.open(conf, "w"))
    h:write("nameserver 127.0.0.1\noptions timeout:5 attempts:1\n")
    h:close()
    local script = os.tmpname()
    h = assert(io.open(script, "w"))
    h:write([[
local socket = require("socket")
local async = socket.async
local t0 = socket.gettime()
local dns = socket.udp4()
assert(dns:setsockname("127.0.0.1", 53))  -- a resolver that never answers
async.run(function()
  local r = { async.timeout(0.2, function() return socket.dns.toip("slow.uvsocket.test") end) }
  local took = string.format("%.2f", socket.gettime() - t0)
  io.write(tostring(r[1]), " ", tostring(r[2]), " ", took, "\n")
  io.flush()
end)
]])
    h:close()
    local cmd = ("unshare -m sh -c 'mount --bind %s /etc/resolv.conf && exec %s %s' 2>&1")
      :format(conf, H.LUA, script)
    local t0 = os.time()
    local p = assert(io.popen("/usr/bin/time -f 'wall %e' " .. cmd, "r"))
    local out = p:read("a")
    p:close()
    os.remove(conf)
    os.remove(script)
    local wall = tonumber(out:match("wall ([%d.]+)"))
    assert.is_truthy(out:find("^nil timeout 0%.2"), out)
    assert.is_true(wall and wall < 2,
      "the program ended " .. tostring(wall) .. " s after its start: " .. out)
    assert.is_true(os.time() - t0 < 4)
  end)
end)
