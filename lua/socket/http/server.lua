-- socket/http/server.lua: an HTTP/1.1 server on the task runtime (docs/reference/http-server.md).
--
--   local server = require("socket.http.server")
--   async.run(function()
--     local srv = server.listen{ port = 8080, handler = function(req, res)
--       res:header("Content-Type", "text/plain"):finish("hello\n")
--     end }
--   end)
--
-- Pure Lua over socket.async.serve (one task per connection, accept paused at the connection
-- limit and when descriptors run out) and the C++ parsers of socket.http.core. Every read is
-- bounded: the head is read with receiveany() and fed to the head parser under a deadline on
-- the whole head, bodies are read in pieces under the body limit. A connection's requests are
-- handled one after another in its task, so pipelined requests are answered in order.
--
-- The hot path allocates what the API hands out and nothing more: the parser's head table
-- (parser:next) becomes the request and the response, with its header map; status lines, the
-- Date field and lower-cased response field names are cached, and a response the same as the
-- last one reuses its string.
local socket = require("socket")
local hcore = require("socket.http.core")
local serve = require("socket.async.serve")

local async = socket.async
local now, intask, current = async.now, async.intask, async.current
local error, ipairs, pairs, pcall, require, setmetatable, tonumber, tostring, type, xpcall =
  error, ipairs, pairs, pcall, require, setmetatable, tonumber, tostring, type, xpcall
local concat = table.concat
local find, format, gsub, lower, sub, char =
  string.find, string.format, string.gsub, string.lower, string.sub, string.char
local floor, min = math.floor, math.min
local time, date = os.time, os.date
local traceback = debug.traceback
local stderr = io.stderr

local M = {}

-- Limits and timeouts, each overridable in listen{} (the table documents the defaults).
local DEFAULTS = {
  max_request_line = 8192,     -- request line, bytes (414 beyond)
  max_header_line = 8192,      -- one header field line, bytes (431)
  max_headers = 100,           -- header fields (431)
  max_header_bytes = 32768,    -- all header field lines together (431)
  max_body = 8388608,          -- request body, bytes (413)
  header_timeout = 10,         -- seconds for the whole head of a request (408)
  idle_timeout = 30,           -- seconds a kept-alive connection may wait for its next request
  body_timeout = 30,           -- seconds any one read of a request body may wait
  write_timeout = 30,          -- seconds any one write of a response may wait
  max_connections = 1024,      -- connections at once (accepting pauses at the limit)
  max_requests = 0,            -- requests per connection (0: no limit)
  backlog = 1024,              -- listen queue
}
M.DEFAULTS = DEFAULTS

local READ = 16384             -- bytes asked of one receiveany
local DRAIN = 65536            -- unread body bytes read and dropped to keep a connection

-----------------------------------------------------------------------------------------------
-- Cached response pieces
-----------------------------------------------------------------------------------------------

local REASONS = {
  [100] = "Continue", [101] = "Switching Protocols", [200] = "OK", [201] = "Created",
  [202] = "Accepted", [204] = "No Content", [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other", [304] = "Not Modified",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [410] = "Gone", [411] = "Length Required", [413] = "Content Too Large",
  [414] = "URI Too Long", [415] = "Unsupported Media Type", [426] = "Upgrade Required",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [505] = "HTTP Version Not Supported",
}
M.REASONS = REASONS

local status_lines = setmetatable({}, { __index = function(t, code)
  local line = format("HTTP/1.1 %d %s\r\n", code, REASONS[code] or "Unknown")
  t[code] = line
  return line
end })

-- "Content-Length: n\r\n", cached for the lengths seen (bounded).
local length_count = 0
local length_lines
length_lines = setmetatable({}, { __index = function(t, n)
  local line = "Content-Length: " .. n .. "\r\n"
  if length_count < 4096 then
    length_count = length_count + 1
    t[n] = line
  end
  return line
end })

-- "Date: ...\r\n", made again when the second changes.
local date_second, date_field = -1, ""
local function date_line()
  local t = time()
  if t ~= date_second then
    date_second = t
    date_field = "Date: " .. date("!%a, %d %b %Y %H:%M:%S GMT", t) .. "\r\n"
  end
  return date_field
end

-- Lower-cased field names of responses, cached (bounded: names normally come from code); a
-- name is in the cache only once it was checked to be a token.
local lower_cache, lower_count = {}, 0
local function lower_name(name)
  local l = lower_cache[name]
  if not l then
    l = lower(name)
    if lower_count >= 1024 then lower_cache, lower_count = {}, 0 end
    lower_cache[name] = l
    lower_count = lower_count + 1
  end
  return l
end

-----------------------------------------------------------------------------------------------
-- Errors of handlers: reported like a failed task's (async.onerror's handler, else stderr)
-----------------------------------------------------------------------------------------------

