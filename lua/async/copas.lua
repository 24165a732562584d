-- async/copas.lua: copas 4 compatibility for uvsocket, so that programs written for copas run
-- unchanged on the task runtime (`require "socket.async.copas"`, or `require "copas"` through
-- the alias lua/copas.lua). Layer: Lua, on socket.async only; it adds nothing to the runtime.
--
-- How copas's model maps onto uvsocket (docs/async.md, "Running copas applications"):
--   * a copas thread is a coroutine of its own, driven by one runtime task (`drive`). Its
--     socket waits pass up through the runtime's coroutine.resume to the scheduler, so raw
--     uvsocket sockets used inside it yield; copas's own functions (pause, receive, ...) are
--     thin layers over the same calls. addthread returns the coroutine, as copas does.
--   * copas.loop runs the scheduler with a supervisor as its main task. The supervisor ends the
--     loop when copas would ("finished": no server, every thread either done or asleep with no
--     timer to wake it), calling copas.exit once first so that waitforexit works.
--   * dropping a thread (removethread, cancelall, the end of a loop) cancels its task; the first
--     copas function it runs afterwards yields a private marker to the driver, which then stops
--     resuming it, as copas never resumes a removed thread again.
--   * copas.step runs one round of the scheduler and returns.
local socket = require("socket")
local async = require("socket.async")
local waitlist = require("socket.async.waitlist")
local luasec = require("socket.luasec")

local spawn, current, intask, now = async.spawn, async.current, async.intask, async.now
local run, sleep, park, unpark_task = async.run, async.sleep, async._wait, async._wake
local resume = async._coroutine.resume
local select_sockets, gettime = socket.select, socket.gettime
local cocreate, corunning, costatus = coroutine.create, coroutine.running, coroutine.status
local coyield, coclose = coroutine.yield, coroutine.close
local error, pcall, xpcall, type, tostring = error, pcall, xpcall, type, tostring
local tonumber, collectgarbage, assert = tonumber, collectgarbage, assert
local setmetatable, getmetatable, rawget, rawset = setmetatable, getmetatable, rawget, rawset
local next, pairs, ipairs = next, pairs, ipairs
local pack, unpack, concat = table.pack, table.unpack, table.concat
local huge, max = math.huge, math.max
local traceback = debug.traceback
local format = string.format

-- The default error report looks `print` up when it runs (not when this file loads), so that a
-- program that replaces the global print sees the report, as it would with copas.
local G = _G

local M = {}

-- Raises LuaSocket-style "bad argument" errors for the function that called the caller.
local function argerror(n, fname, what)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, what), 3)
end

M._VERSION = "Copas 4.11.0 (uvsocket compatibility)"
M._DESCRIPTION = "copas 4 API on the uvsocket task runtime"
M.autoclose = true   -- close accepted TCP clients when their handler ends
M.running = false    -- true while copas.loop runs
M.gettime = gettime  -- wall-clock seconds, as socket.gettime

local weak_k = { __mode = "k" }

-----------------------------------------------------------------------------------------------
-- Names of coroutines and sockets (default: tostring of the object)
-----------------------------------------------------------------------------------------------
local names = setmetatable({}, weak_k)

local function name_of(obj)
  return names[obj] or tostring(obj)
end

-----------------------------------------------------------------------------------------------
-- Thread records. One per copas thread, reachable from its coroutine and from its task:
--   co, task    the coroutine running the user's function and the task driving it
--   skt         the socket the thread serves (accept handlers), given to error handlers
--   autoclose   the socket to close when the thread ends
--   sleeping    true inside pause/pauseforever/sleep: copas.wakeup may end the wait
--   lethargic   true while it waits with nothing but another thread to wake it
--   dropped     removed: it is never resumed past its next copas call
-----------------------------------------------------------------------------------------------
local threads = setmetatable({}, weak_k)   -- coroutine -> record
local by_task = setmetatable({}, weak_k)   -- task -> record
local live, lethargic = 0, 0               -- threads alive; of those, lethargic
local nservers, ntimeouts = 0, 0           -- accepting servers; armed copas.timeout timers
local supervisor, stepper                  -- tasks parked until something changes
local activity = 0                         -- bumped whenever a copas thread makes progress

local DROP = setmetatable({}, { __tostring = function() return "copas thread dropped" end })
local TURN = {}                            -- yielded to the driver: run me after the others

-- The record of the copas thread the caller runs in (also from a coroutine it resumed).
local function me()
  local t = current()
  return t and by_task[t]
end

-- The coroutine copas would call "running": the copas thread's, or the caller's own.
local function self_co()
  local rec = me()
  return rec and rec.co or corunning()
end

local function changed()
  if supervisor then unpark_task(supervisor) end
  if stepper then unpark_task(stepper) end
end

local function touch()
  activity = activity + 1
  if stepper then unpark_task(stepper) end
end

local function set_lethargic(rec, on)
  if rec.lethargic ~= on then
    rec.lethargic = on
    lethargic = lethargic + (on and 1 or -1)
    if on then changed() end
  end
end

-- Leaves a dropped thread: straight to its driver when the thread itself runs, otherwise (in a
-- coroutine the thread resumed) by unwinding that coroutine with the marker as error.
local function drop(rec)
  if corunning() == rec.co then coyield(DROP) end
  error(DROP, 0)
end

-- Lets the other tasks run once.
local function turn()
  local rec = me()
  if rec and corunning() == rec.co then
    coyield(TURN)
  elseif intask() then
    sleep(0)
  end
  if rec and rec.dropped then drop(rec) end
end

-- Parks the caller until it is woken (wake_task), `timeout` seconds pass (nil: no limit) or its
-- task is cancelled. `sleeping`: copas.wakeup may end the wait. Returns like async._wait.
local function wait_here(timeout, sleeping)
  local rec = me()
  if rec then
    if rec.dropped then drop(rec) end
    rec.sleeping = sleeping or false
    if timeout == nil then set_lethargic(rec, true) end
  end
  local ok, err = park(timeout)
  if rec then
    rec.sleeping = false
    set_lethargic(rec, false)
    if rec.dropped then drop(rec) end
    touch()
  end
  return ok, err
end

-- Wakes a task parked in wait_here; returns whether it was parked.
local function wake_task(task)
  local rec = by_task[task]
  if rec then set_lethargic(rec, false) end
  return unpark_task(task)
end

-- A timeout argument as wait_here takes it: nil for none (nil, negative or math.huge).
local function finite(t)
  if t == nil or t == huge or t < 0 then return nil end
  return t
end

-----------------------------------------------------------------------------------------------
-- Error handlers
-----------------------------------------------------------------------------------------------
local errhandlers = setmetatable({}, weak_k)  -- coroutine -> handler

-- copas.gettraceback([msg], [co], [skt]) -> string
function M.gettraceback(msg, co, skt)
  local where = format("(coroutine: %s, socket: %s)", co == nil and "nil" or M.getthreadname(co),
    skt == nil and "nil" or M.getsocketname(skt))
  local text = (msg == nil or tostring(msg) == "") and where or (tostring(msg) .. " " .. where)
  if type(co) == "thread" then return traceback(co, text) end
  return traceback(text, 2)
end

local function report_default(msg, co, skt)
  G.print(M.gettraceback(msg, co, skt))
