-- async/group.lua: structured concurrency. A group owns the tasks spawned into it; wait()
-- returns when all of them finished. The first error in a child cancels its siblings and is
-- raised by wait(), once every child has ended.
--
--   local g = async.group()
--   g:spawn(fetch, "a"); g:spawn(fetch, "b")
--   g:wait()          -- raises the first child's error, if any
local core = require("socket.core")

local async = core.async
local spawn, now = async.spawn, async.now
local error, setmetatable, xpcall = error, setmetatable, xpcall
local traceback = debug.traceback
local pack, unpack = table.pack, table.unpack

local M = {}

local Group = {}
Group.__index = Group

function M.group()
  return setmetatable({ children = {}, failed = false, err = nil, trace = nil }, Group)
end

-- group:spawn(fn, ...) -> task
-- The child's error does not go to the runtime's error report: the group keeps it for wait().
function Group:spawn(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'spawn' (function expected)", 2) end
  local group = self
  local task = spawn(function(...)
    local r = pack(xpcall(fn, function(e)
      return { err = e, trace = traceback(tostring(e), 2) }
    end, ...))
    if r[1] then return unpack(r, 2, r.n) end
    if not group.failed then
      group.failed = true
      group.err, group.trace = r[2].err, r[2].trace
      group:cancel("a sibling failed")
    end
  end, ...)
  self.children[#self.children + 1] = task
  return task
end

-- group:cancel([reason]): cancels every child still running.
function Group:cancel(reason)
  for _, t in ipairs(self.children) do t:cancel(reason) end
end

-- group:wait([timeout]) -> true | nil, "timeout" | nil, "cancelled"; raises the first error.
function Group:wait(timeout)
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
function Group:error() return self.err, self.trace end

return M
