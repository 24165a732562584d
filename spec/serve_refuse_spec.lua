-- serve_refuse_spec.lua: async.serve out of descriptors for longer than REFUSE_AFTER refuses
-- the connections waiting in its listen queue instead of leaving them to wait (docs/async.md,
-- "Out of descriptors"). The server runs as its own process under `ulimit -n 48` with
-- REFUSE_AFTER 0.5 s; this file's clients (blocking mode) hold 80 connections, each sending a
-- line: every connection that got a descriptor is echoed, every other one is closed by the
-- server within a few seconds, none is left waiting.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")

local SERVER = [[
local socket = require("socket")
local async = socket.async
require("socket.async.serve").REFUSE_AFTER = 0.5
async.run(function()
  local srv = assert(socket.bind("127.0.0.1", 0, 128))
  local acceptor
  acceptor = async.serve(srv, function(c)
    c:settimeout(20)
    while true do
      local line = c:receive()
      if not line then return end
      if line == "stats" then
        local st = async.servestats(acceptor)
        line = ("shed=%d active=%d"):format(st.shed, st.active)
      elseif line == "quit" then
        async.spawn(async.shutdown, 0.2)
        return
      end
      c:send(line .. "\n")
    end
  end)
  local _, port = srv:getsockname()
  io.write(port, "\n")
  io.flush()
end)
]]

describe("async.serve out of descriptors for long", function()
  it("refuses the connections it cannot take instead of leaving them to wait", function()
    if os.getenv("LD_PRELOAD") then
      return pending("the sanitizer runtime needs a free descriptor for its checks")
    end
    local p, port = H.limited_server(SERVER, 48)
    local first = assert(socket.connect("127.0.0.1", port))
    first:settimeout(5)
    assert(first:send("hi\n"))
    assert.are.equal("hi", first:receive())
    local held = {}
    for i = 1, 80 do
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(0)
      assert(c:send("line " .. i .. "\n"))
      held[i] = c
    end
    local echoed, refused, t0 = 0, 0, socket.gettime()
    local open = {}
    for i = 1, 80 do open[i] = true end
    while next(open) and socket.gettime() - t0 < 10 do
      local ready = socket.select(held, nil, 0.5)
      for _, c in ipairs(ready) do
        for i, h in ipairs(held) do
          if h == c and open[i] then
            local line = c:receive()
            if line then
              assert.are.equal("line " .. i, line)
              echoed = echoed + 1
            else
              refused = refused + 1
            end
            open[i] = nil
          end
        end
      end
    end
    local waited = socket.gettime() - t0
    local stats = assert(first:send("stats\n") and first:receive(), "the server stopped answering")
    print(("\n# %d echoed, %d refused, none waiting after %.2f s (%s)"):format(echoed, refused,
      waited, stats))
    assert.are.same({}, open)
    assert.is_true(echoed >= 20 and refused >= 20, ("%d echoed, %d refused"):format(echoed,
      refused))
    assert.are.equal(80, echoed + refused)
    assert.are.equal(refused, tonumber(stats:match("shed=(%d+)")))
    first:send("quit\n")
    for _, c in ipairs(held) do c:close() end
    first:close()
    p:close()
  end)
end)
