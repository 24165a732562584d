-- async/serve.lua: servers with one task per client, and graceful shutdown.
--
--   async.serve(server, function(client) ... end)   -- accept loop in its own task
--   async.spawn(function() async.signal("SIGINT"); async.shutdown(5) end)
--
-- Each client's handler runs in its own task, named after the peer. The client socket is a
-- to-be-closed variable of that task, so it is closed when the handler returns, fails or is
-- cancelled; a handler's error is reported like any task error and touches no other client.
local core = require("socket.core")

local async = core.async
local spawn, sleep, now, current = async.spawn, async.sleep, async.now, async.current
local error, next, pairs, type = error, next, pairs, type

local M = {}

local servers = {}   -- listening socket -> accept task
local handlers = setmetatable({}, { __mode = "k" })  -- live handler tasks

-- async.serve(server, handler [, options]) -> the accept task
-- options.tls (with handshake_timeout, onfailure): TLS connections, see async/serve_tls.lua.
function M.serve(server, handler, options)
  if type(server) ~= "userdata" or not server.accept then
    error("bad argument #1 to 'serve' (server socket expected)", 2)
  end
  if type(handler) ~= "function" then error("bad argument #2 to 'serve' (function expected)", 2) end
  if options ~= nil then handler = require("socket.async.serve_tls").handler(handler, options) end
  local acceptor = spawn(function()
    while servers[server] do
      local client, err = server:accept()
      if client then
        local task = spawn(function()
          local c <close> = client
          handlers[current()] = true
          handler(c)
        end)
        local ip, port = client:getpeername()
        task:setname(ip and ("client " .. ip .. ":" .. tostring(port)) or "client")
        handlers[task] = true
      elseif err == "closed" or err == "cancelled" then
        break
      elseif err ~= "timeout" then
        sleep(0.05)  -- out of descriptors or memory: let clients finish before accepting more
      end
    end
    servers[server] = nil
  end)
  acceptor:setname("serve " .. tostring(server))
  servers[server] = acceptor
  return acceptor
end

local function alive(t)
  local s = t:status()
  return s ~= "done" and s ~= "failed"
end

-- async.shutdown([grace]) -> the number of handlers that had to be cancelled
-- Stops every serve() loop (closing its listening socket), lets running handlers finish for
-- `grace` seconds (default 5), then cancels the rest and waits for their cleanup.
function M.shutdown(grace)
  grace = grace or 5
  for server in pairs(servers) do
    servers[server] = nil
    server:close()
  end
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

return M
