-- async/sync.lua: synchronisation between tasks: lock, semaphore, queue (a bounded channel),
-- event and condition. Waiters are served first come, first served; every wait takes an
-- optional timeout and ends with nil, "cancelled" when its task is cancelled. A hand-over
-- (unlock, release, put) goes only to a task that is still waiting, so a task that timed out
-- or was cancelled never ends up holding a lock or an item it will not see.
local core = require("socket.core")
local waitlist = require("socket.async.waitlist")
local args = require("socket.async.args")

local async = core.async
local wait, wake, current = async._wait, async._wake, async.current
local error, setmetatable, type = error, setmetatable, type
local check_self, check_timeout = args.self, args.timeout

local M = {}

local function me(what)
  local t = current()
  if not t then error(what .. " must be called from a task", 3) end
  return t
end

-- Parks task `t` on `list` until a hand-over wakes it (true), or its timeout or cancellation
-- ends the wait (nil, err; it is then off the list).
local function park(list, t, timeout)
  list:push(t)
  local ok, err = wait(timeout)
  if ok then return true end
  list:remove(t)
  return nil, err
end

-----------------------------------------------------------------------------------------------
-- Lock: a mutex. lock:lock() returns the lock, whose __close unlocks it, so
--   local guard <close> = assert(m:lock())
-- releases it however the scope ends.
-----------------------------------------------------------------------------------------------
local Lock = {}
Lock.__index = Lock

function M.lock()
  return setmetatable({ owner = nil, waiting = waitlist.new() }, Lock)
end

function Lock:lock(timeout)
  check_self(self, Lock, "async.lock", "lock")
  check_timeout(timeout, 1, "lock")
  local t = me("lock:lock")
  if self.owner == nil then
    self.owner = t
    return self
  end
  if self.owner == t then error("lock:lock: this task already holds the lock", 2) end
  local ok, err = park(self.waiting, t, timeout)
  if ok then return self end  -- handed over by unlock
  return nil, err
end

function Lock:trylock()
  check_self(self, Lock, "async.lock", "trylock")
  local t = me("lock:trylock")
  if self.owner ~= nil then return nil, "locked" end
  self.owner = t
  return self
end

function Lock:unlock()
  check_self(self, Lock, "async.lock", "unlock")
  if self.owner ~= current() then error("lock:unlock: the lock is not held by this task", 2) end
  while true do
    local next_task = self.waiting:pop()
    if not next_task then
      self.owner = nil
      return true
    end
    if wake(next_task) then
      self.owner = next_task
      return true
    end
  end
end

function Lock:locked()
  check_self(self, Lock, "async.lock", "locked")
  return self.owner ~= nil
end

Lock.__close = function(self)
  if self.owner ~= nil and self.owner == current() then self:unlock() end
end

-----------------------------------------------------------------------------------------------
-- Semaphore: `count` permits, handed out in arrival order.
-----------------------------------------------------------------------------------------------
local Semaphore = {}
Semaphore.__index = Semaphore

function M.semaphore(count)
  count = count or 1
  if type(count) ~= "number" or not (count >= 0) then  -- NaN is refused too
    error("bad argument #1 to 'semaphore' (non-negative number expected)", 2)
  end
  return setmetatable({ count = count, waiting = waitlist.new() }, Semaphore)
end

function Semaphore:acquire(timeout)
  check_self(self, Semaphore, "async.semaphore", "acquire")
  check_timeout(timeout, 1, "acquire")
  local t = me("semaphore:acquire")
  if self.count > 0 and self.waiting:empty() then
    self.count = self.count - 1
    return true
  end
  return park(self.waiting, t, timeout)  -- the permit comes with the hand-over
end

function Semaphore:release()
  check_self(self, Semaphore, "async.semaphore", "release")
  while true do
    local next_task = self.waiting:pop()
    if not next_task then
      self.count = self.count + 1
      return true
    end
    if wake(next_task) then return true end  -- the permit goes straight to it
  end
end

function Semaphore:available()
  check_self(self, Semaphore, "async.semaphore", "available")
  return self.count
end

-----------------------------------------------------------------------------------------------
-- Queue: a channel of at most `capacity` items (0: every put waits for a get); items may not be
-- nil. close() ends it: puts fail with "closed", gets drain what is left and then fail with
-- "closed".
--   for item in q:items() do ... end
-----------------------------------------------------------------------------------------------
local Queue = {}
Queue.__index = Queue

function M.queue(capacity)
  capacity = capacity or math.huge
  if type(capacity) ~= "number" or not (capacity >= 0) then  -- NaN is refused too
    error("bad argument #1 to 'queue' (non-negative number expected)", 2)
  end
  return setmetatable({
    capacity = capacity, head = 1, tail = 0,
    getters = waitlist.new(), putters = waitlist.new(),
    given = {},    -- items handed to a waiting getter
    offered = {},  -- items of waiting putters
    closed = false,
  }, Queue)
