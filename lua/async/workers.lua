-- async/workers.lua: worker processes across cores (docs/async.md, "Worker processes").
--
--   async.serve(server, handler, { workers = 0 })   -- outside async.run: one worker per core
--
-- The calling process becomes the supervisor: it keeps the listening socket (so its accept
-- queue outlives any worker), forks the workers before anything ran in its runtime, and runs no
-- loop of its own. Each worker renews its loop (uv_loop_fork, in _process.fork), runs
-- init_worker, then the ordinary serve() accept loop in async.run, and drains like
-- async.shutdown when the supervisor sends SIGTERM. The supervisor restarts a worker that dies
-- (with a back-off when it dies at once again and again), turns SIGTERM and SIGINT into a
-- graceful stop of the group, and SIGHUP into a reload: new workers start, and the old ones
-- drain once every new one serves. A worker dies with SIGKILL when the supervisor does.
local core = require("socket.core")
local args = require("socket.async.args")
local single = require("socket.async.serve")

local async = core.async
local P = async._process
local now, spawn, current = async.now, async.spawn, async.current
local error, ipairs, next, pairs, tostring, type, xpcall =
  error, ipairs, next, pairs, tostring, type, xpcall
local floor, min, huge = math.floor, math.min, math.huge
local format = string.format
local traceback = debug.traceback
local stderr = io.stderr
local exit = os.exit

local M = {}

-- Restart back-off: a worker that dies without having served for STABLE seconds is restarted
-- after 0 s the first time, then after BACKOFF_MIN seconds, doubling up to BACKOFF_MAX.
M.BACKOFF_MIN = 0.1
M.BACKOFF_MAX = 5
M.STABLE = 1
-- Seconds past `grace` after which a stop kills the workers still draining.
M.KILL_AFTER = 5

local index_, count_      -- this worker's index and the group's size; nil outside workers
local exiting_ = false

-- async.worker() -> index, count in a worker (index 1..count), nil outside workers.
function M.worker()
  return index_, count_
end

-- async.exiting() -> true in a worker that has been told to stop and is draining.
function M.exiting()
  return exiting_
end

local function log(...)
  stderr:write("socket.async: ", format(...), "\n")
end

-----------------------------------------------------------------------------------------------
-- In a worker
-----------------------------------------------------------------------------------------------

-- The worker's own SO_REUSEPORT listener, on the address the supervisor's socket is bound to.
local function own_listener(master, backlog)
  local ip, port, family = master:getsockname()
  local s = assert((family == "inet6" and core.tcp6 or core.tcp4)())
  s:setoption("reuseaddr", true)
  s:setoption("reuseport", true)
  local ok, err = s:bind(ip, port)
  if ok then ok, err = s:listen(backlog) end
  if not ok then
    s:close()
    error(format("reuseport listener on %s:%s: %s", tostring(ip), tostring(port),
      tostring(err)), 0)
  end
  return s
end

local function worker_run(G, index, count)
  local listener = G.server
  if G.reuseport then
    listener = own_listener(G.server, G.backlog)
    G.server:close()   -- this process's copy of the supervisor's placeholder
  end
  async.run(function()
    if G.init_worker then G.init_worker(index, count) end
    local stop = async.event()
    -- SIGTERM from the supervisor starts the drain; later ones are absorbed (a SIGTERM sent
    -- to the whole process group arrives twice) instead of ending the drain.
    local watcher = spawn(function()
      while async.signal("SIGTERM") do stop:set() end
    end)
    watcher:setname("worker signals")
    single.serve(listener, G.handler, { max = G.max, onshutdown = G.onshutdown })
    P.ready()
    stop:wait()
    exiting_ = true
    async.shutdown(G.grace)
    -- The worker's own tasks (timers, background loops) end with it.
    local me = current()
    for _, t in ipairs(async.tasks()) do
      if t ~= me then t:cancel("shutdown") end
    end
  end)
end

