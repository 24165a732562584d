-- async/waitlist.lua: a FIFO list of parked tasks, shared by the synchronisation objects.
-- A task that stops waiting (timeout, cancellation) is removed in O(1) by leaving a hole.
local M = {}
M.__index = M

function M.new()
  return setmetatable({ first = 1, last = 0, pos = {} }, M)
end

function M:push(task)
  local last = self.last + 1
  self.last = last
  self[last] = task
  self.pos[task] = last
end

function M:remove(task)
  local i = self.pos[task]
  if i then
    self[i] = false
    self.pos[task] = nil
  end
end

-- The first task still waiting, removed from the list; nil if none.
function M:pop()
  while self.first <= self.last do
    local i = self.first
    local task = self[i]
    self[i] = nil
    self.first = i + 1
    if task then
      self.pos[task] = nil
      return task
    end
  end
  self.first, self.last = 1, 0
  return nil
end

function M:empty()
  return next(self.pos) == nil
end

return M
