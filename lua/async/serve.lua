-- async/serve.lua: servers with one task per client, and graceful shutdown.
--
--   async.serve(server, function(client) ... end [, options])   -- accept loop in its own task
--   async.spawn(function() async.signal("SIGINT"); async.shutdown(5) end)
--
-- Each client's handler runs in its own task, named after the peer. The client socket is a
-- to-be-closed variable of that task, so it is closed when the handler returns, fails or is
-- cancelled; a handler's error is reported like any task error and touches no other client.
--
-- The accept loop never spins: at `options.max` clients at once it waits until one of them
-- ends, and when accept fails for lack of descriptors (EMFILE, ENFILE) or memory it waits until
-- one of its clients ends or a short back-off passes, saying so on stderr at most once a second.
local core = require("socket.core")
local args = require("socket.async.args")

local async = core.async
local spawn, sleep, now, current = async.spawn, async.sleep, async.now, async.current
local park, wake = async._wait, async._wake
local error, next, pairs, pcall, select, setmetatable, tostring, type =
  error, next, pairs, pcall, select, setmetatable, tostring, type
local find = string.find
local stderr = io.stderr

local M = {}

-- Seconds the accept loop waits after an accept error other than running out of descriptors
-- or memory (for those, accept waits for a descriptor to be freed, at most 100 ms).
M.BACKOFF = 0.1
-- Seconds out of descriptors on end after which the connections waiting to be accepted are
-- refused (closed at once) rather than left to wait.
M.REFUSE_AFTER = 5

local servers = {}   -- listening socket -> its serve state
local handlers = setmetatable({}, { __mode = "k" })  -- live handler tasks

-- A listening socket: a userdata with accept, whose class, when it tells one, is a server's
-- (tcp{server}, unixstream{server}). A master object has accept too, but it would only fail.
local function listening(server)
  if type(server) ~= "userdata" then return false end
  local ok, accept, class = pcall(function() return server.accept, server.class end)
  if not ok or accept == nil then return false end
  return type(class) ~= "string" or find(class, "{server}", 1, true) ~= nil
end

-- Whether an accept error means "no resources now, later maybe": out of descriptors (EMFILE,
-- ENFILE), of buffer space or of memory. These are worth a pause, not the end of the server.
local function exhausted(err)
  return find(err, "open files", 1, true) or find(err, "buffer space", 1, true)
    or find(err, "memory", 1, true)
end

-- The guard each client task holds as a to-be-closed variable: whatever way the handler ends,
-- its slot is given back and a paused accept loop is woken.
local Slot = {}
Slot.__index = Slot
Slot.__close = function(slot)
  local st = slot.state
  st.active = st.active - 1
  if st.parked then
    st.parked = false
    wake(st.acceptor)
  end
end

local function run_client(handler, client, st)
  local c <close> = client
  local slot <close> = setmetatable({ state = st }, Slot) -- luacheck: ignore 211
  handlers[current()] = true
  handler(c)
end

local last_log = -1

