-- Regression 209: a hand-written accept loop in a task spun when the process ran out of
-- descriptors.
--
-- accept failed with "Too many open files" at once and without yielding, so a loop calling it
-- again (the README's loop, which checks nothing) kept the CPU at 100 % and never let the
-- client tasks run, the very tasks whose ends would free descriptors: the server stopped
-- answering anyone. In a task, an accept that fails so still returns the error at once, and
-- the next accept of the runtime then waits until a socket of the runtime is closed or 100 ms
-- pass before it tries again (docs/async.md, "Out of descriptors"). The server here runs as its
-- own process under `ulimit -n 40`; this file's clients (blocking mode) hold 60 connections.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")

local SERVER = [[
local socket = require("socket")
local async = socket.async
local failures, served = 0, 0
async.run(function()
  local srv = assert(socket.bind("127.0.0.1", 0, 128))
  local _, port = srv:getsockname()
  io.write(port, "\n")
  io.flush()
  while true do
    local client, err = srv:accept()
    if client then
      async.spawn(function()
        client:settimeout(20)
        served = served + 1
        while true do
          local line = client:receive()
          if not line then break end
          if line == "stats" then
            line = ("cpu=%.4f failures=%d served=%d"):format(os.clock(), failures, served)
          elseif line == "quit" then
            os.exit(0)
          end
          client:send(line .. "\n")
        end
        client:close()
      end)
    elseif err ~= "timeout" then
      failures = failures + 1
    end
  end
end)
]]

local function ask(c, line)
  assert(c:send(line .. "\n"))
  return c:receive("*l")
end

describe("regression 209", function()
  it("an accept loop out of descriptors neither spins nor starves its clients", function()
    if os.getenv("LD_PRELOAD") then
      return pending("the sanitizer runtime needs a free descriptor for its checks")
    end
    local p, port = H.limited_server(SERVER, 40)
    local first = assert(socket.connect("127.0.0.1", port))
    first:settimeout(5)
    assert.are.equal("hi", ask(first, "hi"))
    local held = {}
    for _ = 1, 60 do
      local c = assert(socket.connect("127.0.0.1", port))  -- the listen queue takes them all
      c:settimeout(5)
      held[#held + 1] = c
    end
    socket.sleep(0.3)
    local before = assert(ask(first, "stats"), "the server stopped answering")
    local cpu0 = tonumber(before:match("cpu=([%d.]+)"))
    local t0 = socket.gettime()
    socket.sleep(1)
    local after = assert(ask(first, "stats"), "the server stopped answering")
    local cpu1 = tonumber(after:match("cpu=([%d.]+)"))
    local failures = tonumber(after:match("failures=(%d+)"))
    local wall = socket.gettime() - t0
    print(("\n# saturated for %.2f s: %.3f s of CPU, %d failed accepts, %s"):format(wall,
      cpu1 - cpu0, failures, after))
    assert.is_true(cpu1 - cpu0 < 0.1 * wall, ("%.3f s of CPU in %.2f s"):format(cpu1 - cpu0,
      wall))
    assert.is_true(failures >= 1 and failures <= 40, "failed accepts: " .. failures)
    -- Free descriptors: close 40 of the held connections; every other one is then accepted
    -- and served.
    for i = 1, 40 do held[i]:close() end
    local t1 = socket.gettime()
    for i = 41, 60 do
      assert.are.equal("echo " .. i, ask(held[i], "echo " .. i), "connection " .. i)
    end
    print(("# the 20 waiting connections served %.3f s after the others closed")
      :format(socket.gettime() - t1))
    first:send("quit\n")
    for i = 41, 60 do held[i]:close() end
    first:close()
    p:close()
  end)
end)
