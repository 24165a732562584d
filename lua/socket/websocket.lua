-- socket/websocket.lua: WebSocket (RFC 6455) client and server connections on the task runtime
-- (docs/reference/websocket.md).
--
--   local ws = assert(websocket.connect("ws://127.0.0.1:8080/chat"))     -- client
--   local ws = assert(websocket.upgrade(req, res))      -- server, in a socket.http.server handler
--   ws:send("hello"); local msg, kind = ws:receive(); ws:close(1000)
--
-- Pure Lua over socket calls and the frame parser and encoder of socket.http.core. Reading is
-- message-level: receive() reassembles fragments under the message limit (the parser checks
-- the protocol, sizes and UTF-8 as bytes arrive), answers pings and takes part in the close
-- handshake. A timed-out receive leaves partial frames in the parser and partial messages in
-- the connection, so the next receive goes on where it stopped.
--
-- Sending goes through a queue bounded in bytes: send() encodes the frame, appends it and
-- returns; a writer task (alive only while the queue holds data) sends what is queued, many
-- frames in one write. So any number of tasks may send while one receives, frames never
-- interleave, a slow peer costs at most the queue's size, and the caller chooses what happens
-- when it is full: wait (with a timeout), fail with "queue full", or close the connection.
local socket = require("socket")
local hcore = require("socket.http.core")
local mime = require("mime")
local url = require("socket.url")

local async = socket.async
local now, spawn, park, wake, current, within = async.now, async.spawn, async._wait,
  async._wake, async.current, async.timeout
local error, ipairs, pairs, pcall, require, setmetatable, tonumber, tostring, type =
  error, ipairs, pairs, pcall, require, setmetatable, tonumber, tostring, type
local concat = table.concat
local find, lower, sub, pack, char, gmatch =
  string.find, string.lower, string.sub, string.pack, string.char, string.gmatch
local frame = hcore.ws_frame
local utf8len = utf8.len
local random = math.random

local M = {}

local READ = 16384

-- Options and their defaults (docs/reference/websocket.md).
local DEFAULTS = {
  max_message = 1048576,   -- bytes of one message, fragments together (1009 beyond)
  max_frame = nil,         -- bytes of one frame (default: max_message)
  timeout = nil,           -- seconds a receive may wait (nil: no limit)
  queue_size = 1048576,    -- bytes of frames waiting to be sent
  on_full = "wait",        -- "wait", "error" or "close" when a send finds the queue full
  send_timeout = 30,       -- seconds a send may wait for room ("wait"), and any one write
  close_timeout = 5,       -- seconds the close handshake may take
  ping_interval = nil,     -- seconds between keep-alive pings (nil: none)
  ping_timeout = nil,      -- seconds a ping may go unanswered (default: ping_interval)
  connect_timeout = 30,    -- client: seconds for the connection and the handshake
  max_handshake = 16384,   -- client: bytes of the server's handshake response head
}
M.DEFAULTS = DEFAULTS

-----------------------------------------------------------------------------------------------
-- Random bytes for keys and masks: read from /dev/urandom a block at a time
-----------------------------------------------------------------------------------------------

local pool, pool_at = "", 1
local function random_bytes(n)
  if pool_at + n - 1 > #pool then
    local f = io.open("/dev/urandom", "rb")
    local data = f and f:read(4096)
    if f then f:close() end
    if not data or #data < n then
      -- No urandom: math.random, seeded by Lua 5.4 at start-up (weaker, but still unknown to
      -- the peer; masking only protects intermediaries).
      local t = {}
      for i = 1, 4096 do t[i] = char(random(0, 255)) end
      data = concat(t)
    end
    pool, pool_at = data, 1
  end
  local s = sub(pool, pool_at, pool_at + n - 1)
  pool_at = pool_at + n
  return s
end

-----------------------------------------------------------------------------------------------
-- The connection object
-----------------------------------------------------------------------------------------------

local WebSocket = {}
WebSocket.__index = WebSocket
M.WebSocket = WebSocket

local function opt(options, key)
  local v = options and options[key]
  if v == nil then return DEFAULTS[key] end
  return v
end

local KNOWN = { protocols = true, headers = true, origin = true, tls = true, max_frame = true,
  timeout = true, ping_interval = true, ping_timeout = true }
for k in pairs(DEFAULTS) do KNOWN[k] = true end