local function report(req, err, tb)
  local handler = async.onerror(nil)
  async.onerror(handler)
  local task = current()
  if handler then
    local ok, herr = pcall(handler, task, err, tb)
    if ok then return end
    stderr:write("socket.async: the error handler failed: ", tostring(herr), "\n")
  end
  stderr:write(format("socket.async: task %d '%s' (http handler of %s %s) failed: %s\n",
    task:id(), tostring(task:name()), tostring(req.method), tostring(req.target),
    tostring(tb)))
end

-- The message handler of the handler's xpcall: keeps the error value, returns its traceback.
local failure
local function on_error(e)
  failure = e
  return traceback(tostring(e), 2)
end

-----------------------------------------------------------------------------------------------
-- Connection I/O
-----------------------------------------------------------------------------------------------

-- Sets the socket's timeout, unless it is set already (the idle and write timeouts are usually
-- the same, so a kept-alive connection mostly sets none).
local function timeout(conn, t)
  if conn.tmo ~= t then
    conn.sock:settimeout(t)
    conn.tmo = t
  end
end

-- Sends `data` under the write timeout; a failure marks the connection dead.
local function send(conn, data)
  if conn.dead then return nil, conn.dead end
  local t = conn.srv.write_timeout
  if conn.tmo ~= t then timeout(conn, t) end
  local ok, err = conn.sock:send(data)
  if not ok then
    conn.dead = err
    return nil, err
  end
  return true
end

-- One receiveany under `timeout` seconds.
local function recv(conn, t)
  timeout(conn, t)
  return conn.sock:receiveany(READ)
end

-- Closes the sending side, then reads and drops what the peer still sends for a moment, so
-- that an error answer is not lost in a reset caused by unread request bytes.
local function linger(conn)
  local sock = conn.sock
  if sock.shutdown then sock:shutdown("send") end
  timeout(conn, 0.5)
  local t0, got = now(), 0
  while got < 262144 and now() - t0 < 1 do
    local data = sock:receiveany(READ)
    if not data then break end
    got = got + #data
  end
end