local function accept_loop(server, handler, st)
  local max = st.max
  while servers[server] == st do
    if max and st.active >= max then
      -- At the limit: accept nothing until a client ends (the kernel queues the rest).
      st.parked = true
      local _, why = park()
      st.parked = false
      if why == "cancelled" then break end
    else
      local client, err = server:accept()
      if client then
        st.exhausted_since = nil
        st.active = st.active + 1
        local task = spawn(run_client, handler, client, st)
        local ip, port = client:getpeername()
        task:setname(ip and ("client " .. ip .. ":" .. tostring(port)) or "client")
        handlers[task] = true
        st.accepted = st.accepted + 1
      elseif err == "closed" or err == "cancelled" then
        break
      elseif err ~= "timeout" then
        -- Out of descriptors or memory: the listener stays readable. The next accept waits for
        -- a socket of the runtime to close or 100 ms (accept itself does, in a task); other
        -- errors wait out the back-off here.
        st.refused = st.refused + 1
        local t = now()
        if t - last_log >= 1 then
          last_log = t
          stderr:write("socket.async.serve: accept failed (", tostring(err),
            "); pausing accepts (", tostring(st.active), " clients)\n")
        end
        if exhausted(err) then
          -- Out of descriptors for REFUSE_AFTER seconds on end: the connections waiting in the
          -- listen queue would wait until their clients give up; refuse them instead (each is
          -- accepted on the runtime's spare descriptor and closed), a few at a time.
          st.exhausted_since = st.exhausted_since or t
          if t - st.exhausted_since >= M.REFUSE_AFTER then
            local n = 0
            while n < 256 and server.refuse and server:refuse() do n = n + 1 end
            st.shed = st.shed + n
          end
        elseif select(2, sleep(M.BACKOFF)) == "cancelled" then
          break
        end
      end
    end
  end
  if servers[server] == st then servers[server] = nil end
end

-- async.serve(server, handler [, options]) -> the accept task
-- options.max: the most clients served at once (accepting pauses at the limit);
-- options.onshutdown(server): called by async.shutdown once the listener is closed;
-- options.workers: serve in worker processes instead (async/workers.lua: called outside
-- async.run, returns true once the group stopped).
function M.serve(server, handler, options)
  if type(options) == "table" and options.workers ~= nil then
    -- Worker processes (lua/async/workers.lua); with reuseport the server is a bound master.
    if options.reuseport ~= true and not listening(server) then
      error("bad argument #1 to 'serve' (server socket expected, got "
        .. args.typename(server) .. ")", 2)
    end
    return require("socket.async.workers").serve(server, handler, options)
  end
  if not listening(server) then
    error("bad argument #1 to 'serve' (server socket expected, got " .. args.typename(server)
      .. ")", 2)
  end
  args.func(handler, 2, "serve")
  if options ~= nil and type(options) ~= "table" then
    error("bad argument #3 to 'serve' (table expected)", 2)
  end
  local max = options and options.max
  if max ~= nil and (type(max) ~= "number" or max < 1) then
    error("bad argument #3 to 'serve' (max must be a number >= 1)", 2)
  end
  local onshutdown = options and options.onshutdown
  if onshutdown ~= nil and type(onshutdown) ~= "function" then
    error("bad argument #3 to 'serve' (onshutdown must be a function)", 2)
  end
  -- options.tls (with handshake_timeout, onfailure): TLS connections, see async/serve_tls.lua.
  if options and options.tls ~= nil then
    handler = require("socket.async.serve_tls").handler(handler, options)
  end
  local st = { max = max, active = 0, parked = false, accepted = 0, refused = 0, shed = 0,
               onshutdown = onshutdown }
  local acceptor = spawn(accept_loop, server, handler, st)
  st.acceptor = acceptor
  acceptor:setname("serve " .. tostring(server))
  servers[server] = st
  return acceptor
end

local function alive(t)
  local s = t:status()
  return s ~= "done" and s ~= "failed"
end

-- Stops one serve() loop: closes its listener and wakes its accept task if it is paused.
local function stop(server, st)
  servers[server] = nil
  server:close()
  if st.parked then
    st.parked = false
    wake(st.acceptor)
  end
end

-- async.shutdown([grace]) -> the number of handlers that had to be cancelled
-- Stops every serve() loop (closing its listening socket), calls their onshutdown hooks, lets
-- running handlers finish for `grace` seconds (default 5), then cancels the rest and waits for
-- their cleanup.
function M.shutdown(grace)
  if grace ~= nil and type(grace) ~= "number" then args.fail(1, "shutdown", "number", grace) end
  grace = grace or 5
  local hooks = {}
  for server, st in pairs(servers) do
    stop(server, st)
    if st.onshutdown then hooks[#hooks + 1] = { st.onshutdown, server } end
  end
  for _, h in pairs(hooks) do h[1](h[2]) end
  local deadline = now() + grace
  for t in pairs(handlers) do
    if alive(t) then t:join(math.max(0, deadline - now())) end
  end
  local cancelled = 0
  for t in pairs(handlers) do
    if alive(t) then
      t:cancel("shutdown")
      cancelled = cancelled + 1
    end
  end
  for t in pairs(handlers) do
    if alive(t) then t:join(1) end
  end
  return cancelled
end

-- async.serving() -> the number of serve() loops still accepting
function M.serving()
  local n = 0
  for _ in next, servers do n = n + 1 end
  return n
end

-- async.servestats(acceptor) -> { active =, accepted =, refused =, shed = } for a serve() loop
-- that is still accepting, or nil.
function M.servestats(acceptor)
  for _, st in pairs(servers) do
    if st.acceptor == acceptor then
      return { active = st.active, accepted = st.accepted, refused = st.refused, shed = st.shed }
    end
  end
  return nil
end

-- Stops the serve() loop of `server` without the graceful wait of shutdown (the server object
-- of socket.http.server uses it). Returns true if it was serving.
function M._unserve(server)
  local st = servers[server]
  if not st then return false end
  stop(server, st)
  return true
end

return M
