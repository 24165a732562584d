-- async/serve_tls.lua: the TLS part of async.serve(server, handler, {tls = ..., ...}).
--
-- Each connection's handshake runs in the connection's own task, under a deadline of its own
-- (handshake_timeout seconds, default 10, through async.timeout): a slow or silent client holds
-- only its own task. A handshake that fails or runs out of time ends the task, and serve closes
-- the connection; the handler never sees a connection whose handshake did not succeed.
local core = require("socket.core")

local async = core.async
local error, pairs, tostring, type = error, pairs, tostring, type

local M = {}

-- The handler serve runs for each client: wraps it with `options.tls` (socket.tls parameters,
-- mode "server" by default, or a context from socket.tls.newcontext) and handshakes before
-- calling `handler(conn)`; `options.onfailure(err, client)`, if given, hears of failures.
function M.handler(handler, options)
  if type(options) ~= "table" then
    error("bad argument #3 to 'serve' (table of options expected)", 3)
  end
  local params = options.tls
  if params == nil then return handler end
  local tls = require("socket.tls")
  local ctx = params
  if type(params) == "table" then
    local p = {}
    for k, v in pairs(params) do p[k] = v end
    p.mode = p.mode or "server"
    local err
    ctx, err = tls.newcontext(p)
    if not ctx then error("serve: TLS parameters: " .. tostring(err), 3) end
  end
  local seconds = options.handshake_timeout or 10
  local onfailure = options.onfailure
  return function(client)
    local conn, err = tls.wrap(client, ctx)
    local ok = false
    if conn then
      ok, err = async.timeout(seconds, conn.dohandshake, conn)
    end
    if not ok then
      if onfailure then onfailure(err, client) end
      return  -- serve closes the connection
    end
    return handler(conn)
  end
end

return M
