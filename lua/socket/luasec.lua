-- socket/luasec.lua: makes an unchanged LuaSec (ssl.core, Debian's lua-sec 1.2.0) cooperate
-- with the task runtime (docs/reference/tls.md#luasec).
--
-- LuaSec does its own I/O on the descriptor it takes over from a socket (ssl.wrap), and waits
-- in poll(2) with the object's timeout: inside a task that would stop every task. Loading
-- `socket` installs this bridge: the methods of LuaSec's connection objects (the real
-- "SSL:Connection" methods table, so tostring, ssl.https's method copying and copas' type test
-- keep working) are replaced, once, by versions that, in a task and with a timeout other than
-- 0, call LuaSec with timeout 0 and wait for "wantread"/"wantwrite" through async.waitfd,
-- with LuaSocket's timeouts ('b' and 't', from the object's own settimeout), cancellation and
-- deadline scopes; "timeout" when the time is up. Outside tasks, or with timeout 0, LuaSec's
-- own methods run as they are (a hand-written select loop still sees "wantread"). close ends
-- every wait on the descriptor with "closed" (async.cancelfd) before LuaSec closes it. One task
-- at a time reads, and one writes (a handshake does both): a second one waits its turn.
--
-- LuaSec writes without MSG_NOSIGNAL and relies on LuaSocket ignoring SIGPIPE process-wide,
-- which uvsocket does not do: every LuaSec call that may write (send, receive, dohandshake,
-- close, collection) runs through socket._nosigpipe, in both modes.
local core = require("socket.core")
local sync = require("socket.async.sync")

local async = core.async
local waitfd, cancelfd, intask, now = async.waitfd, async.cancelfd, async.intask, async.now
local nosigpipe = core._nosigpipe
local newlock = sync.lock

local getmetatable, pcall, setmetatable, type = getmetatable, pcall, setmetatable, type
local pack, unpack = table.pack, table.unpack

local M = {}

local CLASS = "SSL:Connection"

-- Per connection: the timeouts its owner set (LuaSec starts with no limit) and the locks of its
-- two directions, made on first use in a task.
local states = setmetatable({}, { __mode = "k" })

local function state(conn)
  local s = states[conn]
  if not s then
    s = { block = -1, total = -1, zero = false }
    states[conn] = s
  end
  return s
end

-- LuaSocket's retry time: the block timeout per wait, within what is left of the total one;
-- negative means no limit.
local function left(s, start)
  local b, t = s.block, s.total
  if t < 0 then return b end
  local rest = t - (now() - start)
  if rest < 0 then rest = 0 end
  if b >= 0 and b < rest then return b end
  return rest
end

local function lock_of(s, dir)
  local l = s[dir]
  if not l then
    l = newlock()
    s[dir] = l
  end
  return l
end

local function want(err)
  if err == "wantread" then return "r" end
  if err == "wantwrite" then return "w" end
  return nil
end

-- Patches LuaSec's methods table `methods` and metatable `mt`. Idempotent.
local patched = setmetatable({}, { __mode = "k" })