local function check_options(options, fname)
  if options == nil then return end
  if type(options) ~= "table" then
    error("bad argument to '" .. fname .. "' (options table expected)", 3)
  end
  for k in pairs(options) do
    if not KNOWN[k] then error("bad argument to '" .. fname .. "' (unknown option '"
      .. tostring(k) .. "')", 3) end
  end
  local f = options.on_full
  if f ~= nil and f ~= "wait" and f ~= "error" and f ~= "close" then
    error("bad argument to '" .. fname .. "' (on_full must be \"wait\", \"error\" or \"close\")",
      3)
  end
end

local function new(sock, role, buffered, options, protocol)
  local max_message = opt(options, "max_message")
  local ws = setmetatable({
    sock = sock, role = role, protocol = protocol,
    parser = hcore.ws_parser(role, { max_message = max_message,
                                     max_payload = opt(options, "max_frame") or max_message }),
    frames = nil, at = 1,              -- frames of the last feed not yet handed out
    parts = nil, kind = nil,           -- the fragments of a message being received
    q = {}, qn = 0, queued = 0,        -- the send queue: frames, their count, their bytes
    queue_size = opt(options, "queue_size"), on_full = opt(options, "on_full"),
    send_timeout = opt(options, "send_timeout"), close_timeout = opt(options, "close_timeout"),
    timeout = opt(options, "timeout"),
    writer = nil, waiters = nil,       -- the writer task; tasks waiting for room
    reading = false, state = "open",   -- "open", "closing" (our close sent), "closed"
    close_code = nil, close_reason = nil, err = nil,
    last_seen = now(),
  }, WebSocket)
  -- The socket itself has no timeout: the reader and the writer each bound their own waits with
  -- a deadline scope (async.timeout), since a socket's timeout is shared by both directions.
  sock:settimeout(nil)
  ws.direct = sock.gettimeout ~= nil
  if buffered and buffered ~= "" then ws.pending = buffered end
  local interval = opt(options, "ping_interval")
  if interval then
    ws.pinger = spawn(M._keepalive, ws, interval, opt(options, "ping_timeout") or interval)
    ws.pinger:setname("websocket keep-alive")
  end
  return ws
end

-- Ends the connection at once: the socket is closed, waiters are woken, the pinger stops.
local function shut(ws, err)
  if ws.state == "closed" then return end
  ws.state = "closed"
  ws.err = ws.err or err or "closed"
  ws.sock:close()
  local w = ws.waiters
  if w then
    ws.waiters = nil
    for _, t in ipairs(w) do wake(t) end
  end
  if ws.pinger and ws.pinger ~= current() then ws.pinger:cancel() end
end

local function writer(ws)
  local sock = ws.sock
  while ws.qn > 0 do
    local n = ws.qn
    local data = n == 1 and ws.q[1] or concat(ws.q, "", 1, n)
    for i = 1, n do ws.q[i] = nil end
    ws.qn = 0
    local ok, err = within(ws.send_timeout, sock.send, sock, data)
    ws.queued = ws.queued - #data
    local w = ws.waiters
    if w then
      ws.waiters = nil
      for _, t in ipairs(w) do wake(t) end
    end
    if not ok then
      shut(ws, err)
      break
    end
  end
  ws.writer = nil
end

