-- Regression 008: a call waiting its turn behind another one must be able to give up.
--
-- With one owner per direction, a second task's call waits in the socket's queue. Its own
-- timeout counts from its own entry, a cancellation or a deadline scope takes it out of the
-- queue, and the queue goes on without it; a caller that cannot wait (no task, or a C boundary)
-- gets a clear error and leaves the call in progress untouched.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 008: a queued call gives up", function()
  after_each(H.assert_clean)

  it("a queued writer times out after its own timeout, then the next one goes", function()
    async.run(function()
      local c, s = H.pair()
      local big = string.rep("x", 32 * 1024 * 1024)
      local first = async.spawn(function() return c:send(big) end)
      async.sleep(0.02)
      c:settimeout(0.2)
      local t0 = socket.gettime()
      assert.are.same({ nil, "timeout", 0 }, { c:send("late") })
      local took = socket.gettime() - t0
      assert.is_true(took >= 0.19 and took < 1.5, "waited its own timeout: " .. took)
      c:settimeout(0)
      assert.are.same({ nil, "timeout", 1 }, { c:send("now", 2) }, "timeout 0: busy is timeout")
      c:settimeout(-1)
      -- drain, so the first send completes; the queue then serves a new writer
      local reader = async.spawn(function() return #assert(s:receive(#big)) end)
      assert.are.equal(#big, first:join(30))
      assert.are.equal(#big, reader:join(30))
      assert.are.equal(2, c:send("ok"))
      assert.are.equal("ok", s:receive(2))
      c:close(); s:close()
    end)
  end)

  it("cancelled and scoped readers leave the queue; the others keep their order", function()
    async.run(function()
      local c, s = H.pair()
      local out = {}
      local owner = async.spawn(function() out.owner = { s:receive("*l") }; return true end)
      async.sleep(0.01)
      local doomed = async.spawn(function() out.doomed = { s:receive("*l") }; return true end)
      local scoped = async.spawn(function()
        out.scoped = { async.timeout(0.1, function() return s:receive("*l") end) }
        return true
      end)
      local last = async.spawn(function() out.last = { s:receive("*l") }; return true end)
      async.sleep(0.01)
      doomed:cancel()
      assert(doomed:join(1))
      assert.are.same({ nil, "cancelled", "" }, out.doomed)
      assert(scoped:join(1))
      assert.are.same({ nil, "timeout", "" }, out.scoped)
      c:send("one\ntwo\n")
      assert(owner:join(1))
      assert(last:join(1))
      assert.are.same({ "one", nil, nil }, out.owner)
      assert.are.same({ "two", nil, nil }, out.last)
      c:close(); s:close()
    end)
  end)

  it("a call that cannot wait its turn raises and leaves the owner's call alone", function()
    async.run(function()
      local c, s = H.pair()
      local out
      local owner = async.spawn(function() out = { s:receive("*l") }; return true end)
      async.sleep(0.01)
      -- a table.sort comparator is a C boundary: no yield possible there
      local ok, err = pcall(table.sort, { 1, 2 }, function() return s:receive(1) end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("receive: another task is using this socket", 1, true))
      c:send("whole\n")
      assert(owner:join(1))
      assert.are.same({ "whole", nil, nil }, out)
      c:close(); s:close()
    end)
  end)

  it("from a coroutine resumed outside the runtime's resume", function()
    -- Lua's own resume, taken in a fresh process before socket replaces it.
    local code = [[
local stock_resume = coroutine.resume
local socket = require("socket")
local async = socket.async
async.run(function()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local c = assert(socket.connect("127.0.0.1", port))
  local s = assert(srv:accept())
  local got
  local owner = async.spawn(function() got = s:receive("*l"); return true end)
  async.sleep(0.01)
  local co = coroutine.create(function() return s:receive(1) end)
  local ok, err = stock_resume(co)
  io.write(tostring(ok), " ", tostring(err):match("another task is using this socket") or err, "\n")
  c:send("fine\n")
  owner:join(1)
  io.write(got, "\n")
end)
]]
    local f = os.tmpname()
    local h = assert(io.open(f, "w")); h:write(code); h:close()
    local pr = assert(io.popen(H.LUA .. " " .. f, "r"))
    local outp = pr:read("a")
    pr:close()
    os.remove(f)
    assert.are.equal("false another task is using this socket\nfine\n", outp)
  end)
end)
