-- bench/soak/server.lua: the echo server of the soak test (bench/soak/README.md). Task mode:
-- async.serve runs one task per client, each echoing lines until the peer closes. The line
-- "STATS" is answered with the figures the soak driver samples: RSS (kB), open descriptors,
-- live tasks, descriptor watchers, armed timers, pooled receive bytes, clients accepted and
-- accepts refused (out of descriptors), the Lua heap (kB) and the heap trims so far.
-- Usage: lua5.4 server.lua PORT   (prints "ready PORT" once listening)
local socket = require("socket")
local async = socket.async

local port = assert(tonumber(arg[1]), "usage: server.lua PORT")

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return -1 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or -1
end

-- Counted by a child (ls), since Lua cannot list a directory; -1 when none can be started (at
-- the descriptor limit).
local pid
local function fds()
  if not pid then
    local f = assert(io.open("/proc/self/stat"))
    pid = f:read("n")
    f:close()
  end
  local p = io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
  if not p then return -1 end
  local n = p:read("n")
  p:close()
  return (n or 0) - 1  -- less the pipe to ls
end

local acceptor

local function stats()
  collectgarbage()
  async.sleep(0.05)  -- an idle moment, where the runtime gives free memory back
  local d = async._debug()
  local s = async.servestats(acceptor) or {}
  return ("rss_kb=%d fds=%d tasks=%d watchers=%d timers=%d pooled=%d active=%d accepted=%d "
    .. "refused=%d shed=%d lua_kb=%d trims=%d trim_ms=%d"):format(rss_kb(), fds(), d.tasks,
    d.watchers, d.timers,
    d.pooled_bytes, s.active or -1, s.accepted or -1, s.refused or -1, s.shed or -1,
    math.floor(collectgarbage("count")), d.heap_trims, math.floor(d.heap_trim_ms))
end

async.run(function()
  local server = assert(socket.bind("127.0.0.1", port, 4096))
  acceptor = async.serve(server, function(client)
    client:settimeout(60)
    while true do
      local line = client:receive("*l")
      if not line then break end
      if line == "STATS" then line = stats() end
      if not client:send(line .. "\n") then break end
    end
  end)
  local _, bound = server:getsockname()
  io.write("ready ", bound, "\n")
  io.flush()
  async.signal("SIGTERM")
  async.shutdown(1)
end)
