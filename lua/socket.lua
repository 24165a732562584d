-- socket.lua: the `socket` namespace. Loads the C core and adds LuaSocket's helpers written in
-- Lua: connect4/connect6, bind, try, choose, and the LTN12 sources and sinks over sockets.
-- Every function here is built on core calls, so each one yields inside a task and blocks in a
-- plain script without knowing which.
local core = require("socket.core")

local M = core

local error, ipairs, pairs, setmetatable, tostring, type =
  error, ipairs, pairs, setmetatable, tostring, type

local families = { unspec = true, inet = true, inet6 = true }

local function check_string(value, n, fname)
  local t = type(value)
  if t ~= "string" and t ~= "number" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname,
      t), 3)
  end
end

local function check_type(value, n, fname, expected, level)
  if type(value) ~= expected then
    error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, expected,
      type(value)), level or 3)
  end
end

-- socket.connect(address, port [, locaddr [, locport [, family]]]) -> client | nil, err
-- A tcp client connected to address:port, bound first to locaddr:locport when given. Unlike
-- LuaSocket 3.1, `family` restricts the connection too, not only the local bind
-- (docs/compat.md).
function M.connect(address, port, locaddr, locport, family)
  check_string(address, 1, "connect")
  check_string(port, 2, "connect")
  if locaddr ~= nil then check_string(locaddr, 3, "connect") end
  if locport ~= nil then check_string(locport, 4, "connect") end
  family = family or "unspec"
  if type(family) ~= "string" or not families[family] then
    error(("bad argument #5 to 'connect' (invalid option '%s')"):format(tostring(family)), 2)
  end
  local sock, err
  if family == "inet" then
    sock, err = core.tcp4()
  elseif family == "inet6" then
    sock, err = core.tcp6()
  else
    sock, err = core.tcp()
  end
  if not sock then return nil, err end
  local ok
  if locaddr then
    ok, err = sock:bind(locaddr, locport or "0")
    if not ok then
      sock:close()
      return nil, err
    end
  end
  ok, err = sock:connect(address, port)
  if not ok then
    sock:close()
    return nil, err
  end
  return sock
end

-- socket.connect4(...), socket.connect6(...): socket.connect restricted to one family.
for name, family in pairs({ connect4 = "inet", connect6 = "inet6" }) do
  M[name] = function(address, port, locaddr, locport)
    return M.connect(address, port, locaddr, locport, family)
  end
end

-- socket.bind(host, port [, backlog]) -> server | nil, err
-- A listening tcp server with reuseaddr set, on the first address of host that works ("*" is
-- every IPv4 address).
function M.bind(host, port, backlog)
  check_string(host, 1, "bind")
  check_string(port, 2, "bind")
  if backlog ~= nil then check_type(backlog, 3, "bind", "number") end
  local candidates, err = core.dns.getaddrinfo(host == "*" and "0.0.0.0" or host)
  if not candidates then return nil, err end
  err = "no info on address"
  for _, candidate in ipairs(candidates) do
    local make = candidate.family == "inet" and core.tcp4 or core.tcp6
    local sock, why = make()
    if not sock then return nil, why end
    sock:setoption("reuseaddr", true)
    local bound
    bound, err = sock:bind(candidate.addr, port)
    if bound then
      bound, err = sock:listen(backlog)
      if bound then return sock end
    end
    sock:close()
  end
  return nil, err
end

M.try = M.newtry()

-- Calls tbl[key](a, b), or raises "unknown key (key)" at the level of the dispatcher's caller.
local function dispatch(tbl, key, a, b)
  local handler = tbl[key]
  if handler == nil then error(("unknown key (%s)"):format(tostring(key)), 4) end
  return handler(a, b)
end

-- socket.choose(tbl) -> function(name, a, b) that calls tbl[name](a, b). When the first argument
-- is not a string, tbl.default is called and that argument is passed on as its first.
function M.choose(tbl)
  check_type(tbl, 1, "choose", "table")
  return function(name, a, b)
    if type(name) == "string" then return dispatch(tbl, name, a, b) end
    return dispatch(tbl, "default", name, a)
  end
end

-----------------------------------------------------------------------------------------------
-- LTN12 sinks and sources over sockets. Each is a callable table that also answers getfd and
-- dirty, so it can be passed to socket.select. socket.http adds its "http-chunked" modes.
-----------------------------------------------------------------------------------------------
M.BLOCKSIZE = 2048
local sinkt = {}
local sourcet = {}
M.sinkt, M.sourcet = sinkt, sourcet

-- The socket of a sink or source factory: anything with the methods it will call (a socket, or
-- an object that behaves like one). Factories run under choose's dispatcher, hence the level.
local function check_sock(sock, fname)
  local t = type(sock)
  if t ~= "userdata" and t ~= "table" then
    error(("bad argument #2 to '%s' (socket expected, got %s)"):format(fname, t), 5)
  end
end

local function selectable(sock, call)
  return setmetatable({
    getfd = function() return sock:getfd() end,
    dirty = function() return sock:dirty() end,
  }, { __call = call })
end

sinkt["close-when-done"] = function(sock)
  check_sock(sock, "sink")
  return selectable(sock, function(_, chunk)
    if not chunk then
      sock:close()
      return 1
    end
    return sock:send(chunk)
  end)
end

sinkt["keep-open"] = function(sock)
  check_sock(sock, "sink")
  return selectable(sock, function(_, chunk)
    if chunk then return sock:send(chunk) end
    return 1
  end)
end

sinkt["default"] = sinkt["keep-open"]

M.sink = M.choose(sinkt)

sourcet["by-length"] = function(sock, length)
  check_sock(sock, "source")
  check_type(length, 3, "source", "number", 5)
  return selectable(sock, function()
    if length <= 0 then return nil end
    local size = length < M.BLOCKSIZE and length or M.BLOCKSIZE
    local chunk, err = sock:receive(size)
    if err then return nil, err end
    length = length - #chunk
    return chunk
  end)
end

sourcet["until-closed"] = function(sock)
  check_sock(sock, "source")
  local done
  return selectable(sock, function()
    if done then return nil end
    local chunk, err, partial = sock:receive(M.BLOCKSIZE)
    if not err then return chunk end
    if err == "closed" then
      sock:close()
      done = true
      return partial
    end
    return nil, err
  end)
end

sourcet["default"] = sourcet["until-closed"]

M.source = M.choose(sourcet)

M.async = require("socket.async")

-- LuaSec, when it is loaded (now or later), yields in tasks and never raises SIGPIPE.
require("socket.luasec").install()

return M
