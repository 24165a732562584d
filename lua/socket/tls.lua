-- socket/tls.lua: TLS for uvsocket's own sockets, on OpenSSL (docs/reference/tls.md).
--
--   local tls = require("socket.tls")
--   local conn = assert(socket.connect(host, 443))
--   conn = assert(tls.wrap(conn, { servername = host }))   -- the same object, now tls{client}
--   assert(conn:dohandshake())
--   conn:send("..."); conn:receive("*l")
--
-- The parameter tables have LuaSec's shape (mode, protocol, key, certificate, password, cafile,
-- capath, verify, options, ciphers, ciphersuites, depth, alpn) plus servername, session and,
-- for servers, sni. Clients verify the peer by default, against the system's CA certificates
-- (OpenSSL's default paths: SSL_CERT_FILE and SSL_CERT_DIR override them), and check its name.
-- Every call of a tls{client} yields in a task and blocks elsewhere, like a tcp{client}'s.
-- This module is not `ssl`: LuaSec, when installed, keeps its own names.
local socket = require("socket")

local core = socket._tls

local M = {}

local concat = table.concat
local error, getmetatable, ipairs, pairs, tostring, type =
  error, getmetatable, ipairs, pairs, tostring, type
local getenv = os.getenv

M._OPENSSL = core._OPENSSL

-- The parameters a context is made of (servername, session and checkname are per connection).
local context_keys = { "mode", "protocol", "key", "certificate", "password", "cafile", "capath",
  "verify", "options", "ciphers", "ciphersuites", "depth", "alpn" }

-- The defaults by side: a client verifies its peer, a server asks nothing of its clients.
local function with_defaults(params)
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  p.mode = p.mode or "client"
  if p.verify == nil then p.verify = p.mode == "client" and "peer" or "none" end
  return p
end

-- tls.newcontext(params) -> context | nil, err
-- A context made once and used for many connections (a server's, a client pool's).
function M.newcontext(params)
  if type(params) ~= "table" then
    error("bad argument #1 to 'newcontext' (table expected, got " .. type(params) .. ")", 2)
  end
  return core.newcontext(with_defaults(params))
end

-- Contexts made for parameter tables are kept by what they are made of (and the environment
-- that decides the default trust store), so that a thousand requests load the CA certificates
-- once. A context made from files is not remade when the files change: make one with
-- newcontext to control that.
local cache, cached = {}, 0
local CACHE_MAX = 32

local function text_of(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tostring(x) end
    return "{" .. concat(parts, ",") .. "}"
  end
  return tostring(v)
end

-- A string equal for two tables that hold the same values under `keys` (appended to `parts`,
-- a list of what else the key is made of, when given). socket.http's pool keys connections by it.
local function settings_key(p, keys, parts)
  parts = parts or {}
  for _, k in ipairs(keys) do
    if p[k] ~= nil then parts[#parts + 1] = k .. "=" .. text_of(p[k]) end
  end
  return concat(parts, "\n")
end
M._settings_key = settings_key

local function cache_key(p)
  if p.sni ~= nil then return nil end  -- tables of tables: not worth a key
  for k, v in pairs(p) do
    if type(v) == "function" or type(v) == "userdata" then
      if k ~= "session" then return nil end
    end
  end
  local parts = { getenv("SSL_CERT_FILE") or "", getenv("SSL_CERT_DIR") or "" }
  return settings_key(p, context_keys, parts)
end

local function context_for(p)
  local key = cache_key(p)
  local ctx = key and cache[key]
  if ctx then return ctx end
  local err
  ctx, err = core.newcontext(p)
  if not ctx then return nil, err end
  if key then
    if cached >= CACHE_MAX then
      cache, cached = {}, 0
    end
    cache[key], cached = ctx, cached + 1
  end
  return ctx
end

local function is_context(v)
  local mt = getmetatable(v)
  return type(v) == "userdata" and mt and mt.__name == "tls{context}"
end

-- tls.wrap(sock, params | context [, servername]) -> sock | nil, err
-- `sock` is a connected tcp{client} (a client's, or one a server accepted); it becomes a
-- tls{client} and is returned. Bytes it had already received are the start of the TLS stream
-- (STARTTLS). The client's name check uses params.servername, or else the address it is
-- connected to: pass servername when you connected to a name.
function M.wrap(sock, params, servername)
  local ctx, p, err
  if is_context(params) then
    ctx, p = params, {}
  elseif type(params) == "table" or params == nil then
    p = with_defaults(params or {})
    ctx, err = context_for(p)
    if not ctx then return nil, err end
  else
    error("bad argument #2 to 'wrap' (table or context expected, got " .. type(params) .. ")", 2)
  end
  servername = servername or p.servername
  local checkname = servername
  if not checkname and type(sock) == "userdata" and sock.getpeername then
    checkname = sock:getpeername()
  end
  return core.wrap(sock, ctx, servername, p.session, checkname)
end

-- tls.connect(host, port [, params]) -> tls{client} after its handshake | nil, err
-- TCP connect, wrap with servername = host (unless params say otherwise), handshake. The
-- handshake gets params.timeout when given.
function M.connect(host, port, params)
  local sock, err = socket.connect(host, port)
  if not sock then return nil, err end
  local p = {}
  for k, v in pairs(params or {}) do p[k] = v end
  if p.servername == nil then p.servername = host end
  local conn
  conn, err = M.wrap(sock, p)
  if not conn then
    sock:close()
    return nil, err
  end
  if p.timeout then conn:settimeout(p.timeout) end
  local ok
  ok, err = conn:dohandshake()
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

-- The names of the TLS parameters socket.http and the copas module accept from a request table.
M.request_keys = { "mode", "protocol", "key", "certificate", "password", "cafile", "capath",
  "verify", "options", "ciphers", "ciphersuites", "depth", "alpn", "servername", "session" }

-- The TLS parameters found in `t` under those names (nil when there are none).
function M.params_of(t)
  local p
  for _, k in ipairs(M.request_keys) do
    if t[k] ~= nil then
      p = p or {}
      p[k] = t[k]
    end
  end
  return p
end

return M