local function patch(mt)
  local methods = mt.__index
  if type(methods) ~= "table" or patched[methods] then return end
  patched[methods] = true
  local o_handshake, o_receive, o_send = methods.dohandshake, methods.receive, methods.send
  local o_settimeout, o_close, o_getfd = methods.settimeout, methods.close, methods.getfd
  local o_gc, o_closemeta = mt.__gc, mt.__close

  -- Whether this call goes through the runtime: in a task that can yield, with a timeout.
  -- Otherwise LuaSec's own timeout is put back (it may have been set to 0 for a bridged call).
  local function bridged(conn)
    local s = state(conn)
    if intask() and s.block ~= 0 and s.total ~= 0 then
      if not s.zero then
        o_settimeout(conn, 0, "b")
        s.zero = true
      end
      return s
    end
    if s.zero then
      o_settimeout(conn, s.block, "b")
      s.zero = false
    end
    return nil
  end

  -- Waits for `mode` on the connection's descriptor; nil, err when the wait ends otherwise.
  local function wait(conn, s, start, mode)
    local fd = o_getfd(conn)
    if not fd or fd < 0 then return nil, "closed" end
    local t = left(s, start)
    if t == 0 then return nil, "timeout" end
    local ok, err = waitfd(fd, mode, t)
    if not ok then return nil, err end
    return true
  end

  -- Takes direction `dir` ("rd" or "wr") for the calling task; the lock (its __close gives it
  -- back) or nil, err when the turn did not come within the call's time.
  local function turn(s, dir, start)
    local l = lock_of(s, dir)
    if not l:locked() then return l:lock() end
    local t = left(s, start)
    if t == 0 then return nil, "timeout" end
    return l:lock(t >= 0 and t or nil)
  end

  function methods.dohandshake(conn, ...)
    local s = bridged(conn)
    if not s then return nosigpipe(o_handshake, conn, ...) end
    local start = now()
    local rd <close>, err = turn(s, "rd", start)
    if not rd then return nil, err end
    local wr <close>, err2 = turn(s, "wr", start)
    if not wr then return nil, err2 end
    while true do
      local r = pack(nosigpipe(o_handshake, conn, ...))
      local mode = not r[1] and want(r[2])
      if not mode then return unpack(r, 1, r.n) end
      local ok, why = wait(conn, s, start, mode)
      if not ok then return nil, why end
    end
  end

  function methods.receive(conn, pattern, prefix, ...)
    local s = bridged(conn)
    if not s then return nosigpipe(o_receive, conn, pattern, prefix, ...) end
    local start = now()
    local rd <close>, err = turn(s, "rd", start)
    if not rd then return nil, err, prefix or "" end
    local partial = prefix
    while true do
      local r = pack(nosigpipe(o_receive, conn, pattern, partial, ...))
      local mode = r[1] == nil and want(r[2])
      if not mode then return unpack(r, 1, r.n) end
      -- The next try continues the pattern from what came so far (a count includes it).
      partial = r[3]
      local ok, why = wait(conn, s, start, mode)
      if not ok then return nil, why, partial or "" end
    end
  end

  function methods.send(conn, data, i, j, ...)
    local s = bridged(conn)
    if not s then return nosigpipe(o_send, conn, data, i, j, ...) end
    local start = now()
    local wr <close>, err = turn(s, "wr", start)
    if not wr then return nil, err, (i or 1) - 1 end
    while true do
      local r = pack(nosigpipe(o_send, conn, data, i, j, ...))
      local mode = r[1] == nil and want(r[2])
      if not mode then return unpack(r, 1, r.n) end
      local last = r[3]
      i = last + 1
      local ok, why = wait(conn, s, start, mode)
      if not ok then return nil, why, last end
    end
  end

  function methods.settimeout(conn, t, mode, ...)
    local s = state(conn)
    local r = pack(o_settimeout(conn, t, mode, ...))  -- LuaSec checks the arguments
    t = t or -1
    if mode == "t" or mode == "r" then
      s.total = t
    else
      s.block = t
      s.zero = false
    end
    return unpack(r, 1, r.n)
  end

  -- Every wait on the descriptor ends with "closed" before LuaSec closes it.
  local function cancel(conn)
    local ok, fd = pcall(o_getfd, conn)
    if ok and type(fd) == "number" and fd >= 0 then cancelfd(fd) end
  end

  function methods.close(conn, ...)
    cancel(conn)
    return nosigpipe(o_close, conn, ...)
  end

  if o_gc then
    mt.__gc = function(conn)
      cancel(conn)
      return nosigpipe(o_gc, conn)
    end
  end
  if o_closemeta then
    mt.__close = function(conn, ...)
      cancel(conn)
      return nosigpipe(o_closemeta, conn, ...)
    end
  end
end

-- Patches LuaSec if its core is loaded. Returns whether it is.
function M.patch()
  local mt = debug.getregistry()[CLASS]
  if type(mt) ~= "table" then return false end
  patch(mt)
  return true
end

-- Whether `obj` is a LuaSec connection (its calls go through the bridge).
function M.isconnection(obj)
  return type(obj) == "userdata" and getmetatable(obj) == debug.getregistry()[CLASS]
end

-- Installs the bridge: now if ssl.core is loaded, else when it is. A package.searchers entry
-- in front of the others finds the real ssl.core with the searchers that follow it and
-- patches its classes right after it is opened.
local installed = false
function M.install()
  if installed then return end
  installed = true
  M.patch()
  local searchers = package.searchers
  local function searcher(name)
    if name ~= "ssl.core" then return nil end
    local tried = {}
    for i = 1, #searchers do
      local s = searchers[i]
      if s ~= searcher then
        local loader, extra = s(name)
        if type(loader) == "function" then
          return function(...)
            local mod = loader(...)
            M.patch()
            return mod
          end, extra
        elseif type(loader) == "string" then
          tried[#tried + 1] = loader
        end
      end
    end
    return table.concat(tried)
  end
  table.insert(searchers, 1, searcher)
end

return M