end
local default_handler = report_default

-- copas.seterrorhandler([fn], [default])
function M.seterrorhandler(fn, default)
  if fn ~= nil and type(fn) ~= "function" then
    argerror(1, "seterrorhandler", "function or nil expected")
  end
  if default then
    if fn == nil then argerror(1, "seterrorhandler", "a default needs a function") end
    default_handler = fn
  else
    errhandlers[self_co()] = fn
  end
end
M.setErrorHandler = M.seterrorhandler

-- copas.geterrorhandler([co]) -> the handler used for co's errors
function M.geterrorhandler(co)
  return errhandlers[co or self_co()] or default_handler
end

local function report(msg, co, skt)
  local ok, err = pcall(errhandlers[co] or default_handler, msg, co, skt)
  if not ok then G.print("Failed executing error handler: " .. tostring(err)) end
end

-- Per-coroutine: return LuaSocket's own timeout errors instead of "timeout".
local socket_errors = setmetatable({}, weak_k)

-- copas.usesockettimeouterrors([bool])
function M.usesockettimeouterrors(on)
  socket_errors[self_co()] = not not on
end
M.useSocketTimeoutErrors = M.usesockettimeouterrors

-----------------------------------------------------------------------------------------------
-- Threads
-----------------------------------------------------------------------------------------------
local USER_YIELD = "coroutine.yield was called without a resume first, " ..
  "user-code cannot yield to Copas"

local debug_log  -- a logger while copas.debug is started

-- The body of the task behind each copas thread.
local function drive(rec, ...)
  local co = rec.co
  local ok, res, started = true, nil, false
  if not rec.dropped then  -- a thread removed before it first ran never runs
    if debug_log then debug_log("starting '", name_of(co), "'") end
    started = true
    ok, res = resume(co, ...)
    while ok and res == TURN and costatus(co) == "suspended" do
      coyield()  -- to the scheduler: this task runs again after the others
      if rec.dropped then break end
      ok, res = resume(co)
    end
  end
  by_task[rec.task] = nil
  threads[co] = nil
  if costatus(co) == "suspended" then
    if started and ok and res ~= DROP and res ~= TURN then
      ok, res = false, USER_YIELD
    end
    coclose(co)  -- a dropped thread is never resumed: run its pending to-be-closed variables
  end
  if debug_log then debug_log("exiting '", name_of(co), "'") end
  if not ok and res ~= DROP then report(res, co, rec.skt) end
  errhandlers[co] = nil
  if rec.autoclose then rec.autoclose:close() end
  if rec.lethargic then set_lethargic(rec, false) end
  live = live - 1
  touch()
  changed()
end

-- Starts a copas thread running fn(...): a coroutine and the task that drives it.
local function start_thread(name, fn, ...)
  if type(fn) ~= "function" then error("bad argument to 'addthread' (function expected)", 3) end
  local co = cocreate(fn)
  if name then names[co] = name end
  local rec = { co = co, lethargic = false, sleeping = false, dropped = false }
  threads[co] = rec
  live = live + 1
  local task = spawn(drive, rec, ...)
  task:setname(name_of(co))
  rec.task = task
  by_task[task] = rec
  return co
end

-- copas.addthread(fn, ...) -> coroutine
function M.addthread(fn, ...) return start_thread(nil, fn, ...) end

-- copas.addnamedthread(name, fn, ...) -> coroutine (the older order fn, name works too)
function M.addnamedthread(name, fn, ...)
  if type(name) == "function" and type(fn) == "string" then return start_thread(fn, name, ...) end
  return start_thread(name, fn, ...)
end

local function drop_thread(rec)
  if rec.dropped then return end
  rec.dropped = true
  if rec.task ~= current() then rec.task:cancel("copas: thread removed") end
  -- the running thread leaves at its next copas call
end

-- copas.removethread(co): the thread is never resumed past its next copas call.
function M.removethread(co)
  local rec = threads[co]
  if rec then drop_thread(rec) end
end

-----------------------------------------------------------------------------------------------
-- Sleeping and waking
-----------------------------------------------------------------------------------------------

-- copas.pause([seconds]) -> seconds slept
function M.pause(seconds)
  local t0 = now()
  if (seconds or 0) <= 0 then  -- zero or less: just let the others run
    turn()
    touch()
  else
    wait_here(seconds, true)
  end
  return now() - t0
end

-- copas.pauseforever() -> seconds slept (until copas.wakeup)
function M.pauseforever()
  local t0 = now()
  wait_here(nil, true)
  return now() - t0
end

-- copas.sleep([seconds]): deprecated in copas; a negative time sleeps until woken.
function M.sleep(seconds)
  seconds = seconds or 0
  if seconds < 0 then M.pauseforever() else M.pause(seconds) end
end

-- copas.wakeup(co): ends co's pause, pauseforever or sleep now.
function M.wakeup(co)
  local rec = threads[co]
  if rec and rec.sleeping then
    rec.sleeping = false
    wake_task(rec.task)
  end
end

-----------------------------------------------------------------------------------------------
-- copas.timeout(delay, callback): one timer per coroutine; callback(co) runs in a task of its
-- own, named "copas_core_timer" in error reports; errors go to the default error handler.
-----------------------------------------------------------------------------------------------
local timeouts = setmetatable({}, weak_k)  -- coroutine -> timer task

local function disarm(co)
  local t = timeouts[co]
  if t then
    timeouts[co] = nil
    ntimeouts = ntimeouts - 1
    if t ~= current() then t:cancel() end
    changed()
  end
end

function M.timeout(delay, callback)
  local co = self_co()
  disarm(co)
  if type(delay) ~= "number" or delay < 0 then
    argerror(1, "timeout", "a delay >= 0 expected, got " .. tostring(delay))
  end
  if delay == 0 or delay == huge then return true end
  local timer
  timer = spawn(function()
    local _, err = sleep(delay)
    if err or timeouts[co] ~= timer then return end
    local self = corunning()
    names[self] = "copas_core_timer"
    xpcall(callback, function(e) report(e, self, nil) end, co)
    disarm(co)
    touch()
  end)
  timer:setname("copas_core_timer")
  timeouts[co] = timer
  ntimeouts = ntimeouts + 1
  return true
end

-- copas.gettimeouts() -> the number of armed copas.timeout timers
function M.gettimeouts() return ntimeouts end

-----------------------------------------------------------------------------------------------
-- Socket timeouts, per socket and direction (nil: none)
-----------------------------------------------------------------------------------------------
local tmo_connect = setmetatable({}, weak_k)
local tmo_send = setmetatable({}, weak_k)
local tmo_read = setmetatable({}, weak_k)

local function check_tmo(v, what)
  if v ~= nil and type(v) ~= "number" then
    return nil, what .. " timeout must be 'nil' or a number"
  end
  return true
end

-- copas.settimeouts(skt, connect, send, read): nil leaves one unchanged, negative removes it.
function M.settimeouts(skt, connect, send, read)
  for _, c in ipairs({ { connect, "connect" }, { send, "send" }, { read, "read" } }) do
    local ok, err = check_tmo(c[1], c[2])
    if not ok then return nil, err end
  end
  if connect then tmo_connect[skt] = connect >= 0 and connect or nil end
  if send then tmo_send[skt] = send >= 0 and send or nil end
  if read then tmo_read[skt] = read >= 0 and read or nil end
  return true
