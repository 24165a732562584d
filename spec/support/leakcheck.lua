-- support/leakcheck.lua: busted helper (run_spec.sh passes it with --helper) that checks, after
-- every spec file, that the runtime holds nothing any more: no live task, descriptor watcher,
-- thread-pool job, armed deadline or active libuv handle. A lookup orphaned by the file's last
-- case gets a few seconds to finish and free itself.
local busted = require("busted")
local socket = require("socket")

local async = socket.async
local fields = { "tasks", "watchers", "jobs", "timers", "handles" }

local function leftovers()
  collectgarbage()
  collectgarbage()
  local d = async._debug()
  local left = {}
  for _, k in ipairs(fields) do
    if d[k] ~= 0 then left[#left + 1] = k .. " = " .. tostring(d[k]) end
  end
  return left, d
end

busted.subscribe({ "file", "end" }, function()
  local left, d = leftovers()
  local deadline = socket.gettime() + 5
  while #left > 0 and d.jobs > 0 and socket.gettime() < deadline do
    socket.sleep(0.02)
    left, d = leftovers()
  end
  if #left > 0 then
    error("the runtime is not clean after this file: " .. table.concat(left, ", "), 0)
  end
end)