-- Appends an encoded frame to the queue, applying the full-queue policy. `force`: a control
-- frame of the protocol (pong, close), which never waits nor fails for room.
local function enqueue(ws, data, force)
  if ws.state == "closed" then return nil, ws.err or "closed" end
  local size = #data
  if not force and ws.queued > 0 and ws.queued + size > ws.queue_size then
    local policy = ws.on_full
    if policy == "error" then return nil, "queue full" end
    if policy == "close" then
      shut(ws, "queue full")
      return nil, "queue full"
    end
    local deadline = now() + ws.send_timeout
    while ws.queued > 0 and ws.queued + size > ws.queue_size do
      if ws.state == "closed" then return nil, ws.err or "closed" end
      local left = deadline - now()
      if left <= 0 then return nil, "timeout" end
      local w = ws.waiters
      if not w then
        w = {}
        ws.waiters = w
      end
      w[#w + 1] = current()
      local ok, why = park(left)
      if not ok and why == "cancelled" then return nil, "cancelled" end
    end
    if ws.state == "closed" then return nil, ws.err or "closed" end
  end
  if ws.qn == 0 and not ws.writer and ws.direct then
    -- Nothing queued: try to send at once without waiting (a non-blocking send), so that the
    -- usual small message costs no writer task; what the kernel does not take is queued. The
    -- socket's timeout is the reader's too, so it is put back as it was, before any yield.
    local sock = ws.sock
    local block = sock:gettimeout()
    sock:settimeout(0)
    local last, err, partial = sock:send(data)
    sock:settimeout(block)
    if last then return true end
    if err ~= "timeout" then
      shut(ws, err)
      return nil, err
    end
    data = sub(data, (partial or 0) + 1)
    size = #data
  end
  local n = ws.qn + 1
  ws.q[n] = data
  ws.qn = n
  ws.queued = ws.queued + size
  if not ws.writer then
    ws.writer = spawn(writer, ws)
  end
  return true
end

local function encode(ws, opcode, payload, fin)
  if ws.role == "client" then return frame(opcode, payload, fin, random_bytes(4)) end
  return frame(opcode, payload, fin)
end

-- ws:send(message [, kind]) -> true, or nil, err: kind "text" (default; must be UTF-8) or
-- "binary"
function WebSocket:send(message, kind)
  if type(message) ~= "string" then
    if type(message) ~= "number" then error("bad argument #1 to 'send' (string expected)", 2) end
    message = tostring(message)
  end
  if kind == nil or kind == "text" then
    if not utf8len(message) then error("bad argument #1 to 'send' (text is not UTF-8)", 2) end
    kind = "text"
  elseif kind ~= "binary" then
    error("bad argument #2 to 'send' (\"text\" or \"binary\" expected)", 2)
  end
  if self.state ~= "open" then return nil, self.err or "closed" end
  return enqueue(self, encode(self, kind, message, true))
end

-- ws:ping([data]) -> true, or nil, err
function WebSocket:ping(data)
  data = data or ""
  if type(data) ~= "string" or #data > 125 then
    error("bad argument #1 to 'ping' (string of at most 125 bytes expected)", 2)
  end
  if self.state ~= "open" then return nil, self.err or "closed" end
  self.ping_sent = self.ping_sent or now()
  return enqueue(self, encode(self, "ping", data), true)
end

-- Waits until the writer has sent everything queued (or `seconds` pass).
local function flush(ws, seconds)
  local deadline = now() + seconds
  while ws.writer and ws.state ~= "closed" do
    local left = deadline - now()
    if left <= 0 then return false end
    ws.writer:join(left)
  end
  return true
end

local function close_payload(code, reason)
  if not code then return "" end
  return pack(">I2", code) .. (reason or "")
end

-- Handles a control frame read by receive; returns true when the connection was closed.
local function control(ws, f)
  local op = f.opcode
  if op == "ping" then
    enqueue(ws, encode(ws, "pong", f.payload), true)
  elseif op == "pong" then
    ws.ping_sent = nil
  elseif op == "close" then
    ws.close_code, ws.close_reason = f.code, f.reason
    if ws.state == "open" then
      -- Answer with the same code (1005, "no code", cannot be sent: answer without one).
      local code = f.code ~= 1005 and f.code or nil
      ws.state = "closing"
      enqueue(ws, encode(ws, "close", close_payload(code)), true)
    end
    flush(ws, ws.close_timeout)
    shut(ws, "closed")
    return true
  end
  return false
end

-- Fails the connection after a protocol fault: a close frame with the fault's code, then the
-- socket is closed.
local function fail(ws, name, code)
  if ws.state == "open" then
    ws.state = "closing"
    enqueue(ws, encode(ws, "close", close_payload(code)), true)
    flush(ws, 1)
  end
  ws.close_code = code
  shut(ws, name)
  return nil, name
end

-- ws:receive([timeout]) -> message, kind ("text" or "binary"), or nil, err: "closed" (the
-- close code and reason follow), "timeout", "cancelled" or a protocol fault's name
function WebSocket:receive(timeout)
  if self.reading then error("another task is receiving on this websocket", 2) end
  if self.state == "closed" then return nil, self.err, self.close_code, self.close_reason end
  timeout = timeout or self.timeout
  local deadline = timeout and now() + timeout
  self.reading = true
  local sock = self.sock
  while true do
    local frames = self.frames
    if frames then
      local f = frames[self.at]
      if not f then
        self.frames = nil
      else
        self.at = self.at + 1
        local op = f.opcode
        if op == "text" or op == "binary" or op == "continuation" then
          if op ~= "continuation" then self.kind = op end
          if f.fin then
            local msg = f.payload
            local parts = self.parts
            if parts then
              parts[#parts + 1] = msg
              msg = concat(parts)
              self.parts = nil
            end
            self.reading = false
            return msg, self.kind
          end
          local parts = self.parts
          if not parts then
            parts = {}
            self.parts = parts
          end
          parts[#parts + 1] = f.payload
        elseif control(self, f) then
          self.reading = false
          return nil, "closed", self.close_code, self.close_reason
        end
      end
    else
      local data = self.pending
      local err
      if data then
        self.pending = nil
      else
        if deadline then
          local left = deadline - now()
          if left <= 0 then
            self.reading = false
            return nil, "timeout"
          end
          data, err = within(left, sock.receiveany, sock, READ)
        else
          data, err = sock:receiveany(READ)
        end
        if not data then
          self.reading = false
          if err == "timeout" or err == "cancelled" then return nil, err end
          -- (closed under us: by a failed keep-alive, a full queue, or the peer)
          shut(self, err)
          local why = self.err
          if why ~= "timeout" and why ~= "queue full" then why = "closed" end
          return nil, why, self.close_code, self.close_reason
        end
        self.last_seen = now()
      end
      local list, name, code = self.parser:feed(data)
      if not list then
        self.reading = false
        return fail(self, name, code)
      end
      self.frames, self.at = list, 1
    end
  end
end

-- ws:close([code [, reason]]) -> true: the close handshake (our close frame, then the peer's
-- answer, read here unless another task is receiving), then the socket is closed
function WebSocket:close(code, reason)
  if code ~= nil and (type(code) ~= "number" or code < 1000 or code > 4999 or code % 1 ~= 0) then
    error("bad argument #1 to 'close' (close code expected)", 2)
  end
  if reason ~= nil and (type(reason) ~= "string" or #reason > 123 or not utf8len(reason)) then
    error("bad argument #2 to 'close' (UTF-8 reason of at most 123 bytes expected)", 2)
  end
  if self.state == "closed" then return true end
  if self.state == "open" then
    self.state = "closing"
    enqueue(self, encode(self, "close", close_payload(code or 1000, reason)), true)
  end
  local deadline = now() + self.close_timeout
  flush(self, self.close_timeout)
  if not self.reading then
    -- Read until the peer's close frame (its data messages are dropped) or the time is up.
    while self.state ~= "closed" do
      local left = deadline - now()
      if left <= 0 then break end
      local msg, err = self:receive(left)
      if not msg and err ~= nil then break end
    end
  else
    while self.state ~= "closed" and now() < deadline do async.sleep(0.01) end
  end
  shut(self, "closed")
  return true
end

WebSocket.__close = function(ws) ws:close() end

-- ws:state() -> "open", "closing" or "closed"
function WebSocket:status()
  return self.state
end

-- ws:queued() -> bytes waiting to be sent
function WebSocket:queuedbytes()
  return self.queued
end

-- The keep-alive task: a ping every `interval` seconds; a peer that has not answered one
-- within `limit` seconds is closed.
function M._keepalive(ws, interval, limit)
  while ws.state == "open" do
    local _, why = async.sleep(interval)
    if why == "cancelled" or ws.state ~= "open" then break end
    if ws.ping_sent and now() - ws.ping_sent > limit then
      ws.close_code = 1011
      fail(ws, "timeout", 1011)
      break
    end
    if not ws.ping_sent then
      ws.ping_sent = now()
      enqueue(ws, encode(ws, "ping", ""), true)
    end
  end
end

-----------------------------------------------------------------------------------------------
-- Server side: the handshake inside a socket.http.server handler
-----------------------------------------------------------------------------------------------

local function has_token(value, token)
  if not value then return false end
  for t in gmatch(lower(value), "[^,%s]+") do
    if t == token then return true end
  end
  return false
end

-- websocket.upgrade(req, res [, options]) -> websocket, or nil, err (a 400 or 426 answer has
-- then been sent)
function M.upgrade(req, res, options)
  check_options(options, "upgrade")
  local h = req.headers
  local key = h["sec-websocket-key"]
  local why
  if req.method ~= "GET" then
    why = "not a GET request"
  elseif not has_token(h.upgrade, "websocket") or not has_token(h.connection, "upgrade") then
    why = "not an upgrade to websocket"
  elseif h["sec-websocket-version"] ~= "13" then
    res:status(426):header("Sec-WebSocket-Version", "13"):finish("WebSocket version 13 only\n")
    return nil, "unsupported websocket version"
  elseif not key or not hcore.valid_key(key) then
    why = "bad Sec-WebSocket-Key"
  end
  if why then
    res:status(400):header("Content-Type", "text/plain"):finish(why .. "\n")
    return nil, why
  end
  local protocol
  local wanted = options and options.protocols
  if wanted and h["sec-websocket-protocol"] then
    for offered in gmatch(h["sec-websocket-protocol"], "[^,%s]+") do
      for _, p in ipairs(wanted) do
        if p == offered then protocol = p break end
      end
      if protocol then break end
    end
  end
  res:status(101):header("Upgrade", "websocket"):header("Connection", "Upgrade")
    :header("Sec-WebSocket-Accept", hcore.accept_key(key))
  if protocol then res:header("Sec-WebSocket-Protocol", protocol) end
  local sock, buffered = res:_upgrade()
  if not sock then return nil, buffered end
  local ws = new(sock, "server", buffered, options, protocol)
  -- A handler that returns with the websocket open: what is queued is sent and the close
  -- handshake made (1000) before the server closes the connection.
  res._conn.on_end = function() ws:close(1000) end
  return ws
end

-----------------------------------------------------------------------------------------------
-- Client side
-----------------------------------------------------------------------------------------------

local function tls_wrap(sock, host, params)
  local ok, tls = pcall(require, "socket.tls")
  if not ok or type(tls) ~= "table" or type(tls.wrap) ~= "function" then
    return nil, "wss not available: TLS not available (no socket.tls)"
  end
  local p = params
  if p == nil or type(p) == "table" then
    p = {}
    for k, v in pairs(params or {}) do p[k] = v end
    p.mode = p.mode or "client"
    p.servername = p.servername or host
  end
  local conn, err = tls.wrap(sock, p)
  if not conn then return nil, err end
  if conn.dohandshake then
    local hok, herr = conn:dohandshake()
    if not hok then return nil, herr end
  end
  return conn
end

-- websocket.connect(url [, options]) -> websocket, or nil, err
function M.connect(u, options)
  if type(u) ~= "string" then error("bad argument #1 to 'connect' (string expected)", 2) end
  check_options(options, "connect")
  local parsed = url.parse(u)
  local scheme = parsed and parsed.scheme and lower(parsed.scheme)
  if scheme ~= "ws" and scheme ~= "wss" then return nil, "not a ws:// or wss:// URL" end
  local host = parsed.host
  if not host then return nil, "no host in URL" end
  local port = tonumber(parsed.port) or (scheme == "wss" and 443 or 80)
  local path = parsed.path or "/"
  if parsed.query then path = path .. "?" .. parsed.query end
  local limit = opt(options, "connect_timeout")
  local deadline = now() + limit
  local sock = socket.tcp()
  sock:settimeout(limit)
  local ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    return nil, err
  end
  local conn = sock
  if scheme == "wss" then
    conn, err = tls_wrap(sock, host, options and options.tls)
    if not conn then
      sock:close()
      return nil, err
    end
  end
  local key = mime.b64(random_bytes(16))
  local lines = { "GET ", path, " HTTP/1.1\r\nHost: ", host,
    ((scheme == "ws" and port ~= 80) or (scheme == "wss" and port ~= 443)) and (":" .. port)
      or "",
    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ", key,
    "\r\nSec-WebSocket-Version: 13\r\n" }
  if options and options.protocols then
    lines[#lines + 1] = "Sec-WebSocket-Protocol: " .. concat(options.protocols, ", ") .. "\r\n"
  end
  if options and options.origin then lines[#lines + 1] = "Origin: " .. options.origin .. "\r\n" end
  if options and options.headers then
    for k, v in pairs(options.headers) do
      if find(k .. v, "[\r\n]") then error("bad header in options.headers", 2) end
      lines[#lines + 1] = k .. ": " .. v .. "\r\n"
    end
  end
  lines[#lines + 1] = "\r\n"
  ok, err = conn:send(concat(lines))
  if not ok then
    conn:close()
    return nil, err
  end
  local parser = hcore.parser("response", { max_header_bytes = opt(options, "max_handshake") },
    "map")
  local head, used
  while true do
    local left = deadline - now()
    if left <= 0 then
      conn:close()
      return nil, "timeout"
    end
    conn:settimeout(left)
    local data, rerr = conn:receiveany(READ)
    if not data then
      conn:close()
      return nil, rerr
    end
    local name
    head, used, name = parser:feed(data)
    if head then
      used = sub(data, used + 1)
      break
    elseif used then
      conn:close()
      return nil, "bad handshake response: " .. tostring(used) .. (name and "" or "")
    end
  end
  local h = head.headers
  if head.status ~= 101 then
    conn:close()
    return nil, "handshake refused: " .. head.status .. " " .. head.reason
  end
  if not has_token(h.upgrade, "websocket") or not has_token(h.connection, "upgrade")
      or h["sec-websocket-accept"] ~= hcore.accept_key(key) then
    conn:close()
    return nil, "bad handshake response"
  end
  local ws = new(conn, "client", used, options, h["sec-websocket-protocol"])
  ws.headers = h
  return ws
end

return M
