-- serve_emfile_spec.lua: socket.async.serve (under socket.http.server) when accept runs out of
-- descriptors. The server runs as its own process with `ulimit -n 64`; this file's clients
-- (blocking mode) open more connections than it has descriptors for, then check that the server
-- does not spin while saturated, keeps serving the clients it has, logs at most once a second,
-- and accepts again once descriptors are free (the recovery time is printed).
local H = require("support.helpers").use(_ENV)
local socket = require("socket")

local SERVER = [[
local socket = require("socket")
local server = require("socket.http.server")
local async = socket.async
async.run(function()
  local srv
  srv = assert(server.listen{ header_timeout = 30, idle_timeout = 30, handler = function(req, res)
    if req.path == "/stats" then
      res:finish(("cpu=%.4f conns=%d"):format(async.status().cpu, srv:connections()))
    elseif req.path == "/quit" then
      res:finish("bye")
      async.spawn(function() srv:close(); async.shutdown(0.5) end)
    else
      res:finish("hello")
    end
  end })
  local _, port = srv:getsockname()
  io.write(port, "\n")
  io.flush()
end)
]]

local function start()
  local log = os.tmpname()
  local p, port = H.limited_server(SERVER, 64, 60, log)
  return p, port, log
end

-- One request on the kept-alive connection `c`; returns the body.
local function get(c, path)
  assert(c:send("GET " .. path .. " HTTP/1.1\r\nHost: h\r\n\r\n"))
  local len
  while true do
    local line = assert(c:receive("*l"))
    if line == "" then break end
    len = tonumber(line:match("^Content%-Length: (%d+)")) or len
  end
  return assert(c:receive(len))
end

describe("async.serve out of descriptors", function()
  it("pauses accepting without spinning and serves again when descriptors free", function()
    -- UBSan's vptr check tests memory with a pipe, so in a process with no descriptor left it
    -- reports every virtual call as a bad one: the sanitizer build cannot run out of them.
    if os.getenv("LD_PRELOAD") then
      return pending("the sanitizer runtime needs a free descriptor for its checks")
    end
    local p, port, log = start()
    local a = assert(socket.connect("127.0.0.1", port))
    a:settimeout(5)
    assert.are.equal("hello", get(a, "/hello"))
    -- Saturate: 120 connections for a server with 64 descriptors.
    local held = {}
    for i = 1, 120 do
      local c = socket.tcp()
      c:settimeout(2)
      if c:connect("127.0.0.1", port) then held[#held + 1] = c else c:close() end
      if i == 120 then socket.sleep(0.2) end
    end
    assert.is_true(#held >= 100, "connected " .. #held)
    local cpu0 = tonumber(get(a, "/stats"):match("cpu=([%d.]+)"))
    local t0 = socket.gettime()
    socket.sleep(1.5)
    local stats = get(a, "/stats")      -- the existing client is still served
    local cpu1 = tonumber(stats:match("cpu=([%d.]+)"))
    local conns = tonumber(stats:match("conns=(%d+)"))
    local busy = (cpu1 - cpu0) / (socket.gettime() - t0)
    assert.is_true(conns < 64, "connections " .. conns)   -- it did hit the limit
    assert.is_true(busy < 0.2, ("CPU %.0f%% while saturated"):format(busy * 100))
    -- A new client waits in the listen queue while saturated...
    local late = assert(socket.connect("127.0.0.1", port))
    late:settimeout(0.5)
    late:send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")
    local none, why = late:receive("*l")
    assert.is_nil(none)
    assert.are.equal("timeout", why)
    -- ...and is served once descriptors are free again.
    for _, c in ipairs(held) do c:close() end
    local r0 = socket.gettime()
    late:settimeout(5)
    local line = late:receive("*l")
    local recovery = socket.gettime() - r0
    assert.are.equal("HTTP/1.1 200 OK", line)
    assert.is_true(recovery < 1, "recovery " .. recovery)
    io.write(("\n  saturated: %d connections held, server CPU %.1f%% of wall time; served again "
      .. "%.0f ms after the descriptors were freed\n"):format(conns, busy * 100, recovery * 1000))
    late:close()
    local b = assert(socket.connect("127.0.0.1", port))
    b:settimeout(5)
    assert.are.equal("hello", get(b, "/hello"))
    get(b, "/quit")
    b:close()
    a:close()
    p:close()
    local text = require("support.servers").read(log) or ""
    os.remove(log)
    local _, lines = text:gsub("accept failed %(Too many open files%)", "")
    assert.is_true(lines >= 1, text)
    assert.is_true(lines <= 4, "logged " .. lines .. " times:\n" .. text)
  end)
end)