end

-- copas.settimeout(skt, [t]): all three; nil or negative: no timeout.
function M.settimeout(skt, t)
  t = t or -1
  if type(t) ~= "number" then return nil, "timeout must be 'nil' or a number" end
  return M.settimeouts(skt, t, t, t)
end

-- As copas does, a timeout of 0 on a socket operation means "no timeout" (a receive through a
-- wrapped socket whose read timeout is 0 returns as soon as any data arrived instead).
local function limit(t)
  if t == nil or t == 0 or t == huge then return nil end
  return t
end

local function timeout_error(err)
  if socket_errors[self_co()] then return err end
  return "timeout"
end

-----------------------------------------------------------------------------------------------
-- Socket I/O. uvsocket's own sockets yield by themselves: each function sets the socket's
-- LuaSocket timeout to the copas one and makes the call. Other socket objects (LuaSec's) are
-- driven non-blocking, waiting for readiness with socket.select between attempts.
-----------------------------------------------------------------------------------------------
local secure  -- defined with the wrapped sockets
local Stream = { __index = {} }  -- metatables of wrapped sockets (filled below)
local Dgram = { __index = {} }

local function wrapped(obj)
  local mt = getmetatable(obj)
  return mt == Stream or mt == Dgram
end

-- The socket itself, for a socket or a wrapped one.
local function raw(skt)
  if wrapped(skt) then return skt.socket end
  return skt
end

local FAIR_OPS = 32  -- yield to the others after this many socket calls, waiting or not
local ops = 0

-- uvsocket's sockets, its TLS sockets and LuaSec's connections (which the bridge of
-- socket/luasec.lua makes yield) wait by themselves: "stream". Anything else is driven
-- non-blocking ("foreign").
local function kind(skt)
  local s = tostring(skt)
  if s:find("^tcp") or s:find("^unixstream") or s:find("^tls{") then return "stream" end
  if s:find("^SSL") and luasec.isconnection(skt) then return "stream" end
  if s:find("^udp") or s:find("^unixdgram") then return "dgram" end
  return "foreign"
end

-- After every socket call: leave if dropped meanwhile, note progress, let others run now and
-- then (a socket that always has data would otherwise keep its reader running).
local function io_done()
  local rec = me()
  if rec and rec.dropped then drop(rec) end
  touch()
  ops = ops + 1
  if ops >= FAIR_OPS then
    ops = 0
    turn()
  end
end

local soft = { timeout = true, wantread = true, wantwrite = true }

-- Repeats `attempt` on a non-blocking foreign socket until it completes, fails, or `lim`
-- seconds pass; `dir` ("r"/"w") is the readiness to wait for after a plain "timeout".
-- attempt() returns its results and, as extra value, true when the call is complete even
-- though it reports "timeout" (receivepartial).
local function drive_foreign(skt, lim, dir, attempt)
  local deadline = lim and now() + lim
  skt:settimeout(0)
  while true do
    local r = pack(attempt())
    if r[1] or not soft[r[2]] or r.n >= 4 and r[4] then
      io_done()
      return r[1], r[2], r[3]
    end
    local left = deadline and deadline - now()
    if left and left <= 0 then
      io_done()
      return nil, timeout_error(r[2]), r[3]
    end
    local want_w = r[2] == "wantwrite" or (r[2] == "timeout" and dir == "w")
    local one = { skt }
    select_sockets(not want_w and one or nil, want_w and one or nil, left)
    local rec = me()
    if rec and rec.dropped then drop(rec) end
  end
end

-- copas.receive(skt, [pattern], [prefix]) -> LuaSocket's receive results
function M.receive(skt, pattern, prefix)
  skt = raw(skt)
  pattern = pattern or "*l"
  local k = kind(skt)
  if k == "foreign" then
    return drive_foreign(skt, limit(tmo_read[skt]), "r", function()
      local data, err, part = skt:receive(pattern, prefix)
      prefix = part
      return data, err, part
    end)
  end
  skt:settimeout(limit(tmo_read[skt]))
  local data, err, part
  if k == "dgram" then
    data, err = skt:receive(pattern ~= "*l" and pattern or nil)
  else
    data, err, part = skt:receive(pattern, prefix)
  end
  io_done()
  if not data and err == "timeout" then return nil, timeout_error(err), part end
  return data, err, part
end

-- copas.receivepartial(skt, [pattern], [prefix]): returns as soon as some data arrived.
function M.receivepartial(skt, pattern, prefix)
  skt = raw(skt)
  pattern = pattern or "*l"
  local had = prefix and #prefix or 0
  local lim = limit(tmo_read[skt])
  if kind(skt) ~= "stream" then
    return drive_foreign(skt, lim, "r", function()
      local data, err, part = skt:receive(pattern, prefix)
      prefix = part
      return data, err, part, type(part) == "string" and #part > had
    end)
  end
  local deadline = lim and now() + lim
  skt:settimeout(0)
  while true do
    local data, err, part = skt:receive(pattern, prefix)
    if data or not soft[err] or (part and #part > had) then
      io_done()
      return data, err, part
    end
    prefix = part
    local left = deadline and deadline - now()
    if left and left <= 0 then
      io_done()
      return nil, timeout_error(err), part
    end
    local _, _, serr = select_sockets({ skt }, nil, left)
    local rec = me()
    if rec and rec.dropped then drop(rec) end
    if serr == "cancelled" then return nil, "cancelled", part end
  end
end
M.receivePartial = M.receivepartial

-- copas.receivefrom(skt, [size]) -> datagram, ip, port
function M.receivefrom(skt, size)
  skt = raw(skt)
  size = size or socket._DATAGRAMSIZE
  if kind(skt) == "foreign" then
    local function attempt() return skt:receivefrom(size) end
    return drive_foreign(skt, limit(tmo_read[skt]), "r", attempt)
  end
  skt:settimeout(limit(tmo_read[skt]))
  local data, ip, port = skt:receivefrom(size)
  io_done()
  if not data and ip == "timeout" then return nil, timeout_error(ip), port end
  return data, ip, port
end

-- copas.send(skt, data, [i], [j]) -> LuaSocket's send results (UDP: the datagram is sent whole)
function M.send(skt, data, i, j)
  skt = raw(skt)
  local k = kind(skt)
  if k == "foreign" then
    local last = (i or 1) - 1
    return drive_foreign(skt, limit(tmo_send[skt]), "w", function()
      local sent, err, partial = skt:send(data, last + 1, j)
      last = sent or partial or last
      return sent, err, partial
    end)
  end
  skt:settimeout(limit(tmo_send[skt]))
  local sent, err, last
  if k == "dgram" then
    sent, err = skt:send(data)
  else
    sent, err, last = skt:send(data, i, j)
  end
  io_done()
  if not sent and err == "timeout" then return nil, timeout_error(err), last end
  return sent, err, last
end

-- copas.sendto(skt, data, ip, port): UDP sends do not wait.
function M.sendto(skt, data, ip, port)
  return skt:sendto(data, ip, port)
end

-- copas.connect(skt, host, port) -> 1 | nil, err
function M.connect(skt, host, port)
  skt = raw(skt)
  local lim = limit(tmo_connect[skt])
  if kind(skt) == "foreign" then
    return drive_foreign(skt, lim, "w", function() return skt:connect(host, port) end)
  end
  -- Linux answers the first connect() after a finished non-blocking one with success; copas,
  -- which retries connect until it succeeds, then sees "already connected" on a later call.
  -- uvsocket waits without that extra call, so ask the socket instead.
  if tostring(skt):find("^tcp{client}") and skt:getpeername() then
    return nil, "already connected"
  end
  skt:settimeout(lim)
  local ok, err = skt:connect(host, port)
  io_done()
  if not ok and err == "timeout" then
    -- LuaSocket's own word for a connect still under way, as a copas retry would have seen it
    if socket_errors[self_co()] then return nil, "Operation already in progress" end
    return nil, "timeout"
  end
  return ok, err
end

-- copas.close(skt, ...) -> skt:close(...)
function M.close(skt, ...)
  return skt:close(...)
end

-- copas.flush(skt): nothing to do (sends are not buffered).
function M.flush() end

-----------------------------------------------------------------------------------------------
-- TLS: through LuaSec when it is installed (its calls yield through socket/luasec.lua), else
-- through socket.tls with the same parameters.
-----------------------------------------------------------------------------------------------
local autoclose_of = setmetatable({}, weak_k)  -- socket -> thread record closing it

local function is_tls(skt)
  local s = tostring(skt)
  return s:find("^SSL") ~= nil or s:find("^tls{") ~= nil
end

-- LuaSec's ssl module, or false when it is not installed.
local luasec_ssl
local function ssl_module()
  if luasec_ssl == nil then
    local ok, ssl = pcall(require, "ssl")
    luasec_ssl = ok and type(ssl) == "table" and type(ssl.wrap) == "function" and ssl or false
  end
  return luasec_ssl
end

local function ssl_wrap(skt, params, servername)
  if is_tls(skt) then return skt end
  if not params then
    error("cannot wrap the socket for TLS (ssl.wrap) without parameters or a context", 3)
  end
  local ssl = ssl_module()
  local tls
  if ssl then
    tls = assert(ssl.wrap(skt, params))
  else
    tls = assert(require("socket.tls").wrap(skt, params, servername))
  end
  tmo_connect[tls], tmo_send[tls], tmo_read[tls] = tmo_connect[skt], tmo_send[skt], tmo_read[skt]
  if names[skt] then names[tls] = names[skt] end
  local rec = autoclose_of[skt]
  if rec then
    rec.autoclose = tls
    autoclose_of[skt], autoclose_of[tls] = nil, rec
  end
  return tls
end

-- copas.dohandshake(skt, params) -> the TLS socket | nil, "timeout"; raises when it fails.
function M.dohandshake(skt, params)
  local tls = ssl_wrap(skt, params)
  local ok, err
  if kind(tls) == "stream" then
    -- its handshake yields by itself, within the copas connect timeout
    tls:settimeout(limit(tmo_connect[skt]))
    ok, err = tls:dohandshake()
    io_done()
    if not ok and soft[err] then err = timeout_error("timeout") end
  else
    ok, err = drive_foreign(tls, limit(tmo_connect[skt]), "w", function()
      return tls:dohandshake()
    end)
  end
  if ok then return tls end
  if err == "timeout" or soft[err] then return nil, err end
  error("TLS/SSL handshake failed: " .. tostring(err), 2)
end

-- The TLS part of the optional `sslparams` of wrap and handler: {wrap = params, sni = {...}}.
local function ssl_options(p)
  local t = type(p)
  if t == "nil" then return { wrap = false, sni = false } end
  if t == "userdata" then return { wrap = p, sni = false } end
  if t ~= "table" then error("ssl parameters: unexpected type " .. t, 3) end
  if p.mode or p.protocol then return { wrap = p, sni = false } end
  return { wrap = p.wrap or false, sni = p.sni or false }
end

-----------------------------------------------------------------------------------------------
-- Wrapped sockets: copas.wrap(skt) returns a table whose blocking methods are the copas ones.
-----------------------------------------------------------------------------------------------
-- Applies the TLS options a wrapped stream was made with (server name, then handshake).
-- Returns `result`, or the handshake's failure; raises where copas raises.
function secure(w, result)
  local opts = w.ssl_params
  if opts.sni then w:sni(opts.sni.names, opts.sni.strict) end
  if not opts.wrap then return result end
  local done, err = w:dohandshake(opts.wrap)
  if not done then return nil, err end
  return result
end

Stream.__tostring = function(self) return tostring(self.socket) .. " (copas wrapped)" end
Dgram.__tostring = Stream.__tostring

do
  local S = Stream.__index
  function S:send(data, i, j) return M.send(self.socket, data, i, j) end
  function S:receive(pattern, prefix)
    if tmo_read[self.socket] == 0 then return M.receivepartial(self.socket, pattern, prefix) end
    return M.receive(self.socket, pattern, prefix)
  end
  function S:receivepartial(pattern, prefix)
    return M.receivepartial(self.socket, pattern, prefix)
  end
  function S:flush() end
  function S:settimeout(t) return M.settimeout(self.socket, t) end
  function S:settimeouts(c, s, r) return M.settimeouts(self.socket, c, s, r) end
  function S:connect(host, port)
    local ok, err = M.connect(self.socket, host, port)
    if not ok then return nil, err end
    return secure(self, ok)
  end
  function S:close(...) return M.close(self.socket, ...) end
  function S:dohandshake(params)
    local tls, err = M.dohandshake(self.socket, params or self.ssl_params.wrap)
    if not tls then return nil, err end
    self.socket = tls
    return self
  end
  function S:sni(names_, strict)
    local p = self.ssl_params
    if names_ == nil and p.sni then names_, strict = p.sni.names, p.sni.strict end
    self.socket = ssl_wrap(self.socket, p.wrap, type(names_) == "string" and names_ or nil)
    -- socket.tls takes the server name when it wraps
    if not self.socket.sni then return true end
    return self.socket:sni(names_, strict)
  end

  -- Plain pass-throughs; those LuaSec lacks answer nil and a message instead of raising.
  local function pass(name)
    S[name] = function(self, ...) return self.socket[name](self.socket, ...) end
  end
  local function guarded(name, msg)
    S[name] = function(self, ...)
      local fn = self.socket[name]
      if not fn then return nil, msg end
      local r = pack(pcall(fn, self.socket, ...))
      if not r[1] then return nil, msg end
      return unpack(r, 2, r.n)
    end
  end
  for _, n in ipairs({ "bind", "listen", "accept", "getstats", "setstats", "shutdown",
    "getfd", "setfd", "dirty", "getfamily" }) do
    pass(n)
  end
  for _, n in ipairs({ "getsockname", "getpeername", "setoption", "getoption" }) do
    guarded(n, "not implemented by LuaSec")
  end
  guarded("getalpn", "not a tls socket")
  guarded("getsniname", "not a tls socket")

  local D = Dgram.__index
  for k, v in pairs(S) do D[k] = v end
  function D:send(...) return self.socket:send(...) end
  function D:sendto(...) return self.socket:sendto(...) end
  function D:receive(size) return M.receive(self.socket, size or socket._DATAGRAMSIZE) end
  function D:receivefrom(size) return M.receivefrom(self.socket, size) end
  function D:setpeername(...) return self.socket:setpeername(...) end
  function D:setsockname(...) return self.socket:setsockname(...) end
  -- As in copas, a wrapped UDP socket is not closed by close(): it may be a server's socket.
  function D:close() return true end
end

-- copas.wrap(skt, [sslparams]) -> wrapped socket (a table)
function M.wrap(skt, sslparams)
  if wrapped(skt) then return skt end
  if kind(skt) == "dgram" then
    return setmetatable({ socket = skt }, Dgram)
  end
  return setmetatable({ socket = skt, ssl_params = ssl_options(sslparams) }, Stream)
end

-- copas.handler(fn, [sslparams]) -> function(client, ...) that wraps the client (and does the
-- TLS handshake when sslparams are given) before calling fn.
function M.handler(fn, sslparams)
  return function(client, ...)
    local w = M.wrap(client, sslparams)
    secure(w)
    return fn(w, ...)
  end
end

-----------------------------------------------------------------------------------------------
-- Servers
-----------------------------------------------------------------------------------------------
local servers = {}  -- listening socket -> { handler, task, count }

local function accept_loop(server, entry)
  while servers[server] == entry do
    local called, client, err = pcall(server.accept, server)
    if not called then
      -- not listening (copas would wait for it to become readable, forever): wait for
      -- removeserver instead
      park()
      break
    elseif client then
      entry.count = entry.count + 1
      local base = name_of(server)
      names[client] = base .. ":client_" .. entry.count
      tmo_connect[client], tmo_send[client], tmo_read[client] =
        tmo_connect[server], tmo_send[server], tmo_read[server]
      local co = M.addnamedthread(base .. ":handler_" .. entry.count, entry.handler, client)
      local rec = threads[co]
      rec.skt = client
      if M.autoclose then
        rec.autoclose = client
        autoclose_of[client] = rec
      end
      touch()
    elseif err == "closed" or err == "cancelled" then
      break
    elseif err ~= "timeout" then
      sleep(0.05)  -- out of descriptors: let clients finish before accepting more
    end
  end
  if servers[server] == entry then
    servers[server] = nil
    nservers = nservers - 1
    changed()
  end
end

-- copas.addserver(server, handler, [timeout], [name])
-- TCP: one handler thread per accepted client; UDP: one handler thread for the socket.
function M.addserver(server, handler, timeout, name)
  if name then names[server] = name end
  if timeout then M.settimeout(server, timeout) end
  if kind(server) == "dgram" then
    local co = M.addnamedthread(name_of(server) .. ":handler", handler, server)
    threads[co].skt = server
    return
  end
  local entry = servers[server]
  if entry then
    entry.handler = handler
    return
  end
  entry = { handler = handler, count = 0 }
  servers[server] = entry
  nservers = nservers + 1
  server:settimeout(nil)  -- the accept loop waits for clients without limit
  entry.task = spawn(accept_loop, server, entry)
  entry.task:setname("copas server " .. name_of(server))
end

-- copas.removeserver(server, [keep_open]) -> server:close() | true
function M.removeserver(server, keep_open)
  local skt = raw(server)
  local entry = servers[skt]
  if entry then
    servers[skt] = nil
    nservers = nservers - 1
    if entry.task ~= current() then entry.task:cancel("copas: server removed") end
    changed()
  end
  if keep_open then return true end
  return server:close()
end

-----------------------------------------------------------------------------------------------
-- The loop, its exit protocol, and steps
-----------------------------------------------------------------------------------------------
local exiting = false
local exit_waiters = waitlist.new()

-- copas.finished() -> true when nothing is left that could make progress on its own
function M.finished()
  return nservers == 0 and live == lethargic and not (ntimeouts > 0 and lethargic > 0)
end

-- copas.exit(): from now on copas.exiting() is true and waitforexit returns.
function M.exit()
  if exiting then return end
  exiting = true
  while true do
    local t = exit_waiters:pop()
    if not t then break end
    wake_task(t)
  end
end

-- copas.exiting() -> whether copas.exit was called (reset when a loop starts)
function M.exiting() return exiting end

-- copas.waitforexit(): waits until copas.exit is called.
function M.waitforexit()
  local t = current()
  if not t then error("copas.waitforexit must be called from a copas thread", 2) end
  while not exiting do
    exit_waiters:push(t)
    local ok, err = wait_here(nil, false)
    exit_waiters:remove(t)
    if not ok and err then return nil, err end
  end
end

-- Drops every thread (but the caller's) and every copas.timeout timer.
local function drop_all()
  local mine = me()
  for _, rec in pairs(threads) do
    if rec ~= mine then drop_thread(rec) end
  end
  for co in pairs(timeouts) do disarm(co) end
end

-- While a loop runs: a full garbage collection after every IDLE_WINDOW seconds in which the
-- copas threads made at most IDLE_EVENTS steps of progress, so that sockets a program dropped
-- without closing them are closed and their peers see the end (copas collects now and then
-- when idle, too). (async.status() would tell the loop's idle time, but reading it resets the
-- lag figure the program may be watching.)
local IDLE_WINDOW, IDLE_EVENTS = 2, 4

local function idle_collector()
  local last = activity
  while true do
    local _, err = sleep(IDLE_WINDOW)
    if err then return end
    if activity - last <= IDLE_EVENTS then collectgarbage() end
    last = activity
  end
end

-- The main task of copas.loop: waits until copas has nothing left to do, announcing the exit
-- once on the way, then drops what still sleeps (nothing could ever wake it).
local function supervise()
  local outer = supervisor
  supervisor = current()
  local collector = spawn(idle_collector)
  collector:setname("copas idle collector")
  while true do
    if M.finished() then
      if exiting then break end
      M.exit()
    else
      park()
    end
  end
  supervisor = outer
  collector:cancel()
  drop_all()
end

-- copas.loop([init], [timeout]) / copas([init], [timeout])
function M.loop(init, timeout)
  local _ = timeout
  if type(init) == "function" then M.addnamedthread("copas_initializer", init) end
  exiting = false
  M.running = true
  local ok, err
  if intask() then
    ok, err = pcall(supervise)
  else
    ok, err = pcall(run, supervise)
  end
  M.running = false
  if not ok then error(err, 0) end
end

local STEP = {}

-- copas.step([timeout]) -> true if some copas work was done, false otherwise.
-- One round of the scheduler: the tasks that are ready run, libuv is polled once without
-- waiting and the tasks it woke run; if nothing happened, it waits up to `timeout` seconds
-- (nil: until something happens) for the first sign of progress.
function M.step(timeout)
  if intask() then  -- inside a running loop: a step is a turn
    M.pause()
    return true
  end
  local before = activity
  if timeout == nil and nservers == 0 and live == lethargic and ntimeouts == 0 then
    timeout = 0  -- nothing could ever happen: do not wait for it
  end
  local ok, err = pcall(run, function()
    stepper = current()
    coyield()
    if activity == before and (timeout == nil or timeout > 0) then park(timeout) end
    stepper = nil
    error(STEP, 0)
  end)
  stepper = nil
  if ok or err == STEP then return activity ~= before end
  if type(err) == "string" and err:find("deadlock", 1, true) then return false end
  error(err, 0)
end

-- copas.cancelall(): drops every thread and timer, removes every server, and calls copas.exit,
-- so that the loop ends at once. For tests and emergencies.
function M.cancelall()
  drop_all()
  for server in pairs(servers) do M.removeserver(server) end
  M.exit()
end

-----------------------------------------------------------------------------------------------
-- Names
-----------------------------------------------------------------------------------------------

-- copas.setsocketname(name, skt)
function M.setsocketname(name, skt)
  if type(name) ~= "string" then argerror(1, "setsocketname", "string expected") end
  skt = raw(skt)
  if skt == nil then argerror(2, "setsocketname", "socket expected") end
  names[skt] = name
end

-- copas.getsocketname(skt) -> name
function M.getsocketname(skt)
  skt = raw(skt)
  if skt == nil then argerror(1, "getsocketname", "socket expected") end
  return name_of(skt)
end

-- copas.setthreadname(name, [co])
function M.setthreadname(name, co)
  if type(name) ~= "string" then argerror(1, "setthreadname", "string expected") end
  co = co or self_co()
  if type(co) ~= "thread" then argerror(2, "setthreadname", "coroutine expected") end
  names[co] = name
  local rec = threads[co]
  if rec then rec.task:setname(name) end
end

-- copas.getthreadname([co]) -> name
function M.getthreadname(co)
  co = co or self_co()
  if type(co) ~= "thread" then argerror(1, "getthreadname", "coroutine expected") end
  return name_of(co)
end

-----------------------------------------------------------------------------------------------
-- copas.status([enable_stats]): counts of the copas threads by what they wait for.
-----------------------------------------------------------------------------------------------
function M.status()
  local res = { running = not not M.running, timeout = ntimeouts, read = 0, write = 0,
    active = 0, timer = 0, inactive = 0 }
  local ids = {}
  for _, rec in pairs(threads) do ids[rec.task:id()] = rec end
  for _, e in ipairs(async.status().list) do
    local rec = ids[e.id]
    if rec then
      local w = e.waiting_for or ""
      if e.state ~= "waiting" then
        res.active = res.active + 1
      elseif w:find("^receive") or w:find("^select") then
        res.read = res.read + 1
      elseif w:find("^send") or w:find("^connect") then
        res.write = res.write + 1
      elseif rec.lethargic then
        res.inactive = res.inactive + 1
      else
        res.timer = res.timer + 1
      end
    end
  end
  res.read = res.read + nservers
  return res
end

-----------------------------------------------------------------------------------------------
-- copas.lock: a mutex, re-entrant unless asked otherwise, with a default timeout (10 s).
-----------------------------------------------------------------------------------------------
-- Parks the caller until `entry` is granted, `obj` is destroyed, or `deadline` (nil: none)
-- passes; returns the wait's error ("timeout", "cancelled") when it ended otherwise.
local function await_grant(obj, entry, deadline)
  repeat
    local ok, err = wait_here(deadline and max(0, deadline - now()))
    if not ok then return err end
  until entry.granted or rawget(obj, "destroyed")
end

local function destroyed() return nil, "destroyed" end
local destroyed_mt = { __index = function() return destroyed end }

local lock = {}
local Lock = { __index = {} }

-- copas.lock.new([timeout], [not_reentrant]) -> lock
function lock.new(seconds, not_reentrant)
  local timeout = tonumber(seconds or 10) or -1
  if timeout < 0 then
    argerror(1, "lock.new", "timeout >= 0 expected, got " .. tostring(seconds))
  end
  return setmetatable({ timeout = timeout, not_reentrant = not_reentrant, owner = nil, depth = 0,
    waiting = waitlist.new() }, Lock)
end

do
  local L = Lock.__index

  -- lock:get([timeout]) -> seconds waited | nil, "timeout"|"destroyed", seconds waited
  function L:get(timeout)
    local co = self_co()
    if self.owner == nil then
      self.owner, self.depth = co, 1
      return 0
    end
    if self.owner == co and not self.not_reentrant then
      self.depth = self.depth + 1
      return 0
    end
    timeout = timeout or self.timeout
    if timeout == 0 then return nil, "timeout", 0 end
    local t0 = now()
    local entry = { co = co, task = current(), granted = false }
    local deadline = finite(timeout) and t0 + timeout
    self.waiting:push(entry)
    local err = await_grant(self, entry, deadline)
    self.waiting:remove(entry)
    local waited = now() - t0
    if rawget(self, "destroyed") then return nil, "destroyed", waited end
    if entry.granted then return waited end
    return nil, err or "timeout", waited
  end

  -- lock:release() -> true | nil, "cannot release a lock not owned"
  function L:release()
    if self.owner ~= self_co() then return nil, "cannot release a lock not owned" end
    self.depth = self.depth - 1
    if self.depth > 0 then return true end
    while true do
      local entry = self.waiting:pop()
      if not entry then
        self.owner, self.depth = nil, 0
        return true
      end
      self.owner, self.depth = entry.co, 1
      entry.granted = true
      if wake_task(entry.task) then return true end
      entry.granted = false
    end
  end

  -- lock:destroy(): waiters (and later calls) get nil, "destroyed".
  function L:destroy()
    self.destroyed = true
    while true do
      local entry = self.waiting:pop()
      if not entry then break end
      wake_task(entry.task)
    end
    setmetatable(self, destroyed_mt)
    return true
  end
end

-----------------------------------------------------------------------------------------------
-- copas.semaphore: counted resources up to `max`, taken in arrival order.
-----------------------------------------------------------------------------------------------
local semaphore = {}
local Semaphore = { __index = {} }

-- copas.semaphore.new(max, [start], [timeout]) -> semaphore
function semaphore.new(maximum, start, seconds)
  local timeout = tonumber(seconds or 10) or -1
  if timeout < 0 then
    argerror(3, "semaphore.new", "timeout >= 0 expected, got " .. tostring(seconds))
  end
  if type(maximum) ~= "number" or maximum < 1 then
    argerror(1, "semaphore.new", "number > 0 expected, got " .. tostring(maximum))
  end
  return setmetatable({ count = start or 0, max = maximum, timeout = timeout,
    first = 1, last = 0 }, Semaphore)
end

do
  local S = Semaphore.__index

  -- Hands resources to the waiters at the head of the line while they suffice.
  local function serve(self)
    while self.first <= self.last do
      local entry = self[self.first]
      if entry then
        if entry.n > self.count then break end
        self.count = self.count - entry.n
        entry.granted = true
        entry.pos = nil
        if not wake_task(entry.task) then  -- stopped waiting meanwhile: give it back
          entry.granted = false
          self.count = self.count + entry.n
        end
      end
      self[self.first] = nil
      self.first = self.first + 1
    end
    if self.first > self.last then self.first, self.last = 1, 0 end
  end

  -- semaphore:take([n], [timeout]) -> true | nil, "timeout"|"too many"|"destroyed"
  function S:take(n, timeout)
    n = n or 1
    if self.first > self.last and self.count >= n then
      self.count = self.count - n
      return true
    end
    if n > self.max then return nil, "too many" end
    timeout = timeout or self.timeout
    if timeout == 0 then return nil, "timeout" end
    local deadline = finite(timeout) and now() + timeout
    local entry = { n = n, task = current(), granted = false }
    self.last = self.last + 1
    self[self.last] = entry
    entry.pos = self.last
    local err = await_grant(self, entry, deadline)
    if entry.pos then  -- still in line: leave a hole
      self[entry.pos] = false
      entry.pos = nil
      if not rawget(self, "destroyed") then serve(self) end  -- those behind may fit now
    end
    if rawget(self, "destroyed") then return nil, "destroyed" end
    if entry.granted then return true end
    return nil, err or "timeout"
  end

  -- semaphore:give([n]) -> true | nil, "too many" (the count is capped at max)
  function S:give(n)
    local count, err = self.count + (n or 1), nil
    if count > self.max then count, err = self.max, "too many" end
    self.count = count
    serve(self)
    if err then return nil, err end
    return true
  end

  function S:get_count() return self.count end

  -- semaphore:get_wait() -> resources wanted by waiters beyond those available
  function S:get_wait()
    local wanted = 0
    for i = self.first, self.last do
      local e = self[i]
      if e then wanted = wanted + e.n end
    end
    return wanted - self.count
  end

  -- semaphore:destroy(): waiters (and later calls) get nil, "destroyed".
  function S:destroy()
    self.destroyed = true
    for i = self.first, self.last do
      local e = self[i]
      if e then
        e.pos = nil
        wake_task(e.task)
      end
      self[i] = nil
    end
    setmetatable(self, destroyed_mt)
    return true
  end
end

-----------------------------------------------------------------------------------------------
-- Lists of parked tasks waiting for a condition (queue:finish, futures).
-----------------------------------------------------------------------------------------------
local function wait_on(list, timeout)
  local t = current()
  list:push(t)
  local ok, err = wait_here(timeout)
  list:remove(t)
  return ok, err
end

local function notify_all(list)
  while true do
    local t = list:pop()
    if not t then return end
    wake_task(t)
  end
end

-----------------------------------------------------------------------------------------------
-- copas.queue: a FIFO (nil items allowed) with worker threads and an orderly shutdown.
-----------------------------------------------------------------------------------------------
local queue = {}
local Queue = { __index = {} }
local queue_count = 0

-- copas.queue.new([{name = ...}]) -> queue
function queue.new(opts)
  opts = opts or {}
  queue_count = queue_count + 1
  return setmetatable({
    name = opts.name or ("copas_queue_" .. queue_count),
    items = { first = 1, last = 0 },
    available = semaphore.new(10 ^ 9),
    stopping = false,
    workers = setmetatable({}, weak_k),
    worker_id = 0,
    changes = waitlist.new(),  -- finish() waiting for the queue to end or a worker to exit
  }, Queue)
end

do
  local Q = Queue.__index

  -- queue:push(item) -> true | nil, "stopping"
  function Q:push(item)
    if self.stopping then return nil, "stopping" end
    local items = self.items
    items.last = items.last + 1
    items[items.last] = item
    self.available:give()
    return true
  end

  -- queue:pop([timeout]) -> item | nil, "timeout"|"destroyed"
  function Q:pop(timeout)
    local ok, err = self.available:take(1, timeout)
    if not ok then return nil, err end
    local items = self.items
    local item = items[items.first]
    items[items.first] = nil
    items.first = items.first + 1
    if items.first > items.last then
      items.first, items.last = 1, 0
      if self.stopping then self:destroy() end  -- stopped and drained
    end
    return item
  end

  function Q:get_size()
    return self.items.last - self.items.first + 1
  end

  -- queue:stop(): no more pushes; the queue destroys itself once drained.
  function Q:stop()
    if not self.stopping then
      self.stopping = true
      if self:get_size() == 0 then self:destroy() end
    end
    return true
  end

  -- queue:finish([timeout], [no_destroy_on_timeout]) -> true | nil, "timeout"
  -- Stops the queue, then waits until it drained and every worker exited.
  function Q:finish(timeout, keep)
    self:stop()
    local deadline = now() + (timeout or 10)
    local function remaining() return max(0, deadline - now()) end
    while not rawget(self, "destroyed") do
      if remaining() <= 0 then
        if not keep then self:destroy() end
        return nil, "timeout"
      end
      wait_on(self.changes, remaining())
    end
    while next(self.workers) do
      if remaining() <= 0 then return nil, "timeout" end
      wait_on(self.changes, remaining())
    end
    return true
  end

  -- queue:destroy(): drops the items left; waiting pops (and later calls) get "destroyed".
  function Q:destroy()
    self.destroyed = true
    self.available:destroy()
    local items = self.items
    for i = items.first, items.last do items[i] = nil end
    items.first, items.last = 1, 0
    setmetatable(self, destroyed_mt)
    notify_all(self.changes)
    return true
  end

  -- queue:add_worker(fn) -> the worker's coroutine; fn(item) runs for each item.
  function Q:add_worker(fn)
    if type(fn) ~= "function" then argerror(1, "add_worker", "function expected") end
    self.worker_id = self.worker_id + 1
    local q = self
    local co
    co = M.addnamedthread(self.name .. ":worker_" .. self.worker_id, function()
      local _ <close> = setmetatable({}, { __close = function()
        q.workers[co] = nil
        notify_all(q.changes)
      end })
      while true do
        local item, err = q:pop(huge)
        if err then break end
        fn(item)
      end
    end)
    self.workers[co] = true
    return co
  end

  -- queue:get_workers() -> array of the live worker coroutines
  function Q:get_workers()
    local list, n = {}, 0
    for co in pairs(self.workers) do
      n = n + 1
      list[n] = co  -- a worker leaves this set as it exits
    end
    return list
  end
end

-----------------------------------------------------------------------------------------------
-- copas.timer: one-shot or recurring callbacks, each in a copas thread of its own.
-----------------------------------------------------------------------------------------------
local timer = {}
local Timer = { __index = {} }
local timer_count = 0

do
  local T = Timer.__index

  local function fire(self)
    xpcall(self.callback, function(e)
      return M.geterrorhandler()(e, corunning(), nil)
    end, self, self.params)
  end

  -- The timer's thread. A one-shot timer forgets its thread before the callback runs, so that
  -- the callback can arm it again (which starts a new thread).
  local function body(self, first)
    if self.errorhandler then M.seterrorhandler(self.errorhandler) end
    local mine = self.co
    local delay = first
    repeat
      M.pause(delay)
      if self.cancelled then break end
      local again = self.recurring
      if not again then self.cancelled, self.co = true, nil end
      fire(self)
      delay = self.delay
    until not again or self.cancelled
    if self.co == mine then self.co = nil end
  end

  -- timer:arm([initial_delay]) -> timer | nil, "already armed"
  function T:arm(initial)
    if initial ~= nil and (type(initial) ~= "number" or initial < 0) then
      argerror(1, "arm", "delay >= 0 expected")
    end
    if self.co then return nil, "already armed" end
    local first = initial or self.delay
    self.cancelled = false
    self.co = start_thread(self.name, body, self, first)
    return self
  end

  -- timer:cancel() -> timer | nil, "not armed"|"already cancelled"
  function T:cancel()
    if not self.co then return nil, "not armed" end
    if self.cancelled then return nil, "already cancelled" end
    self.cancelled = true
    M.wakeup(self.co)
    M.removethread(self.co)
    self.co = nil
    return self
  end
end

-- copas.timer.new{delay, callback, [recurring], [initial_delay], [params], [name],
-- [errorhandler]} -> armed timer; callback(timer, params)
function timer.new(opts)
  if type(opts.delay or -1) ~= "number" or (opts.delay or -1) < 0 then
    argerror(1, "timer.new", "delay >= 0 expected")
  end
  if type(opts.callback) ~= "function" then
    argerror(1, "timer.new", "callback function expected")
  end
  timer_count = timer_count + 1
  local t = setmetatable({ cancelled = false, recurring = opts.recurring and true or false }, Timer)
  for _, field in ipairs({ "delay", "callback", "params", "errorhandler" }) do
    t[field] = opts[field]
  end
  t.name = opts.name or ("copas_timer_" .. timer_count)
  return t:arm(opts.initial_delay)
end

-----------------------------------------------------------------------------------------------
-- copas.future: a thread whose results can be waited for.
-----------------------------------------------------------------------------------------------
local future = setmetatable({ SUCCESS = true, PENDING = false, ERROR = "error" }, {
  __index = function(_, k) error("copas has no field 'future." .. tostring(k) .. "'", 2) end,
})
-- Records a future's outcome (the first one wins: a cancel stays) and wakes its waiters.
local function settle(f, outcome)
  if f.results then return end
  f.results = outcome
  notify_all(f.waiters)
end

local Future = { __index = {} }
Future.__call = function(self, ...) return self:get(...) end

do
  local F = Future.__index

  -- future:get() -> true, results... | false, error
  function F:get()
    while not self.results do wait_on(self.waiters, nil) end
    return unpack(self.results, 1, self.results.n)
  end

  -- future:try() -> PENDING | SUCCESS, results... | ERROR, error
  function F:try()
    local r = self.results
    if not r then return false end
    if r[1] then return true, unpack(r, 2, r.n) end
    return "error", r[2]
  end

  -- future:cancel() -> true if the thread had not finished (get then returns false, "cancelled")
  function F:cancel()
    if self.results then return false end
    settle(self, pack(false, "cancelled"))
    M.removethread(self.coro)
    return true
  end
end

-- copas.future.addnamedthread(name, fn, ...) -> future
future.addnamedthread = function(name, fn, ...)
  local f = setmetatable({ waiters = waitlist.new() }, Future)
  local function run_it(...)
    local outcome = pack(pcall(fn, ...))
    if outcome[1] == false and outcome[2] == DROP then error(DROP, 0) end
    settle(f, outcome)
  end
  f.coro = start_thread(name, run_it, ...)
  return f
end

-- copas.future.addthread(fn, ...) -> future
future.addthread = function(fn, ...)
  return future.addnamedthread(nil, fn, ...)
end

-----------------------------------------------------------------------------------------------
-- copas.debug: lifecycle logging and a socket proxy that prints every call.
-----------------------------------------------------------------------------------------------
local dbg = {}

-- copas.debug.start([logger]): logs each thread's start and end (logger default: print).
function dbg.start(logger)
  local out = logger or G.print
  debug_log = function(...) out(concat({ ... })) end
end

-- copas.debug.stop()
function dbg.stop() debug_log = nil end

-- copas.debug.socket(skt) -> proxy printing each method call with its arguments and results
function dbg.socket(skt)
  if wrapped(skt) then
    skt.socket = dbg.socket(skt.socket)
    return skt
  end
  local calls = 0
  local function show(tag, r)
    local parts = {}
    for i = 1, r.n do
      local v = r[i]
      parts[i] = type(v) == "string" and format("%q", #v > 30 and v:sub(1, 30) .. "..." or v)
        or tostring(v)
    end
    G.print(tag .. concat(parts, ", "))
  end
  return setmetatable({}, {
    __index = function(self, key)
      local v = skt[key]
      if type(v) ~= "function" then return v end
      return function(obj, ...)
        calls = calls + 1
        local id = calls
        show(format("%d-calling '%s' with: ", id, key), pack(...))
        local r = pack(v(obj == self and skt or obj, ...))
        show(format("%d-'%s' returned: ", id, key), r)
        return unpack(r, 1, r.n)
      end
    end,
    __tostring = function() return tostring(skt) end,
  })
end

M.lock = lock
M.semaphore = semaphore
M.queue = queue
M.timer = timer
M.future = future
M.debug = dbg

-- copas.http, copas.ftp and copas.smtp: uvsocket's own socket.http/ftp/smtp, loaded on first
-- use (their calls yield inside a copas thread by themselves). copas.http.request also takes
-- copas's `timeout` field (seconds, or {connect =, send =, receive =}; default 60).
local lazy = {}

function lazy.http()
  local http = require("socket.http")
  local H = setmetatable({}, { __index = http })
  local function timeouts_of(t)
    if type(t) == "table" then return t.connect, t.send, t.receive end
    return t, t, t
  end
  function H.request(reqt, body)
    -- https with copas's sslparams ({wrap = params, sni = ...} or bare LuaSec parameters):
    -- socket.http's https (socket.tls) with those parameters, verification included.
    if type(reqt) == "table" and reqt.sslparams ~= nil and not reqt.create
      and tostring(reqt.url or ""):find("^https") then
      local sp = reqt.sslparams
      if type(sp) ~= "table" then return nil, "sslparams: a table of TLS parameters expected" end
      local copy = {}
      for k, v in pairs(reqt) do copy[k] = v end
      copy.sslparams, copy.timeout = nil, nil
      local params = sp
      if sp.wrap ~= nil and not (sp.mode or sp.protocol or sp.verify) then params = sp.wrap end
      if type(params) ~= "table" then
        return nil, "sslparams: a table of TLS parameters expected (not a context)"
      end
      for k, v in pairs(params) do copy[k] = v end
      copy.mode = nil
      if type(sp.sni) == "table" and type(sp.sni.names) == "string" then
        copy.servername = sp.sni.names
      end
      return http.request(copy)
    end
    if type(reqt) ~= "table" or reqt.timeout == nil or reqt.create
      or tostring(reqt.url or ""):find("^https") then
      return http.request(reqt, body)
    end
    local copy = {}
    for k, v in pairs(reqt) do copy[k] = v end
    local c, s, r = timeouts_of(reqt.timeout)
    copy.create = function()
      local skt, err = socket.tcp()
      if not skt then return nil, err end
      local w = M.wrap(skt)
      w:settimeouts(c or 60, s or 60, r or 60)
      -- the timeouts above replace the one socket.http sets
      return setmetatable({ settimeout = function() return 1 end }, { __index = w })
    end
    copy.timeout = nil
    return http.request(copy)
  end
  return H
end

function lazy.ftp() return require("socket.ftp") end
function lazy.smtp() return require("socket.smtp") end

setmetatable(M, {
  __index = function(self, key)
    local make = lazy[key]
    if not make then return nil end
    local mod = make()
    rawset(self, key, mod)
    return mod
  end,
  __call = function(_, ...) return M.loop(...) end,
})

-- Called by the `copas` alias module each time it loads: a program that clears
-- package.loaded.copas and requires it again expects a fresh copas, so from the second load on
-- the default error handler and autoclose go back to their defaults. Threads and servers stay:
-- there is one scheduler per process.
local alias_loads = 0
function M._alias()
  alias_loads = alias_loads + 1
  if alias_loads > 1 then
    default_handler = report_default
    M.autoclose = true
  end
  return M
end

return M
