-- Resume cost: 100 tasks each yield 10,000 times, so the scheduler resumes a task 1,000,000
-- times; every resume finds its task from the running coroutine. Part of bench/
-- (bench/callgrind.sh --resume counts the instructions per resume).
-- Usage: lua5.4 resume.lua [tasks] [yields]
local socket = require("socket")
local async = socket.async

local tasks = tonumber(arg[1]) or 100
local yields = tonumber(arg[2]) or 10000

async.run(function()
  for _ = 1, tasks do
    async.spawn(function()
      for _ = 1, yields do coroutine.yield() end
    end)
  end
end)
print(("resumes=%d"):format(tasks * yields + tasks + 1))
