-- support/helpers.lua: shared helpers for the busted specs.
--
-- Every socket spec runs its cases twice, in blocking mode (plain calls) and in task mode (the
-- same code as the main task of socket.async.run). When a case needs a peer that acts while the
-- code under test is blocked, the peer is a separate Lua process (so it works in blocking mode
-- too); task-only cases use tasks as peers.
local socket = require("socket")
local async = socket.async

local M = {}

M.LUA = os.getenv("UVSOCKET_LUA") or "lua5.4"

-- The specs block the thread on purpose at times (waiting for a peer process to start or to
-- exit); keep the watchdog for longer stalls than those.
async.watchdog(3)

local function blocking(f, ...) return f(...) end
local function tasked(f, ...) return async.run(f, ...) end

-- busted gives its functions (describe, it, after_each, ...) to each spec file's environment;
-- a spec hands that environment over with `H.use(_ENV)`.
local env = _G
function M.use(spec_env)
  env = spec_env
  return M
end

-- Defines the cases of `define(run, mode)` once per mode. `run(f, ...)` calls f in that mode.
function M.modes(name, define)
  for _, mode in ipairs({ "blocking", "task" }) do
    env.describe(name .. " [" .. mode .. "]", function()
      env.after_each(function() M.assert_clean() end)
      define(mode == "blocking" and blocking or tasked, mode)
    end)
  end
end

-- Leak check after each case: after two full collections no task, descriptor watcher or timer
-- may remain.
function M.assert_clean()
  collectgarbage()
  collectgarbage()
  local d = async._debug()
  local a = env.assert
  a.are.equal(0, d.tasks, "tasks still alive")
  a.are.equal(0, d.watchers, "descriptor watchers not freed")
  a.are.equal(0, d.timers, "deadlines still armed")
end

-- A listening server on loopback: returns it and its port.
function M.server(host)
  local srv = assert(socket.bind(host or "127.0.0.1", 0))
  local _, port = srv:getsockname()
  return srv, port
end

-- A connected pair (client, server side) over loopback, and the listener (closed).
function M.pair(host)
  local srv, port = M.server(host)
  local c = assert(socket.connect(host or "127.0.0.1", port))
  local s = assert(srv:accept())
  srv:close()
  return c, s
end

-- A loopback port where a TCP handshake stays pending: a listener with a backlog of 1 whose
-- accept queue is full (Linux then drops further SYNs, so connect waits in SYN_SENT). Returns
-- the port and a function that releases everything.
function M.stalled_port()
  local srv = assert(socket.tcp())
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(1))
  local _, port = srv:getsockname()
  local held = {}
  for i = 1, 2 do
    held[i] = assert(socket.tcp())
    held[i]:settimeout(1)
    assert(held[i]:connect("127.0.0.1", port))
  end
  return port, function()
    for _, c in ipairs(held) do c:close() end
    srv:close()
  end
end

local tmpfiles = {}

-- Starts a peer process running `code` (Lua, with `socket` loaded). Lines the peer writes to
-- stdout can be read with handle:read(); handle:close() waits for it to exit. The peer is
-- killed after `limit` seconds (default 20) so that a failing case never hangs the suite.
-- `redirect`, if given, is a shell redirection for the peer (e.g. "3</etc/hostname").
function M.peer(code, limit, redirect)
  local file = os.tmpname()
  tmpfiles[#tmpfiles + 1] = file
  local f = assert(io.open(file, "w"))
  f:write('local socket = require("socket")\n', code, "\n")
  f:close()
  local cmd = ("exec timeout %d %s %s %s"):format(limit or 20, M.LUA, file, redirect or "")
  local p = assert(io.popen(cmd, "r"))
  return p
end

-- A server process for the out-of-descriptor specs: runs `code` (which prints its port on its
-- first line) under `ulimit -n nofile`, killed after `limit` seconds (default 60); its stderr
-- goes to the file `log` (default: discarded). Returns the process handle and the port.
function M.limited_server(code, nofile, limit, log)
  local file = os.tmpname()
  tmpfiles[#tmpfiles + 1] = file
  local f = assert(io.open(file, "w"))
  f:write('local socket = require("socket")\n', code, "\n")
  f:close()
  local cmd = ("sh -c 'ulimit -n %d; exec timeout %d %s %s 2>%s'"):format(nofile, limit or 60,
    M.LUA, file, log or "/dev/null")
  local p = assert(io.popen(cmd, "r"))
  return p, assert(tonumber(p:read("l")), "server did not start")
end

-- A peer that listens on loopback, prints its port, accepts one client as `c`, runs `code`,
-- then closes. Returns the process handle and the port.
function M.listen_peer(code, limit)
  local p = M.peer(([[
local srv = assert(socket.bind("127.0.0.1", 0))
local _, port = srv:getsockname()
io.write(port, "\n")
io.flush()
srv:settimeout(10)
local c = assert(srv:accept())
srv:close()
%s
c:close()
]]):format(code), limit)
  local port = assert(tonumber(p:read("l")), "peer did not start")
  return p, port
end

-- A peer that connects to `port` on loopback as `c`, runs `code`, then closes.
function M.connect_peer(port, code, limit)
  return M.peer(([[
local c = assert(socket.connect("127.0.0.1", %d))
%s
c:close()
]]):format(port, code), limit)
end

function M.cleanup()
  for _, f in ipairs(tmpfiles) do os.remove(f) end
  tmpfiles = {}
end

-- This process's id (for signals sent to it and its /proc entries).
function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

-- Seconds taken by f(...), and its results.
function M.timed(f, ...)
  local t0 = socket.gettime()
  local r = table.pack(f(...))
  return socket.gettime() - t0, table.unpack(r, 1, r.n)
end

return M
