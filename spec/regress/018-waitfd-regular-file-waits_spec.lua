-- Regression 018: async.waitfd on a regular file waited out its whole timeout in a task.
--
-- epoll cannot watch a regular file (EPERM). When descriptor watchers moved into the runtime's
-- own epoll set, a refused registration was no longer reported to the waiting call, so the
-- task waited for a report that could never come, where it used to get "r" at once (poll(2)
-- reports a regular file ready). A refused registration now fails the wait, and waitfd then
-- answers from a look without waiting, as before. The descriptor is one the test inherits from
-- the shell, opened on a regular file.
local H = require("support.helpers").use(_ENV)

describe("regression 018: waitfd on a regular file", function()
  it("answers at once in a task and in blocking mode, and leaves no watcher", function()
    local p = H.peer([[
local async = socket.async
local function probe()
  local t0 = socket.gettime()
  local r = async.waitfd(3, "r", 2)
  return tostring(r) .. " " .. (socket.gettime() - t0 < 0.5 and "fast" or "slow")
end
local blocking = probe()
local task
async.run(function() task = probe() end)
io.write(blocking, "|", task, "|", async._debug().watchers, "\n")
]], 20, "3</etc/passwd")
    local out = p:read("a")
    p:close()
    assert.are.equal("r fast|r fast|0\n", out)
  end)
end)