-- The body of a forked worker: never returns.
local function worker_main(G, index, count)
  index_, count_ = index, count
  local ok, err = xpcall(worker_run, traceback, G, index, count)
  if not ok then
    log("worker %d (pid %d) failed: %s", index, P.getpid(), tostring(err))
  end
  io.stdout:flush()
  stderr:flush()
  exit(ok and 0 or 1)
end

-----------------------------------------------------------------------------------------------
-- In the supervisor
-----------------------------------------------------------------------------------------------

local function start(sup, slot, index)
  local pid, err = P.fork()
  if pid == 0 then worker_main(sup.G, index, sup.count) end
  if not pid then
    log("cannot start worker %d: %s", index, tostring(err))
    slot.failures = slot.failures + 1
    slot.due = now() + M.BACKOFF_MAX
    return
  end
  local w = { pid = pid, index = index, started = now(), ready = false }
  slot.w = w
  sup.live[pid] = w
end

local function backoff(failures)
  if failures <= 1 then return 0 end
  return min(M.BACKOFF_MAX, M.BACKOFF_MIN * 2 ^ (failures - 2))
end

-- Reaps the workers that ended; schedules the restart of the current generation's.
local function reap(sup)
  for pid, w in pairs(sup.live) do
    local how, code = P.reap(pid)
    if how or code == "unknown" then
      sup.live[pid] = nil
      sup.drain[pid] = nil
      local slot = sup.slots[w.index]
      if slot.w == w then
        slot.w = nil
        if not sup.stopping then
          local t = now()
          if w.ready and t - w.ready >= M.STABLE then
            slot.failures = 1
          else
            slot.failures = slot.failures + 1
          end
          slot.due = t + backoff(slot.failures)
          log("worker %d (pid %d) ended (%s %s); restarting%s", w.index, pid, tostring(how),
            tostring(code), slot.due > t and format(" in %.1f s", slot.due - t) or "")
        end
      end
    end
  end
end

local function signal_all(sup, name)
  for pid in pairs(sup.live) do P.kill(pid, name) end
end

local function stop(sup)
  if sup.stopping then  -- a second SIGTERM or SIGINT: end at once
    signal_all(sup, "SIGKILL")
    return
  end
  sup.stopping = true
  -- New connections are refused once the workers have closed their copies as well.
  sup.G.server:close()
  signal_all(sup, "SIGTERM")
  sup.deadline = now() + sup.G.grace + M.KILL_AFTER
end

-- SIGHUP: a new generation of workers; the current ones drain once every new one serves.
local function reload(sup)
  if sup.stopping then return end
  if sup.G.reload then
    local ok, err = xpcall(sup.G.reload, traceback)
    if not ok then
      log("reload failed, the workers are kept: %s", tostring(err))
      return
    end
  end
  for _, slot in ipairs(sup.slots) do
    if slot.w then sup.drain[slot.w.pid] = true end
    slot.w, slot.failures, slot.due = nil, 0, 0
  end
end

-- Once every slot has a worker that serves, the superseded ones are told to drain.
local function reloaded(sup)
  if next(sup.drain) == nil then return end
  for _, slot in ipairs(sup.slots) do
    if not (slot.w and slot.w.ready) then return end
  end
  for pid in pairs(sup.drain) do
    if sup.live[pid] then P.kill(pid, "SIGTERM") end
  end
  sup.drain = {}
end

local function supervise(sup)
  while true do
    local t = now()
    local wait = 1  -- reap at least once a second, even if a SIGCHLD record was lost
    if sup.stopping then
      if next(sup.live) == nil then return end
      if t >= sup.deadline then
        signal_all(sup, "SIGKILL")
        sup.deadline = t + 1
      end
      wait = min(wait, sup.deadline - t)
    else
      for index, slot in ipairs(sup.slots) do
        if not slot.w then
          if slot.due <= t then start(sup, slot, index) else wait = min(wait, slot.due - t) end
        end
      end
    end
    local what, v = P.wait(wait > 0 and wait or 0)
    if what == "signal" then
      if v == "SIGTERM" or v == "SIGINT" then
        stop(sup)
      elseif v == "SIGHUP" then
        reload(sup)
      end
    elseif what == "ready" then
      local w = sup.live[v]
      if w then w.ready = now() end
      reloaded(sup)
    end
    reap(sup)
  end
