-- Regression 007: closing a socket did not end every call waiting on it.
--
-- close() woke only the socket's own watcher: a task in socket.select on the socket was never
-- woken (select's private epoll set silently dropped the descriptor), and tasks queued for a
-- busy direction had no way to hear of it. Every wait on a closed socket now ends with
-- "closed": the owner of each direction, the tasks queued behind it, selects and waitfds.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 007: close wakes every waiter", function()
  after_each(H.assert_clean)

  it("accept", function()
    async.run(function()
      local srv = H.server()
      local r
      local t = async.spawn(function() r = { srv:accept() }; return true end)
      async.sleep(0.02)
      srv:close()
      assert(t:join(2))
      assert.are.same({ nil, "closed" }, r)
    end)
  end)

  it("receive, a queued receive, send and a queued send", function()
    async.run(function()
      local c, s = H.pair()
      local out = {}
      local function spawn(name, f)
        return async.spawn(function() out[name] = { f() }; return true end)
      end
      local big = string.rep("x", 16 * 1024 * 1024)
      local tasks = {
        spawn("recv", function() return s:receive("*l") end),
        spawn("recv2", function() return s:receive(5, "pre") end),
        spawn("send", function() return s:send(big) end),
        spawn("send2", function() return s:send("abc", 2) end),
      }
      async.sleep(0.05)
      assert.are.equal("waiting", tasks[3]:status(), "the big send waits for room")
      s:close()
      for _, t in ipairs(tasks) do assert(t:join(2)) end
      assert.are.same({ nil, "closed", "" }, out.recv)
      assert.are.same({ nil, "closed", "pre" }, out.recv2)
      assert.are.equal(nil, out.send[1])
      assert.are.equal("closed", out.send[2])
      assert.is_true(out.send[3] < #big)
      assert.are.same({ nil, "closed", 1 }, out.send2)
      c:close()
    end)
  end)

  it("select, in a task, reporting the closed socket as ready", function()
    async.run(function()
      local c, s = H.pair()
      local r
      local t0 = socket.gettime()
      local t = async.spawn(function() r = { socket.select({ s }, nil, 5) }; return true end)
      async.sleep(0.05)
      s:close()
      assert(t:join(2))
      assert.is_true(socket.gettime() - t0 < 1, "woken at the close")
      assert.are.equal(s, r[1][1])
      assert.are.same({ nil, "closed", "" }, { s:receive() })
      c:close()
    end)
  end)

  it("select on several sockets, one closed by another task", function()
    async.run(function()
      local c1, s1 = H.pair()
      local c2, s2 = H.pair()
      local r
      local t = async.spawn(function() r = { socket.select({ s1, s2 }, { }, 5) }; return true end)
      async.sleep(0.05)
      s2:close()
      assert(t:join(2))
      assert.are.equal(1, #r[1])
      assert.are.equal(s2, r[1][1])
      -- the other socket still works, through select too
      c1:send("x\n")
      assert.are.equal(s1, socket.select({ s1 }, nil, 2)[1])
      assert.are.equal("x", s1:receive())
      c1:close(); s1:close(); c2:close()
    end)
  end)
end)
