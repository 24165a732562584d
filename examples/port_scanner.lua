-- port_scanner.lua: checks which TCP ports of a host accept connections, with at most `limit`
-- connection attempts under way at once (a semaphore) and a connect timeout per port.
--
--   lua5.4 examples/port_scanner.lua host first-last [limit] [timeout]
--   lua5.4 examples/port_scanner.lua --check       open a few ports on loopback and find them
local socket = require("socket")
local async = socket.async

local function scan(host, first, last, limit, timeout)
  local open = {}
  local sem = async.semaphore(limit)
  local g = async.group()
  for port = first, last do
    g:spawn(function()
      sem:acquire()
      local c = socket.tcp()
      c:settimeout(timeout)
      if c:connect(host, port) then open[#open + 1] = port end
      c:close()
      sem:release()
    end)
  end
  g:wait()
  table.sort(open)
  return open
end

if arg[1] == "--check" then
  local ok = async.run(function()
    -- a few listeners among a range of closed ports
    local servers, want = {}, {}
    for _ = 1, 3 do
      local s = assert(socket.bind("127.0.0.1", 0))
      servers[#servers + 1] = s
      want[#want + 1] = select(2, s:getsockname())
    end
    table.sort(want)
    local first, last = want[1] - 50, want[#want] + 50
    local t0 = socket.gettime()
    local found = scan("127.0.0.1", first, last, 20, 1)
    print(("scanned %d ports in %.2f s, open: %s"):format(last - first + 1,
      socket.gettime() - t0, table.concat(found, " ")))
    for _, s in ipairs(servers) do s:close() end
    for _, p in ipairs(want) do
      local seen = false
      for _, f in ipairs(found) do if f == p then seen = true end end
      if not seen then return false end
    end
    return true
  end)
  os.exit(ok and 0 or 1)
end

local host, range = arg[1], arg[2]
local first, last = (range or ""):match("^(%d+)%-(%d+)$")
if not host or not first then
  io.stderr:write("usage: port_scanner.lua host first-last [limit] [timeout]\n")
  os.exit(2)
end
local found = async.run(scan, host, tonumber(first), tonumber(last), tonumber(arg[3]) or 100,
  tonumber(arg[4]) or 1)
print("open: " .. table.concat(found, " "))