end

local function length(self) return self.tail - self.head + 1 end

function Queue:length()
  check_self(self, Queue, "async.queue", "length")
  return length(self)
end

function Queue:put(item, timeout)
  check_self(self, Queue, "async.queue", "put")
  check_timeout(timeout, 2, "put")
  if item == nil then error("bad argument #1 to 'put' (value expected)", 2) end
  if self.closed then return nil, "closed" end
  -- a waiting getter takes it directly
  while true do
    local g = self.getters:pop()
    if not g then break end
    self.given[g] = item
    if wake(g) then return true end
    self.given[g] = nil
  end
  if length(self) < self.capacity then
    self.tail = self.tail + 1
    self[self.tail] = item
    return true
  end
  local t = me("queue:put")
  self.offered[t] = item
  self.putters:push(t)
  local ok, err = wait(timeout)
  local untaken = self.offered[t] ~= nil  -- a getter clears it when it takes the item
  self.offered[t] = nil
  if ok and not untaken then return true end
  self.putters:remove(t)
  if ok then return nil, "closed" end  -- woken by close()
  return nil, err
end

-- Takes the item of the first waiting putter (waking it), or nil.
local function take_offer(self)
  while true do
    local p = self.putters:pop()
    if not p then return nil end
    local item = self.offered[p]
    self.offered[p] = nil
    if wake(p) then return item end
    self.offered[p] = item  -- it stopped waiting meanwhile: its put() cleans up
  end
end

local function get(self, timeout)
  if self.head <= self.tail then
    local item = self[self.head]
    self[self.head] = nil
    self.head = self.head + 1
    local offer = take_offer(self)
    if offer ~= nil then
      self.tail = self.tail + 1
      self[self.tail] = offer
    end
    return item
  end
  local offer = take_offer(self)
  if offer ~= nil then return offer end
  if self.closed then return nil, "closed" end
  local t = me("queue:get")
  self.getters:push(t)
  local ok, err = wait(timeout)
  local item = self.given[t]
  self.given[t] = nil
  if ok and item ~= nil then return item end
  self.getters:remove(t)
  if ok then return nil, "closed" end  -- woken by close()
  return nil, err
end

function Queue:get(timeout)
  check_self(self, Queue, "async.queue", "get")
  check_timeout(timeout, 1, "get")
  return get(self, timeout)
end

function Queue:close()
  check_self(self, Queue, "async.queue", "close")
  if self.closed then return end
  self.closed = true
  while true do
    local g = self.getters:pop()
    if not g then break end
    wake(g)
  end
  while true do
    local p = self.putters:pop()
    if not p then break end
    wake(p)  -- its item stays offered, so its put() reports "closed"
  end
end

function Queue:isclosed()
  check_self(self, Queue, "async.queue", "isclosed")
  return self.closed
end

-- Iterates over the items until the queue is closed and drained, or a get fails (timeout,
-- cancelled).
function Queue:items(timeout)
  check_self(self, Queue, "async.queue", "items")
  check_timeout(timeout, 1, "items")
  return function()
    return (get(self, timeout))
  end
end

-----------------------------------------------------------------------------------------------
-- Event: a flag tasks can wait for.
-----------------------------------------------------------------------------------------------
local Event = {}
Event.__index = Event

function M.event()
  return setmetatable({ flag = false, waiting = waitlist.new() }, Event)
end

function Event:set()
  check_self(self, Event, "async.event", "set")
  self.flag = true
  while true do
    local t = self.waiting:pop()
    if not t then break end
    wake(t)
  end
end

function Event:clear()
  check_self(self, Event, "async.event", "clear")
  self.flag = false
end

function Event:isset()
  check_self(self, Event, "async.event", "isset")
  return self.flag
end

function Event:wait(timeout)
  check_self(self, Event, "async.event", "wait")
  check_timeout(timeout, 1, "wait")
  if self.flag then return true end
  return park(self.waiting, me("event:wait"), timeout)
end

-----------------------------------------------------------------------------------------------
-- Condition: wait until signalled (no lock needed: tasks only switch where they wait).
-----------------------------------------------------------------------------------------------
local Condition = {}
Condition.__index = Condition

function M.condition()
  return setmetatable({ waiting = waitlist.new() }, Condition)
end

function Condition:wait(timeout)
  check_self(self, Condition, "async.condition", "wait")
  check_timeout(timeout, 1, "wait")
  return park(self.waiting, me("condition:wait"), timeout)
end

function Condition:signal()
  check_self(self, Condition, "async.condition", "signal")
  while true do
    local t = self.waiting:pop()
    if not t then return false end
    if wake(t) then return true end
  end
end

function Condition:broadcast()
  check_self(self, Condition, "async.condition", "broadcast")
  local n = 0
  while true do
    local t = self.waiting:pop()
    if not t then return n end
    if wake(t) then n = n + 1 end
  end
end

return M
