-- worker_server.lua: an HTTP server on every core. socket.http.server runs in worker processes
-- that the starting process supervises: it restarts a worker that dies, stops them gracefully
-- on SIGTERM or SIGINT and reloads them on SIGHUP (new workers start, the old ones drain).
--
--   lua5.4 examples/worker_server.lua [port [workers]]   serve (workers 0: one per CPU)
--   lua5.4 examples/worker_server.lua --check            start itself, reload it, stop it
local socket = require("socket")
local http = require("socket.http")
local server = require("socket.http.server")
local async = socket.async

local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local n = f:read("n")
  f:close()
  return n
end

local function serve(port, workers)
  local hits                                     -- each worker counts its own requests
  local ok = server.listen{ host = "127.0.0.1", port = port, workers = workers,
    init = function(srv)                         -- once, in the supervisor, before the forks
      print("port " .. select(2, srv:getsockname()))
      io.stdout:flush()
    end,
    init_worker = function() hits = 0 end,       -- in each worker, before it accepts
    handler = function(_, res)
      hits = hits + 1
      local index, count = async.worker()
      res:header("Content-Type", "text/plain")
      res:finish(("worker %d of %d, pid %d, request %d\n"):format(index, count, pid(), hits))
    end }
  print("stopped: " .. tostring(ok))             -- every worker has left
end

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local text = f:read("a")
  f:close()
  return text
end

local function wait_for(f)
  for _ = 1, 500 do
    local v = f()
    if v then return v end
    socket.sleep(0.02)
  end
  error("timed out")
end

-- Asks until both workers have answered; returns their pids by index.
local function both(port, old)
  local pids, n = {}, 0
  for _ = 1, 400 do
    local body = assert(http.request("http://127.0.0.1:" .. port .. "/"))
    local index, p = body:match("worker (%d) of 2, pid (%d+)")
    if not (old and old[p]) and not pids[index] then
      pids[index], pids[p], n = p, true, n + 1
      if n == 2 then return pids end
    end
  end
  error("both workers did not answer")
end

local function check()
  local out = os.tmpname()
  local p = assert(io.popen(("%s %s 0 2 > %s 2>&1 & echo $!"):format(arg[-1], arg[0], out)))
  local supervisor = p:read("n")
  p:close()
  local ok, err = pcall(function()
    local port = wait_for(function() return read(out):match("port (%d+)") end)
    local first = both(port)
    print("both workers answer")
    os.execute("kill -HUP " .. supervisor)
    both(port, first)
    print("after SIGHUP, two new workers answer")
    os.execute("kill -TERM " .. supervisor)
    print(wait_for(function() return read(out):match("stopped: %a+") end))
  end)
  if not ok then os.execute("kill -KILL " .. supervisor) end  -- its workers die with it
  os.remove(out)
  assert(ok, err)
end

if arg[1] == "--check" then
  check()
else
  serve(tonumber(arg[1]) or 8080, tonumber(arg[2]) or 0)
end
