-- lifecycle_spec.lua: a process that ends with sockets open, tasks still waiting or lookups
-- under way shuts down cleanly when the Lua state closes: no crash, and in the sanitizer build
-- no leak (each case runs in its own interpreter with leak detection on).
local H = require("support.helpers").use(_ENV)

teardown(H.cleanup)

local function run_script(code)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(("ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 timeout 60 %s %s 2>&1")
    :format(H.LUA, file)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(file)
  return ok, out
end

describe("shutting down", function()
  it("with sockets open and watched after run returned", function()
    local ok, out = run_script([[
      local socket = require("socket")
      local async = socket.async
      local keep = {}
      async.run(function()
        local srv = assert(socket.bind("127.0.0.1", 0))
        local _, port = srv:getsockname()
        local c = assert(socket.connect("127.0.0.1", port))
        local s = assert(srv:accept())
        s:settimeout(0.01)
        s:receive()          -- leaves a watcher armed on s
        keep = { srv, c, s }
      end)
      print("done")
    ]])
    assert.is_true(ok, out)
    assert.matches("done", out)
    assert.is_nil(out:find("Sanitizer"), out)
  end)

  it("with tasks still waiting after main failed", function()
    local ok, out = run_script([[
      local socket = require("socket")
      local async = socket.async
      local ok = pcall(async.run, function()
        local srv = assert(socket.bind("127.0.0.1", 0))
        async.spawn(function() srv:accept() end)     -- waits forever
        async.spawn(function() async.sleep(100) end) -- a pending deadline
        async.sleep(0.01)
        error("main gives up")
      end)
      print("caught", not ok)
    ]])
    assert.is_true(ok, out)
    assert.matches("caught\ttrue", out)
    assert.is_nil(out:find("Sanitizer"), out)
  end)

  it("with name lookups under way", function()
    local ok, out = run_script([[
      local socket = require("socket")
      local async = socket.async
      pcall(async.run, function()
        for _ = 1, 20 do async.spawn(function() socket.dns.toip("localhost") end) end
        error("stop at once")
      end)
      print("left")
    ]])
    assert.is_true(ok, out)
    assert.matches("left", out)
    assert.is_nil(out:find("Sanitizer"), out)
  end)

  it("after a long life of connections, every buffer and watcher is released", function()
    local ok, out = run_script([[
      local socket = require("socket")
      local async = socket.async
      async.run(function()
        local srv = assert(socket.bind("127.0.0.1", 0))
        local _, port = srv:getsockname()
        async.spawn(function()
          for _ = 1, 300 do
            local c = srv:accept()
            async.spawn(function()
              local l = c:receive(100000)
              c:send(l)
              c:close()
            end)
          end
          srv:close()
        end)
        for _ = 1, 300 do
          async.spawn(function()
            local c = assert(socket.connect("127.0.0.1", port))
            c:send(string.rep("q", 100000))
            assert(#c:receive(100000) == 100000)
            c:close()
          end)
        end
      end)
      collectgarbage()
      local d = async._debug()
      print("watchers", d.watchers, "tasks", d.tasks)
    ]])
    assert.is_true(ok, out)
    assert.matches("watchers\t0\ttasks\t0", out)
    assert.is_nil(out:find("Sanitizer"), out)
  end)
end)
