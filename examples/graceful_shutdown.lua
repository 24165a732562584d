-- graceful_shutdown.lua: a server that stops cleanly on SIGINT or SIGTERM. It stops accepting,
-- lets the requests under way finish within a grace period, then cancels what is left (whose
-- cleanup still runs, since cancellation is a return value, not an exception).
--
--   lua5.4 examples/graceful_shutdown.lua [port]   serve until SIGINT/SIGTERM
--   lua5.4 examples/graceful_shutdown.lua --check  start clients, send itself SIGTERM, verify
local socket = require("socket")
local async = socket.async

local check = arg[1] == "--check"

-- A handler that works for a while per request: "work N" takes N tenths of a second.
local function handle(client)
  client:settimeout(30)
  while true do
    local line = client:receive()
    if not line then return end
    local tenths = tonumber(line:match("^work (%d+)$")) or 0
    local _, err = async.sleep(tenths / 10)
    if err then  -- cancelled by the shutdown: say so, then let the socket be closed
      client:send("interrupted\n")
      return
    end
    client:send("done " .. tenths .. "\n")
  end
end

local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local n = f:read("n")
  f:close()
  return n
end

local result = async.run(function()
  local server = assert(socket.bind("127.0.0.1", tonumber(arg[1]) or 0))
  local _, port = server:getsockname()
  async.serve(server, handle)
  local outcome = {}
  if check then
    -- a quick request (finishes within the grace period) and a slow one (cut off)
    for _, tenths in ipairs({ 2, 50 }) do
      async.spawn(function()
        local c = assert(socket.connect("127.0.0.1", port))
        c:settimeout(10)
        c:send("work " .. tenths .. "\n")
        outcome[tenths] = c:receive()
        c:close()
      end)
    end
    async.after(0.1, function() os.execute("kill -TERM " .. pid()) end)
  else
    print("serving on port " .. port .. " (pid " .. pid() .. "); SIGINT or SIGTERM stops it")
  end
  local signals = async.group()
  local got
  for _, name in ipairs({ "SIGINT", "SIGTERM" }) do
    signals:spawn(function()
      local sig = async.signal(name)
      if sig and not got then
        got = sig
        signals:cancel()
      end
    end)
  end
  signals:wait()
  local cut = async.shutdown(1)
  print(("%s: stopped accepting; %d request(s) cut off after the grace period"):format(got, cut))
  async.sleep(0.1)
  if check then
    print("quick request: " .. tostring(outcome[2]) .. ", slow request: " .. tostring(outcome[50]))
    return outcome[2] == "done 2" and outcome[50] == "interrupted"
  end
  return true
end)
os.exit(result and 0 or 1)
