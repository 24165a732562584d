-- support/workers_server.lua: the server process of workers_spec.lua.
--
--   lua5.4 workers_server.lua MODE WORKERS [reuseport]
--
-- MODE "http": socket.http.server.listen with workers; "/slow" answers after 2 s (and says
-- "slow started" on stdout when it begins), every other path answers
-- "worker INDEX/COUNT pid PID". MODE "plain": async.serve with workers, answering each line
-- with the same words. MODE "failing": every worker's init_worker raises (restart back-off).
-- The supervisor prints "port N" once bound and "supervisor returned ..." when it returns.
local socket = require("socket")
local server = require("socket.http.server")
local async = socket.async

local mode, workers, reuseport = arg[1], tonumber(arg[2]), arg[3] == "reuseport"

local function whoami()
  local index, count = async.worker()
  return ("worker %d/%d pid %d"):format(index, count, async._process.getpid())
end

local function announce(srv)
  print("port " .. select(2, srv:getsockname()))
  io.stdout:flush()
end

local ok
if mode == "http" then
  ok = server.listen{ port = 0, workers = workers, reuseport = reuseport, grace = 5,
    init = announce, handler = function(req, res)
      if req.path == "/slow" then
        print("slow started by " .. whoami())
        io.stdout:flush()
        async.sleep(2)
        return res:finish("slow done")
      end
      res:finish(whoami())
    end }
else
  local srv
  if reuseport then
    srv = assert(socket.tcp4())
    srv:setoption("reuseport", true)
    assert(srv:bind("127.0.0.1", 0))
  else
    srv = assert(socket.bind("127.0.0.1", 0))
  end
  ok = async.serve(srv, function(client)
    client:settimeout(5)
    if client:receive() then client:send(whoami() .. "\n") end
  end, { workers = workers, reuseport = reuseport, init = announce,
         init_worker = mode == "failing" and function() error("init_worker fails") end or nil })
end
print("supervisor returned " .. tostring(ok))
