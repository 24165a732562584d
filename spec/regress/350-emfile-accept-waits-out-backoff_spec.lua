-- 350: an accept loop out of descriptors waited out its back-off even when a client had ended.
--
-- async.serve used to answer any accept failure with a fixed sleep before calling accept
-- again, whatever happened meanwhile: out of descriptors, a server whose client had just
-- closed (freeing a descriptor) still left every waiting connection in the listen queue until
-- the sleep ended, and a longer back-off made that worse. Now the next accept waits for a
-- socket of the runtime to close or 100 ms, whichever comes first, and the back-off is only for
-- other accept errors. This file sets the back-off to 5 s in a server limited to 32
-- descriptors: a waiting client must be served well within it once a held connection closes.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")

local SERVER = [[
require("socket.async.serve").BACKOFF = 5
local async = socket.async
async.run(function()
  local srv = assert(socket.bind("127.0.0.1", 0, 64))
  async.serve(srv, function(c)
    c:settimeout(20)
    while true do
      local line = c:receive()
      if not line then return end
      if line == "quit" then async.spawn(async.shutdown, 0.5) return end
      c:send(line .. "\n")
    end
  end)
  local _, port = srv:getsockname()
  io.write(port, "\n")
  io.flush()
end)
]]

describe("regression 350", function()
  it("a client that ends lets the accept loop go on before the back-off is over", function()
    -- UBSan's vptr check tests memory with a pipe, so in a process with no descriptor left it
    -- reports every virtual call as a bad one: the sanitizer build cannot run out of them.
    if os.getenv("LD_PRELOAD") then
      return pending("the sanitizer runtime needs a free descriptor for its checks")
    end
    local p, port = H.limited_server(SERVER, 32, 40)
    local held = {}
    for _ = 1, 40 do
      local c = socket.tcp()
      c:settimeout(2)
      if c:connect("127.0.0.1", port) then held[#held + 1] = c else c:close() end
    end
    socket.sleep(0.3)                        -- the server is out of descriptors by now
    -- The first connection was accepted: it echoes. The last waits in the listen queue.
    held[1]:send("one\n")
    assert.are.equal("one", held[1]:receive())
    local last = held[#held]
    last:send("late\n")
    last:settimeout(0.3)
    local none, err = last:receive()
    assert.is_nil(none)
    assert.are.equal("timeout", err)
    -- Free descriptors: close every other held connection, then time the late one's answer.
    for i = 1, #held - 1 do held[i]:close() end
    local t0 = socket.gettime()
    last:settimeout(10)
    assert.are.equal("late", last:receive())
    local took = socket.gettime() - t0
    assert.is_true(took < 2, ("served after %.2f s (the back-off is 5 s)"):format(took))
    last:send("quit\n")
    last:close()
    p:close()
  end)
end)
