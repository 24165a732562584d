-- socket/http/pool.lua: the keep-alive connection pool of socket.http
-- (docs/reference/http-pool.md).
--
-- The pool only keeps connections and counts them: which connections exist for a key, which
-- of them are idle, who waits for one. socket.http decides what a key is, opens the
-- connections and says when one may be used again. A pool serves blocking scripts and tasks
-- alike; a request that has to wait for a connection can only do so inside a task (in a plain
-- script nothing else could give one back).
--
-- By default no timer and no task watches an idle connection: a task would keep
-- socket.async.run from returning. An idle connection is checked when it is taken out (anything
-- to read, the peer's close included, means it cannot be used), and the idle timeout is applied
-- at every call into the pool. With `watch = true` a task per idle connection waits on its
-- descriptor (Pool:_watch), for programs that close their pool when done.
local socket = require("socket")

local M = {}

local error, getmetatable, ipairs, pairs, setmetatable, tostring, type =
  error, getmetatable, ipairs, pairs, setmetatable, tostring, type
local remove = table.remove
local async = socket.async
local now = async.now

-- Options and their defaults.
M.defaults = {
  max_idle = 10,       -- idle connections kept per key
  max_per_key = 10,    -- connections per key, in use and idle
  max_total = 100,     -- connections of the whole pool
  max_waiting = 100,   -- requests waiting for a connection (the whole pool)
  wait_timeout = 30,   -- seconds a request waits for a connection
  idle_timeout = 15,   -- seconds an idle connection is kept
  watch = false,       -- in tasks, a task per idle connection waits on its descriptor
}

local Pool = {}
Pool.__index = Pool
M.Pool = Pool

local function check_number(opts, name, min)
  local v = opts[name]
  if v == nil then return M.defaults[name] end
  if type(v) ~= "number" or v ~= v or v < min then
    error("bad option '" .. name .. "' to 'pool' (number >= " .. min .. " expected, got "
      .. tostring(v) .. ")", 3)
  end
  return v
end

-- pool.new([options]) -> pool
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #1 to 'pool' (table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  if opts.watch ~= nil and type(opts.watch) ~= "boolean" then
    error("bad option 'watch' to 'pool' (boolean expected, got " .. type(opts.watch) .. ")", 2)
  end
  for name in pairs(opts) do
    if M.defaults[name] == nil then
      error("unknown option '" .. tostring(name) .. "' to 'pool'", 2)
    end
  end
  local p = setmetatable({
    max_idle = check_number(opts, "max_idle", 0),
    max_per_key = check_number(opts, "max_per_key", 1),
    max_total = check_number(opts, "max_total", 1),
    max_waiting = check_number(opts, "max_waiting", 0),
    wait_timeout = check_number(opts, "wait_timeout", 0),
    idle_timeout = check_number(opts, "idle_timeout", 0),
    watch = opts.watch,
    idle = {},      -- key -> array of idle entries, the most recently used last
    open = {},      -- key -> connections of the key (in use, idle and being opened)
    total = 0,      -- connections of the pool
    nidle = 0,
    waiters = {},   -- the requests waiting, first come first
    sessions = {},  -- key -> the last TLS session of the key, to resume
    next_sweep = 0,
    counts = { created = 0, reused = 0, dropped = 0, expired = 0, retried = 0, resumed = 0,
      rejected = 0, timeouts = 0, requests = 0 },
  }, Pool)
  return p
end

-- An entry is {conn = connection object of socket.http, key = key, state = "busy" | "idle" |
-- "closed", since = when it went idle, uses = requests made on it}.

local function unlink(p, entry)
  local key = entry.key
  local n = p.open[key] - 1
  p.open[key] = n > 0 and n or nil
  p.total = p.total - 1
end

-- Gives freed room to the first waiters that can use it: a new connection of their key.
local function wake_slots(p)
  local i = 1
  while i <= #p.waiters and p.total < p.max_total do
    local w = p.waiters[i]
    if (p.open[w.key] or 0) < p.max_per_key then
      remove(p.waiters, i)
      p.open[w.key] = (p.open[w.key] or 0) + 1
      p.total = p.total + 1
      w.slot = true
      w.event:set()
    else
      i = i + 1
    end
  end
end

local function close_entry(entry)
  entry.state = "closed"
  local c = entry.conn
  entry.conn = nil
  if c then c:close() end
end

-- Closes an entry and frees its room. Safe to call twice.
function Pool:_discard(entry)
  if entry.state == "closed" then return end
  local watcher = entry.watcher
  entry.watcher = nil
  if watcher and watcher ~= async.current() then watcher:cancel() end
  if entry.state == "idle" then
    local list = self.idle[entry.key]
    for i = #list, 1, -1 do
      if list[i] == entry then remove(list, i) break end
    end
    if #list == 0 then self.idle[entry.key] = nil end
    self.nidle = self.nidle - 1
  end
  close_entry(entry)
  unlink(self, entry)
  wake_slots(self)
end

-- Frees the room reserved for a connection that could not be opened.
function Pool:_unreserve(key)
  unlink(self, { key = key })
  wake_slots(self)
end

-- Closes the idle connections that have been idle for idle_timeout: of `key`, and of every key
-- when `all` is true or at most once a second. `t`: now(), when the caller has it.
local function expire(p, list, limit)
  while list and list[1] and list[1].since <= limit do
    p.counts.expired = p.counts.expired + 1
    p:_discard(list[1])
  end
end

local function sweep(p, key, all, t)
  t = t or now()
  local limit = t - p.idle_timeout
  if key then expire(p, p.idle[key], limit) end
  if all or t >= p.next_sweep then
    p.next_sweep = t + 1
    local keys = {}
    for k in pairs(p.idle) do keys[#keys + 1] = k end
    for _, k in ipairs(keys) do expire(p, p.idle[k], limit) end
  end
end

-- Whether an idle connection can carry a request: nothing is waiting to be read on it (a
-- server has nothing to say between responses, so readable means closed or garbage).
local function usable(entry, timeout)
  local c = entry.conn.c
  if c:dirty() then return false end
  c:settimeout(0)
  local data, err = c:receive(1)
  c:settimeout(timeout)
  return data == nil and err == "timeout"
end

-- The oldest idle connection of a key other than `key`, closed to make room.
local function evict_other(p, key)
  local oldest
  for k, list in pairs(p.idle) do
    if k ~= key and list[1] and (not oldest or list[1].since < oldest.since) then
      oldest = list[1]
    end
  end
  if not oldest then return false end
  p:_discard(oldest)
  return true
end

-- Takes a connection for `key`: returns entry (an idle connection, now busy), or false when
-- room for a new connection was reserved (the caller opens it and calls _add, or _unreserve),
-- or nil, err. `fresh` skips the idle connections. `timeout` is the socket timeout to leave on
-- a reused connection.
function Pool:_checkout(key, fresh, timeout)
  sweep(self, key)
  local list = not fresh and self.idle[key]
  while list and #list > 0 do
    local n = #list
    local entry = list[n]
    list[n] = nil
    self.nidle = self.nidle - 1
    if n == 1 then self.idle[key] = nil end
    entry.state = "busy"
    local watcher = entry.watcher
    entry.watcher = nil
    if watcher then watcher:cancel() end
    if usable(entry, timeout) then
      self.counts.reused = self.counts.reused + 1
      return entry
    end
    self.counts.dropped = self.counts.dropped + 1
    self:_discard(entry)
    list = self.idle[key]
  end
  local open = self.open[key] or 0
  if open < self.max_per_key and (self.total < self.max_total or evict_other(self, key)) then
    self.open[key] = open + 1
    self.total = self.total + 1
    return false
  end
  if not async.intask() then
    self.counts.rejected = self.counts.rejected + 1
    return nil, "connection pool full"
  end
  if #self.waiters >= self.max_waiting then
    self.counts.rejected = self.counts.rejected + 1
    return nil, "connection pool queue full"
  end
  local w = { key = key, event = async.event() }
  self.waiters[#self.waiters + 1] = w
  local _, err = w.event:wait(self.wait_timeout)
  for i, x in ipairs(self.waiters) do
    if x == w then remove(self.waiters, i) break end
  end
  -- What was handed over counts even when the wait ended for another reason at the same time.
  if w.entry then
    if err then
      self:_checkin(w.entry)
    else
      self.counts.reused = self.counts.reused + 1
      return w.entry
    end
  elseif w.slot then
    if err then
      self:_unreserve(key)
    else
      return false
    end
  end
  if err == "timeout" then
    self.counts.timeouts = self.counts.timeouts + 1
    return nil, "connection pool wait timeout"
  end
  return nil, err or "cancelled"
end

-- Records a connection opened in reserved room; returns its entry, busy.
function Pool:_add(key, conn)
  self.counts.created = self.counts.created + 1
  return { conn = conn, key = key, state = "busy", uses = 0 }
end

-- Watches an idle connection from a task of its own, waiting on its descriptor (no CPU while
-- nothing happens): when the server closes it or sends anything, or idle_timeout passes, it is
-- closed at once. Readable with nothing to read (TLS records that carry no data) is waited on
-- again. Taking the connection cancels the task.
function Pool:_watch(entry)
  local c = entry.conn.c
  local timeout = c:gettimeout()
  entry.watcher = async.spawn(function()
    while entry.state == "idle" do
      local left = entry.since + self.idle_timeout - now()
      local ready, err
      if left > 0 then ready, err = async.waitfd(c:getfd(), "r", left) end
      if entry.state ~= "idle" then return end
      if not ready and err ~= "timeout" and left > 0 then return end  -- cancelled, closed
      if not ready then
        self.counts.expired = self.counts.expired + 1
        return self:_discard(entry)
      end
      if not usable(entry, timeout) then
        self.counts.dropped = self.counts.dropped + 1
        return self:_discard(entry)
      end
    end
  end)
end

-- Gives back a busy connection that can carry another request.
function Pool:_checkin(entry)
  if entry.state ~= "busy" then return end
  local key = entry.key
  local waiters = self.waiters
  for i = 1, #waiters do
    local w = waiters[i]
    if w.key == key then
      remove(waiters, i)
      w.entry = entry
      w.event:set()
      return
    end
  end
  -- A waiter of another key needs the room more than this connection needs to idle.
  local list = self.idle[key] or {}
  if #waiters > 0 or #list >= self.max_idle or self.idle_timeout <= 0 then
    self:_discard(entry)
    return
  end
  local t = now()
  entry.state = "idle"
  entry.since = t
  list[#list + 1] = entry
  self.idle[key] = list
  self.nidle = self.nidle + 1
  if self.watch and async.intask() then self:_watch(entry) end
  sweep(self, nil, false, t)
end

-- p:stats() -> table
function Pool:stats()
  sweep(self, nil, true)
  local keys = 0
  for _ in pairs(self.open) do keys = keys + 1 end
  local t = { idle = self.nidle, open = self.total, busy = self.total - self.nidle,
    waiting = #self.waiters, keys = keys }
  for k, v in pairs(self.counts) do t[k] = v end
  return t
end

-- p:close() -> number of idle connections closed
function Pool:close()
  local n = 0
  local keys = {}
  for k in pairs(self.idle) do keys[#keys + 1] = k end
  for _, k in ipairs(keys) do
    local list = self.idle[k]
    while list and list[1] do
      self:_discard(list[1])
      n = n + 1
      list = self.idle[k]
    end
  end
  return n
end

Pool.__tostring = function(self)
  return "http.pool: " .. self.total .. " open, " .. self.nidle .. " idle"
end

function M.ispool(v)
  return type(v) == "table" and getmetatable(v) == Pool
end

return M
