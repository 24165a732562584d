-- spec/support/netns_probe.lua: one fault case of spec/netns_spec.lua, run inside a private
-- network namespace (spec/support/netns.sh) where taking the loopback down makes every peer
-- vanish without a reset, and where the resolver asks spec/support/slowdns.py.
-- Usage: lua5.4 netns_probe.lua CASE blocking|task
-- Prints one line: a Lua table of what was seen (results, elapsed seconds, and in a task the
-- ticks another task counted meanwhile, every 50 ms).
local socket = require("socket")
local async = socket.async

local case, mode = arg[1], arg[2]

local function lo_down()
  assert(os.execute("ip link set lo down"))
end

local function pair()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local c = assert(socket.connect("127.0.0.1", port))
  local s = assert(srv:accept())
  return c, s, srv, port
end

local function timed(f, ...)
  local t0 = socket.gettime()
  local r = table.pack(f(...))
  return socket.gettime() - t0, r
end

local cases = {}

-- A connect whose SYN goes nowhere: the socket's timeout ends it.
function cases.connect()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  lo_down()
  local c = socket.tcp()
  c:settimeout(1)
  local t, r = timed(c.connect, c, "127.0.0.1", port)
  return { t = t, r = r[1], err = r[2] }
end

-- An established peer that vanishes: keep-alive probes (idle 1 s, every 1 s, 2 of them) end a
-- receive that would otherwise wait 20 s; later calls say "closed".
function cases.keepalive()
  local c = pair()
  assert(c:setoption("keepalive", true))
  assert(c:setoption("tcp-keepidle", 1))
  assert(c:setoption("tcp-keepintvl", 1))
  assert(c:setoption("tcp-keepcnt", 2))
  lo_down()
  c:settimeout(20)
  local t, r = timed(c.receive, c, "*l")
  local n, err2 = c:send("x")
  return { t = t, r = r[1], err = r[2], partial = r[3], send = n, send_err = err2 }
end

-- A send to a vanished peer: the kernel's buffers fill and the timeout ends it with the count.
function cases.send()
  local c = pair()
  lo_down()
  c:settimeout(1)
  local t, r = timed(c.send, c, ("x"):rep(16 * 1024 * 1024))
  return { t = t, r = r[1], err = r[2], sent = r[3] }
end

-- A lookup the server answers late (0.5 s), one it never answers (the resolver gives up after
-- its 1 s timeout), one it says does not exist, and a connect through the late one.
function cases.dns()
  local out = {}
  out.slow_t, out.slow = timed(socket.dns.toip, "slow.uvsocket.test")
  out.silent_t, out.silent = timed(socket.dns.toip, "silent.uvsocket.test")
  out.missing_t, out.missing = timed(socket.dns.toip, "missing.uvsocket.test")
  out.addr_t, out.addr = timed(socket.dns.getaddrinfo, "slow.uvsocket.test")
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local c = socket.tcp()
  c:settimeout(0.2)
  out.connect_t, out.connect = timed(c.connect, c, "slow.uvsocket.test", port)
  c:close()
  srv:close()
  for k, v in pairs(out) do
    if type(v) == "table" then out[k] = { v[1] and tostring(v[1]), v[2] and tostring(v[2]) } end
    if type(v) == "table" and type(v[1]) == "table" then out[k][1] = v[1][1] and v[1][1].addr end
  end
  return out
end

-- A task waiting in a lookup that is never answered, cancelled after 0.2 s.
function cases.dns_cancel()
  local t0 = socket.gettime()
  local waiter = async.spawn(function() return socket.dns.toip("silent.uvsocket.test") end)
  async.sleep(0.2)
  waiter:cancel()
  local ok, r1, r2 = waiter:join(2)
  return { t = socket.gettime() - t0, ok = ok, r = r1, err = r2 }
end

local function serialize(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      parts[#parts + 1] = "[" .. serialize(k) .. "]=" .. serialize(x)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

local result
if mode == "task" then
  async.run(function()
    local ticks, running = 0, true
    local ticker = async.spawn(function()
      while running do
        async.sleep(0.05)
        ticks = ticks + 1
      end
    end)
    result = cases[case]()
    running = false
    ticker:join(1)
    result.ticks = ticks
  end)
else
  result = cases[case]()
end
io.write("return ", serialize(result), "\n")
