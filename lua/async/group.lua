-- async/group.lua: structured concurrency. A group owns the tasks spawned into it; wait()
-- returns when all of them finished. The first error in a child cancels its siblings and is
-- raised by wait(), once every child has ended.
--
--   local g = async.group()
--   g:spawn(fetch, "a"); g:spawn(fetch, "b")
--   g:wait()          -- raises the first child's error, if any
local core = require("socket.core")
local args = require("socket.async.args")

local async = core.async
local spawn, now = async.spawn, async.now
local error, ipairs, setmetatable, tostring, xpcall = error, ipairs, setmetatable, tostring, xpcall
local check_self, check_timeout, check_func = args.self, args.timeout, args.func
local traceback = debug.traceback
local pack, unpack = table.pack, table.unpack

local M = {}

local Group = {}
Group.__index = Group

function M.group()
  return setmetatable({ children = {}, failed = false, err = nil, trace = nil }, Group)
end

local function cancel(group, reason)
  for _, t in ipairs(group.children) do t:cancel(reason) end
end

-- group:spawn(fn, ...) -> task
-- The child's error does not go to the runtime's error report: the group keeps it for wait().
function Group:spawn(fn, ...)
  check_self(self, Group, "async.group", "spawn")
  check_func(fn, 1, "spawn")
  local group = self
  local task = spawn(function(...)
    local r = pack(xpcall(fn, function(e)
      return { err = e, trace = traceback(tostring(e), 2) }
    end, ...))
    if r[1] then return unpack(r, 2, r.n) end
    if not group.failed then
      group.failed = true
      group.err, group.trace = r[2].err, r[2].trace
      cancel(group, "a sibling failed")
    end
  end, ...)
  self.children[#self.children + 1] = task
  return task
end

-- group:cancel([reason]): cancels every child still running.
function Group:cancel(reason)
  check_self(self, Group, "async.group", "cancel")
  cancel(self, reason)
end

-- group:wait([timeout]) -> true | nil, "timeout" | nil, "cancelled"; raises the first error.
function Group:wait(timeout)
  check_self(self, Group, "async.group", "wait")
  check_timeout(timeout, 1, "wait")
  local deadline = timeout and now() + timeout
  local i = 1
  while i <= #self.children do  -- children may spawn more children meanwhile
    local t = self.children[i]
    local left = deadline and math.max(0, deadline - now())
    local st = t:status()
    if st ~= "done" and st ~= "failed" then
      local ok, err = t:join(left)
      if not ok and (err == "timeout" or err == "cancelled") and t:status() ~= "done" then
        return nil, err
      end
    end
    i = i + 1
  end
  if self.failed then error(self.err, 0) end
  return true
end

-- group:error() -> the first error and its traceback, or nil
function Group:error()
  check_self(self, Group, "async.group", "error")
  return self.err, self.trace
end

return M
