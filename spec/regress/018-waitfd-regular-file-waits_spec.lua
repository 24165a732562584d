-- Regression 018: async.waitfd on a regular file waited out its whole timeout in a task.
--
-- epoll cannot watch a regular file (EPERM). When descriptor watchers moved into the runtime's
-- own epoll set, a refused registration was no longer reported to the waiting call, so the
-- task waited for a report that could never come, where it used to get "r" at once (poll(2)
-- reports a regular file ready). A refused registration now fails the wait, and waitfd then
-- answers from a look without waiting, as before. The descriptor is one the test inherits from
-- the shell, opened on a regular file.
local H = require("support.helpers").use(_ENV)

-- Runs `code` in a child lua5.4 whose descriptor 3 is a regular file; returns its output.
local function with_file_fd(code)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write('local socket = require("socket")\nlocal async = socket.async\n', code)
  f:close()
  local p = assert(io.popen(("%s %s 3<%s"):format(H.LUA, script, script), "r"))
  local out = p:read("a")
  p:close()
  os.remove(script)
  return out
end

describe("regression 018: waitfd on a regular file", function()
  it("answers at once in a task and in blocking mode, and leaves no watcher", function()
    local out = with_file_fd([[
local function probe()
  local t0 = socket.gettime()
  local r = async.waitfd(3, "r", 2)
  return tostring(r) .. " " .. (socket.gettime() - t0 < 0.5 and "fast" or "slow")
end
local blocking = probe()
local task
async.run(function() task = probe() end)
io.write(blocking, "|", task, "|", async._debug().watchers, "\n")
]])
    assert.are.equal("r fast|r fast|0\n", out)
  end)
end)