-- Answers a request that cannot be served (limits, protocol faults) and ends the connection.
local function reply_error(conn, code, why)
  local body = (REASONS[code] or "Error") .. (why and (": " .. why) or "") .. "\n"
  send(conn, status_lines[code] .. date_line() .. "Content-Type: text/plain\r\nContent-Length: "
    .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
  conn.close = true
  linger(conn)
end

-----------------------------------------------------------------------------------------------
-- Requests
-----------------------------------------------------------------------------------------------

local Request = {}
Request.__index = Request
M.Request = Request
Request._got = 0   -- decoded bytes of a chunked body so far

local function body_fail(req, err, code)
  req._err, req._errcode = err, code
  req._conn.close = true
  return nil, err
end

-- The interim 100 Continue, once, when the handler first asks for the body of a request that
-- expects it (and no response has started).
local function continue100(req)
  if req.expect_continue and not req._continued then
    req._continued = true
    if not req._sent then send(req._conn, "HTTP/1.1 100 Continue\r\n\r\n") end
  end
end

-- Reads the next piece of the body (at most about `n` bytes): a string, nil at its end, or
-- nil, err.
local function body_piece(req, n)
  if req._done then return nil end
  if req._err then return nil, req._err end
  local framing = req.framing
  if framing == "none" then
    -- no body: nothing to read, and no 100 Continue to send for it (regression 501)
    req._done = true
    return nil
  end
  local conn = req._conn
  continue100(req)
  if framing == "length" then
    local left = req._left or req.length
    if left == 0 then
      req._done = true
      return nil
    end
    local piece
    local buf = conn.buf
    if buf ~= "" then
      local k = min(left, n)
      if #buf <= k then
        piece, conn.buf = buf, ""
      else
        piece, conn.buf = sub(buf, 1, k), sub(buf, k + 1)
      end
    else
      local err
      timeout(conn, conn.srv.body_timeout)
      piece, err = conn.sock:receiveany(min(left, n, READ))
      if not piece then
        return body_fail(req, err == "timeout" and "timeout" or err, err == "timeout" and 408)
      end
    end
    left = left - #piece
    req._left = left
    if left == 0 then req._done = true end
    return piece
  elseif framing == "chunked" then
    local dec = conn.chunked
    if not dec then
      dec = hcore.chunked()
      conn.chunked = dec
    end
    while true do
      local data = conn.buf
      conn.buf = ""
      if data == "" then
        local err
        data, err = recv(conn, conn.srv.body_timeout)
        if not data then
          return body_fail(req, err == "timeout" and "timeout" or err, err == "timeout" and 408)
        end
      end
      local out, used, done = dec:feed(data)
      if not out then return body_fail(req, used, done) end
      local got = req._got + #out
      req._got = got
      if got > conn.srv.max_body then return body_fail(req, "body too large", 413) end
      if done then
        if used < #data then conn.buf = sub(data, used + 1) end
        req._done = true
        dec:reset()
        if out == "" then return nil end
        return out
      end
      if out ~= "" then return out end
    end
  end
  req._done = true
  return nil
end

-- req:body() -> the whole body (what is left of it), or nil, err
function Request:body()
  local whole = self._body
  if whole then return whole end
  if self.framing == "length" and not self._done and not self._err then
    -- One counted receive for what the buffer does not hold.
    continue100(self)
    local conn = self._conn
    local left, buf = self._left or self.length, conn.buf
    if #buf >= left then
      whole, conn.buf = sub(buf, 1, left), sub(buf, left + 1)
    else
      conn.buf = ""
      timeout(conn, conn.srv.body_timeout)
      local rest, err = conn.sock:receive(left - #buf)
      if not rest then
        return body_fail(self, err == "timeout" and "timeout" or err, err == "timeout" and 408)
      end
      whole = buf .. rest
    end
    self._left, self._done = 0, true
  else
    local parts, n = {}, 0
    while true do
      local piece, err = body_piece(self, READ)
      if not piece then
        if err then return nil, err end
        break
      end
      n = n + 1
      parts[n] = piece
    end
    whole = concat(parts)
  end
  self._body = whole
  return whole
end

-- req:source([size]) -> an ltn12 source of the body, in pieces of at most `size` bytes
function Request:source(size)
  size = size or READ
  return function()
    return body_piece(self, size)
  end
end

local function unescape(s)
  s = gsub(s, "+", " ")
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

-- req:params() -> the query string decoded: { name = value } (a repeated name keeps the last
-- value; every value of it is in the list params[name .. "[]"])
function Request:params()
  local p = self._params
  if p then return p end
  p = {}
  local q = self.query
  if q then
    for pair in q:gmatch("[^&;]+") do
      local k, v = pair:match("^([^=]*)=?(.*)$")
      k, v = unescape(k), unescape(v)
      p[k] = v
      local list = p[k .. "[]"]
      if not list then
        list = {}
        p[k .. "[]"] = list
      end
      list[#list + 1] = v
    end
  end
  self._params = p
  return p
end

-- req:peer() -> ip, port of the client
function Request:peer()
  return self._conn.sock:getpeername()
end

-----------------------------------------------------------------------------------------------
-- Responses
-----------------------------------------------------------------------------------------------

local Response = {}
Response.__index = Response
M.Response = Response

local TOKEN = "^[%w!#$%%&'*+%-.^_`|~]+$"
-- Field values already checked (bounded, like the name cache).
local good_values, good_count = {}, 0

-- res:status(code) -> res
function Response:status(code)
  if type(code) ~= "number" or code < 100 or code > 999 or code % 1 ~= 0 then
    error("bad argument #1 to 'status' (status code expected)", 2)
  end
  if self._sent then error("response head already sent", 2) end
  self._status = code
  return self
end

-- res:header(name, value) -> res: adds a field (call again for a repeated field)
function Response:header(name, value)
  local l = lower_cache[name]
  if not l then
    if type(name) ~= "string" or not find(name, TOKEN) then
      error("bad argument #1 to 'header' (field name expected)", 2)
    end
    l = lower_name(name)
  end
  if not good_values[value] then
    -- (only strings that were checked are in good_values: a value found there is one)
    local tv = type(value)
    if tv == "number" then
      value = tostring(value)
    elseif tv ~= "string" then
      error("bad argument #2 to 'header' (string expected)", 2)
    end
    if find(value, "[\r\n%z]") then error("bad argument #2 to 'header' (CR, LF or NUL)", 2) end
    if good_count >= 1024 then good_values, good_count = {}, 0 end
    good_values[value], good_count = true, good_count + 1
  end
  if self._sent then error("response head already sent", 2) end
  if l == "content-length" then
    local n = tonumber(value)
    if not n or n < 0 or n % 1 ~= 0 then error("bad argument #2 to 'header' (length)", 2) end
    self._length = n
    return self
  elseif l == "transfer-encoding" then
    error("bad argument #1 to 'header' (Transfer-Encoding is the server's)", 2)
  elseif l == "connection" and find(lower(value), "close", 1, true) then
    self._close = true
  end
  -- Names and values go to the connection's list (reused by every response), as pairs; the
  -- connection counts them (the response being made is its only one whose head is not sent).
  local conn = self._conn
  local h = conn.fields
  local n = conn.nh
  h[n + 1], h[n + 2] = name, value
  conn.nh = n + 2
  return self
end

-- Whether a request body left unread makes the connection end after the response: it cannot
-- be skipped (head_of tests the other reasons to close).
local function unread_body_closes(req)
  if req._err then return true end
  if req.expect_continue and not req._continued then return true end
  if req.framing == "length" and (req._left or req.length) > DRAIN then return true end
  return false
end

-- The last response of at most four fields made by head_of, with what it was made of.
local last = { code = false }
local LAST_BODY = 1024         -- longest body kept in `last`

-- The head of the response, with `length` as its Content-Length when the body is known.
-- Sets res._chunked for a body of unknown length to an HTTP/1.1 client.
local function head_of(res, length, body)
  local req, conn = res, res._conn
  local code = res._status
  local bodyless = code < 200 or code == 204 or code == 304
  local nobody = bodyless or req.method == "HEAD"
  if nobody then res._nobody = true end
  -- The connection ends after this response when the client or the handler said so, the
  -- server is closing, max_requests is reached or the request body cannot be skipped.
  local srv = conn.srv
  local close = res._close or conn.close or not req.keepalive or srv.closing
    or (srv.max_requests > 0 and conn.count >= srv.max_requests)
    or (req.framing ~= "none" and not req._done and unread_body_closes(req))
  local framing = ""
  if not bodyless then
    length = res._length or length
    if length then
      framing = length_lines[length]
    elseif req.version == "1.1" then
      res._chunked = true
      framing = "Transfer-Encoding: chunked\r\n"
    else
      close = true  -- an HTTP/1.0 body of unknown length ends with the connection
    end
  end
  local connection = ""
  if code ~= 101 and close then
    conn.close = true
    connection = "Connection: close\r\n"
  elseif req.version == "1.0" then
    connection = "Connection: keep-alive\r\n"
  end
  if not body or nobody then body = "" end
  res._sent = true
  local nh = conn.nh
  local h = conn.fields
  local dline = date_field
  local t = time()
  if t ~= date_second then dline = date_line() end
  if nh <= 4 then
    -- The same response as the last one made (a server answers alike within the second its
    -- Date names): the string made then is sent again, with no concatenation to make and no
    -- string to collect.
    if code == last.code and dline == last.date and nh == last.nh and framing == last.framing
        and connection == last.connection and body == last.body
        and (nh == 0 or (h[1] == last[1] and h[2] == last[2]
          and (nh == 2 or (h[3] == last[3] and h[4] == last[4])))) then
      return last.out
    end
    -- One concatenation makes one string: the usual heads (up to two fields) are built so.
    local out
    if nh == 0 then
      out = status_lines[code] .. dline .. framing .. connection .. "\r\n" .. body
    elseif nh == 2 then
      out = status_lines[code] .. dline .. h[1] .. ": " .. h[2] .. "\r\n" .. framing
        .. connection .. "\r\n" .. body
    else
      out = status_lines[code] .. dline .. h[1] .. ": " .. h[2] .. "\r\n" .. h[3] .. ": "
        .. h[4] .. "\r\n" .. framing .. connection .. "\r\n" .. body
    end
    if #body <= LAST_BODY then
      last.code, last.date, last.nh, last.framing, last.connection, last.body, last.out =
        code, dline, nh, framing, connection, body, out
      last[1], last[2], last[3], last[4] = h[1], h[2], h[3], h[4]
    end
    return out
  end
  local parts = conn.out
  parts[1], parts[2] = status_lines[code], dline
  local n = 2
  for i = 1, nh, 2 do
    parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = h[i], ": ", h[i + 1], "\r\n"
    n = n + 4
  end
  parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = framing, connection, "\r\n", body
  return concat(parts, "", 1, n + 4)
end

local function check_open(res)
  if res._finished then error("response already finished", 3) end
  local conn = res._conn
  if conn.dead then return nil, conn.dead end
  return true
end

-- res:write(chunk) -> true, or nil, err: sends a piece of the body (the head first)
function Response:write(chunk)
  local tc = type(chunk)
  if tc == "number" then
    chunk = tostring(chunk)
  elseif tc ~= "string" then
    error("bad argument #1 to 'write' (string expected)", 2)
  end
  local ok, err = check_open(self)
  if not ok then return nil, err end
  local conn = self._conn
  local size = #chunk
  local head = ""
  if not self._sent then head = head_of(self, nil) end
  local written = self._written + size
  self._written = written
  if self._length and written > self._length then
    conn.close = true
    error("body larger than its Content-Length", 2)
  end
  if self._nobody or size == 0 then
    if head ~= "" then return send(conn, head) end
    return true
  end
  if self._chunked then
    return send(conn, head .. format("%x\r\n", size) .. chunk .. "\r\n")
  end
  return send(conn, head .. chunk)
end

-- res:finish([body]) -> true, or nil, err: sends the rest (the whole response when nothing was
-- sent yet, with its Content-Length) and ends it
function Response:finish(body)
  if body ~= nil and type(body) ~= "string" then
    if type(body) ~= "number" then error("bad argument #1 to 'finish' (string expected)", 2) end
    body = tostring(body)
  end
  if self._finished then error("response already finished", 2) end
  local conn = self._conn
  local ok, err
  if conn.dead then return nil, conn.dead end
  if not self._sent then
    body = body or ""
    self._finished = true
    local length = self._length
    if length and length ~= #body then
      conn.close = true
      error("body size differs from its Content-Length", 2)
    end
    return send(conn, head_of(self, #body, body))
  end
  if body and body ~= "" then
    ok, err = self:write(body)
    if not ok then
      self._finished = true
      return nil, err
    end
  end
  self._finished = true
  if self._length and self._written ~= self._length then
    conn.close = true  -- the peer waits for bytes that will not come: only closing ends it
    return nil, "body shorter than its Content-Length"
  end
  if self._chunked and not self._nobody then return send(conn, "0\r\n\r\n") end
  return true
end

-- res:sink() -> an ltn12 sink: each chunk is written, nil finishes the response
function Response:sink()
  return function(chunk, err)
    if chunk == nil then
      if err then
        self._conn.close = true
        return nil, err
      end
      local ok, ferr = self:finish()
      if not ok then return nil, ferr end
      return 1
    end
    local ok, werr = self:write(chunk)
    if not ok then return nil, werr end
    return 1
  end
end

-- res:sent() -> whether the head has been sent
function Response:sent()
  return self._sent == true
end

-- res:_upgrade() -> socket, buffered: sends the head of a 101 response and hands over the
-- connection (socket.websocket uses it); the connection ends when the handler returns.
function Response:_upgrade()
  if self._status ~= 101 then error("upgrade needs status 101", 2) end
  local conn = self._conn
  local ok, err = send(conn, head_of(self, nil))
  self._finished = true
  conn.upgraded = true
  conn.close = true
  if not ok then return nil, err end
  local buf = conn.buf
  conn.buf = ""
  conn.tmo = nil
  return conn.sock, buf
end

-- The request and its response are one table, the parser's head table, with the methods of
-- both (their names do not overlap) and the response's initial state as defaults: a request
-- costs one table besides its header map. req and res are the same object to the handler.
local Exchange = {}
for k, v in pairs(Request) do Exchange[k] = v end
for k, v in pairs(Response) do Exchange[k] = v end
Exchange.__index = Exchange
Exchange._status, Exchange._written = 200, 0
Exchange._length, Exchange._sent, Exchange._finished = false, false, false
Exchange._nobody, Exchange._chunked, Exchange._close = false, false, false
M.Exchange = Exchange

-----------------------------------------------------------------------------------------------
-- The connection loop
-----------------------------------------------------------------------------------------------

-- Reads the next request head: returns the head table, or nil when the connection should end
-- (an error answer, if one is due, has been sent).
local function read_head(conn)
  local srv = conn.srv
  local data = conn.buf
  conn.buf = ""
  local deadline
  if data == "" then
    -- Nothing buffered: wait for the first byte, idle (after a request) or under the head
    -- deadline (a new connection, whose deadline runs from the accept). Only a kept-alive
    -- connection is idle, closed by a shutdown: a new one may hold a request not read yet
    -- (closing it would reset the client), so it is served, with Connection: close.
    local first = conn.count == 0
    conn.idle = not first
    if first then
      deadline = conn.t0 + srv.header_timeout
      local left = deadline - now()   -- (a TLS handshake may have used it up)
      if left <= 0 then
        conn.idle = false
        return nil
      end
      data = recv(conn, left)
    else
      local t = srv.idle_timeout
      if conn.tmo ~= t then timeout(conn, t) end
      data = conn.sock:receiveany(READ)
    end
    conn.idle = false
    if not data then return nil end
    if srv.closing and not first then return nil end
  end
  local parser, next_head = conn.parser, conn.next_head
  while true do
    local head, used, code = next_head(parser, data, Exchange)
    if head then
      if used < #data then conn.buf = sub(data, used + 1) end
      head._conn = conn
      return head
    elseif used then
      reply_error(conn, code, used)
      return nil
    end
    -- The head is not complete: its deadline runs from the first byte, which came just now.
    deadline = deadline or now() + srv.header_timeout
    local left = deadline - now()
    if left <= 0 then
      reply_error(conn, 408)
      return nil
    end
    local err
    data, err = recv(conn, left)
    if not data then
      if err == "timeout" then reply_error(conn, 408) end
      return nil
    end
  end
end


-- Reads and drops a small unread body so that the connection can serve the next request.
local function skip_body(req)
  while true do
    local piece = body_piece(req, READ)
    if not piece then return end
    req._skipped = (req._skipped or 0) + #piece
    if req._skipped > DRAIN then
      req._conn.close = true
      return
    end
  end
end

-- What follows the handler's call, unless the handler finished its response and there is no
-- body to skip (the connection loop tests that itself).
local function handled(conn, req, ok, err)
  local res = req  -- one table is both (see Exchange)
  if not ok then
    report(req, failure, err)
    failure = nil
    if not res._sent and not conn.dead then
      res._status, res._length, res._close = 500, nil, true
      conn.nh = 0
      local body = "Internal Server Error\n"
      send(conn, head_of(res, #body, body))
    end
    conn.close = true
    return
  end
  if conn.upgraded then
    local on_end = conn.on_end
    if on_end then
      conn.on_end = nil
      local eok, eerr = xpcall(on_end, on_error)
      if not eok then report(req, failure, eerr) end
      failure = nil
    end
    return
  end
  if not res._finished and not conn.dead then
    if not res._sent and req._errcode then
      -- The body could not be read (too large, too slow, malformed): answer that.
      local code = req._errcode
      res._status, res._length = code, nil
      conn.nh = 0
      local body = (REASONS[code] or "Error") .. "\n"
      res._finished = true
      send(conn, head_of(res, #body, body))
    else
      local fok = pcall(res.finish, res)
      if not fok then conn.close = true end
    end
  end
  if req.framing ~= "none" and not req._done and not conn.close and not conn.dead then
    skip_body(req)
  end
end

local function connection(srv, client)
  local sock = client
  if srv.wrap then
    sock:settimeout(srv.header_timeout)
    local wrapped, err = srv.wrap(client)
    if not wrapped then return nil, err end  -- the handshake failed: no handler runs
    sock = wrapped
  end
  local parser = hcore.parser("request", srv.limits, "map")
  local conn = { srv = srv, sock = sock, buf = "", out = {}, fields = {}, nh = 0, count = 0,
                 t0 = now(), parser = parser, next_head = parser.next, idle = false,
                 close = false, dead = false, upgraded = false }
  local handler = srv.handler
  srv.conns[conn] = true
  while true do
    local head = read_head(conn)
    if not head then break end
    conn.count = conn.count + 1
    if head.framing == "length" and head.length > srv.max_body then
      reply_error(conn, 413)
      break
    end
    -- The head is the request and the response (an Exchange, with path and query: parser:next).
    conn.nh = 0
    local ok, err = xpcall(handler, on_error, head, head)
    if not ok or conn.upgraded or not head._finished or head.framing ~= "none" then
      handled(conn, head, ok, err)
    end
    if conn.close or conn.dead then break end
  end
  srv.conns[conn] = nil
  if sock ~= client then sock:close() end
end

-----------------------------------------------------------------------------------------------
-- Servers
-----------------------------------------------------------------------------------------------

local Server = {}
Server.__index = Server
M.Server = Server

-- Closes the kept-alive connections that wait for a request; in-flight requests finish and
-- their connections close after the response.
local function close_idle(srv)
  srv.closing = true
  for conn in pairs(srv.conns) do
    if conn.idle then conn.sock:close() end
  end
end

-- server:getsockname() -> ip, port, family
function Server:getsockname()
  return self._sock:getsockname()
end

-- server:close() -> true: stops accepting and closes idle connections
function Server:close()
  if self._closed then return true end
  self._closed = true
  serve._unserve(self._sock)
  self._sock:close()
  close_idle(self._state)
  return true
end

-- server:connections() -> the number of open connections
function Server:connections()
  local n = 0
  for _ in pairs(self._state.conns) do n = n + 1 end
  return n
end

local function tls_wrapper(params)
  local ok, tls = pcall(require, "socket.tls")
  if not ok or type(tls) ~= "table" or type(tls.wrap) ~= "function" then
    error("TLS not available", 3)
  end
  if type(params) == "table" and params.mode == nil then
    local p = { mode = "server" }
    for k, v in pairs(params) do p[k] = v end
    params = p
  end
  return function(sock)
    local conn, err = tls.wrap(sock, params)
    if not conn then return nil, err end
    if conn.dohandshake then
      local hok, herr = conn:dohandshake()
      if not hok then
        conn:close()
        return nil, herr
      end
    end
    return conn
  end
end

-- A socket bound (not listening) with SO_REUSEPORT, for listen{reuseport = true}: it holds the
-- port in the supervisor while each worker listens on a socket of its own.
local function reuseport_master(host, port)
  local candidates, err = socket.dns.getaddrinfo(host == "*" and "0.0.0.0" or host)
  if not candidates then return nil, err end
  for _, candidate in ipairs(candidates) do
    local sock = assert((candidate.family == "inet6" and socket.tcp6 or socket.tcp4)())
    sock:setoption("reuseaddr", true)
    sock:setoption("reuseport", true)
    local ok
    ok, err = sock:bind(candidate.addr, port)
    if ok then return sock end
    sock:close()
  end
  return nil, err
end

local LIMIT_KEYS = { "max_request_line", "max_header_line", "max_headers", "max_header_bytes",
  "max_body", "header_timeout", "idle_timeout", "body_timeout", "write_timeout",
  "max_connections", "max_requests", "backlog" }
local KNOWN = { host = true, port = true, handler = true, tls = true, wrap = true,
                workers = true, reuseport = true, init = true, init_worker = true, reload = true,
                grace = true }
for _, k in ipairs(LIMIT_KEYS) do KNOWN[k] = true end

-- server.listen{ host =, port =, handler =, limits... } -> server, or nil, err
function M.listen(options)
  if type(options) ~= "table" then error("bad argument #1 to 'listen' (table expected)", 2) end
  for k in pairs(options) do
    if not KNOWN[k] then error("bad argument #1 to 'listen' (unknown option '"
      .. tostring(k) .. "')", 2) end
  end
  if type(options.handler) ~= "function" then
    error("bad argument #1 to 'listen' (handler must be a function)", 2)
  end
  local workers = options.workers
  if workers == nil and not intask() then
    error("socket.http.server.listen must be called in a task", 2)
  elseif workers ~= nil and intask() then
    error("socket.http.server.listen with workers must be called outside socket.async.run", 2)
  end
  local srv = { handler = options.handler, conns = {}, closing = false }
  for _, k in ipairs(LIMIT_KEYS) do
    local v = options[k]
    if v == nil then
      v = DEFAULTS[k]
    elseif type(v) ~= "number" or v < 0 then
      error("bad argument #1 to 'listen' (" .. k .. " must be a number >= 0)", 2)
    end
    srv[k] = v
  end
  srv.limits = { max_start_line = floor(srv.max_request_line),
                 max_header_line = floor(srv.max_header_line),
                 max_headers = floor(srv.max_headers),
                 max_header_bytes = floor(srv.max_header_bytes) }
  if options.wrap ~= nil then
    if type(options.wrap) ~= "function" then
      error("bad argument #1 to 'listen' (wrap must be a function)", 2)
    end
    srv.wrap = options.wrap
  elseif options.tls ~= nil then
    srv.wrap = tls_wrapper(options.tls)
  end
  if workers ~= nil then
    if type(workers) ~= "number" or workers < 0 or workers ~= floor(workers) then
      error("bad argument #1 to 'listen' (workers must be an integer >= 0)", 2)
    end
    for _, k in ipairs({ "init", "init_worker", "reload" }) do
      if options[k] ~= nil and type(options[k]) ~= "function" then
        error("bad argument #1 to 'listen' (" .. k .. " must be a function)", 2)
      end
    end
    if options.grace ~= nil and (type(options.grace) ~= "number" or options.grace ~= options.grace
        or options.grace < 0) then
      error("bad argument #1 to 'listen' (grace must be a number >= 0)", 2)
    end
  end
  if options.reuseport ~= nil and type(options.reuseport) ~= "boolean" then
    error("bad argument #1 to 'listen' (reuseport must be a boolean)", 2)
  elseif options.reuseport and workers == nil then
    error("bad argument #1 to 'listen' (reuseport needs workers)", 2)
  end
  local host, port = options.host or "127.0.0.1", options.port or 0
  local sock, err
  if options.reuseport then
    sock, err = reuseport_master(host, port)
  else
    sock, err = socket.bind(host, port, floor(srv.backlog))
  end
  if not sock then return nil, err end
  local max = srv.max_connections
  local object = setmetatable({ _sock = sock, _state = srv }, Server)
  local opts = { max = max >= 1 and max or nil, onshutdown = function() close_idle(srv) end }
  if workers ~= nil then
    -- Worker processes: this call supervises them and returns once the group has stopped.
    local init = options.init
    opts.workers, opts.reuseport, opts.grace = workers, options.reuseport, options.grace
    opts.init_worker, opts.reload = options.init_worker, options.reload
    opts.backlog = floor(srv.backlog) >= 1 and floor(srv.backlog) or nil
    if init then opts.init = function() init(object) end end
    return serve.serve(sock, function(client) connection(srv, client) end, opts)
  end
  serve.serve(sock, function(client) connection(srv, client) end, opts)
  return object
end

return M