end

-- Kills and reaps every worker left (after an error in the supervisor).
local function kill_all(sup)
  signal_all(sup, "SIGKILL")
  local t0 = now()
  while next(sup.live) ~= nil and now() - t0 < 5 do
    for pid in pairs(sup.live) do
      local how, code = P.reap(pid)
      if how or code == "unknown" then sup.live[pid] = nil end
    end
    if next(sup.live) ~= nil then async.sleep(0.01) end
  end
end

local KNOWN = { workers = true, reuseport = true, init = true, init_worker = true, reload = true,
                grace = true, backlog = true, max = true, onshutdown = true }

local function opt_func(options, name)
  local f = options[name]
  if f ~= nil and type(f) ~= "function" then
    error("bad argument #3 to 'serve' (" .. name .. " must be a function)", 3)
  end
  return f
end

-- serve(server, handler, options) with options.workers: see the header. Returns true once every
-- worker has ended after a SIGTERM or SIGINT. (Called by async.serve as a tail call, so that
-- error level 2 is serve's caller.)
function M.serve(server, handler, options)
  for k in pairs(options) do
    if not KNOWN[k] then
      error("bad argument #3 to 'serve' (unknown option '" .. tostring(k) .. "')", 2)
    end
  end
  local n = options.workers
  if type(n) ~= "number" or n < 0 or n ~= floor(n) or n == huge then
    error("bad argument #3 to 'serve' (workers must be an integer >= 0)", 2)
  end
  local reuseport = options.reuseport
  if reuseport ~= nil and type(reuseport) ~= "boolean" then
    error("bad argument #3 to 'serve' (reuseport must be a boolean)", 2)
  end
  local grace = options.grace
  if grace ~= nil and (type(grace) ~= "number" or grace ~= grace or grace < 0) then
    error("bad argument #3 to 'serve' (grace must be a number >= 0)", 2)
  end
  local backlog = options.backlog
  if backlog ~= nil and (type(backlog) ~= "number" or backlog ~= backlog or backlog < 1) then
    error("bad argument #3 to 'serve' (backlog must be a number >= 1)", 2)
  end
  local max = options.max
  if max ~= nil and (type(max) ~= "number" or max < 1) then
    error("bad argument #3 to 'serve' (max must be a number >= 1)", 2)
  end
  args.func(handler, 2, "serve")
  local G = { server = server, handler = handler, reuseport = reuseport or false,
              grace = grace or 5, backlog = floor(backlog or 1024), max = max,
              init = opt_func(options, "init"), init_worker = opt_func(options, "init_worker"),
              reload = opt_func(options, "reload"), onshutdown = opt_func(options, "onshutdown") }
  if G.reuseport then
    local class = type(server) == "userdata" and server.class
    if class ~= "tcp{master}" or not server:getsockname()
        or server:getoption("reuseport") ~= true then
      error("bad argument #1 to 'serve' (with reuseport: a tcp{master} bound with option "
        .. "reuseport set expected, got " .. args.typename(server) .. ")", 2)
    end
  end
  if index_ then error("serve: workers cannot start workers", 2) end
  if async.intask() or current() then
    error("serve: with workers, serve must be called outside socket.async.run (the "
      .. "supervising process runs no loop)", 2)
  end
  local forkable, why = P.forkable()
  if not forkable then error("serve: cannot start workers: " .. why, 2) end
  local count = n == 0 and P.ncpu() or n
  if G.init then G.init(server) end
  local sup = { G = G, count = count, slots = {}, live = {}, drain = {}, stopping = false }
  for i = 1, count do sup.slots[i] = { w = nil, failures = 0, due = 0 } end
  P.supervise(true)
  local ok, err = xpcall(supervise, traceback, sup)
  if next(sup.live) ~= nil then kill_all(sup) end
  P.supervise(false)
  server:close()
  if not ok then error(err, 0) end
  return true
end

return M
