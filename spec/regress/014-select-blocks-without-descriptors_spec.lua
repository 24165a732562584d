-- Regression 014: select in a task blocked the whole thread when no descriptor was left.
--
-- A select inside a task waited on a private epoll set; when the process had no descriptor left
-- to make one, it fell back to a blocking poll(2) for its whole timeout, and every task stopped.
-- select now waits on the runtime's own watchers and needs no descriptor: the other tasks run.
local H = require("support.helpers").use(_ENV)

describe("regression 014: select out of descriptors", function()
  it("other tasks run while a task selects with every descriptor in use", function()
    -- UndefinedBehaviorSanitizer's vptr check needs a free descriptor of its own, and reports
    -- every virtual call as invalid when there is none: the check means nothing there.
    if (os.getenv("LD_PRELOAD") or ""):find("ubsan") then
      return pending("the sanitizer runtime cannot work without a free descriptor")
    end
    local f = os.tmpname()
    local h = assert(io.open(f, "w"))
    h:write([[
local socket = require("socket")
local async = socket.async
async.run(function()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local c = assert(socket.connect("127.0.0.1", port))
  local s = assert(srv:accept())
  local hog = {}
  while true do  -- use up every descriptor
    local u = socket.udp4()
    if not u then break end
    hog[#hog + 1] = u
  end
  local ticks = 0
  local ticker = async.spawn(function()
    for _ = 1, 20 do async.sleep(0.01); ticks = ticks + 1 end
  end)
  local r, _, err = socket.select({ s }, nil, 0.5)
  io.write(#r, " ", tostring(err), " ", ticks, "\n")
  ticker:join(2)
  for _, u in ipairs(hog) do u:close() end
  c:close(); s:close(); srv:close()
end)
]])
    h:close()
    local p = assert(io.popen("ulimit -n 64; " .. H.LUA .. " " .. f .. " 2>&1", "r"))
    local out = p:read("a")
    p:close()
    os.remove(f)
    local n, err, ticks = out:match("^(%d+) (%S+) (%d+)\n$")
    assert.are.equal("0", n, out)
    assert.are.equal("timeout", err, out)
    assert.is_true(tonumber(ticks) >= 15, "the ticker ran during the select: " .. out)
  end)
end)
