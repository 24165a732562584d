-- support/httpd.lua: a small HTTP/1.1 server written with uvsocket, run as a separate process
-- by the http specs (support/servers.lua starts it). It prints "port N" once it listens on
-- 127.0.0.1, then serves every connection in its own task until it is killed.
--
-- It answers what a production server would not: chunked bodies, redirects of every kind,
-- slow replies, early closes, garbage, huge headers, endless chunk-size lines and silence.
-- Endpoints (query arguments in brackets):
--   /hello                       200 "hello world"
--   /echo                        200, body: request line, header lines, blank line, body
--   /chunked [n, size]           a chunked body of n chunks of size bytes, with a trailer
--   /redirect [code, to]         a redirect with Location `to` (relative or absolute)
--   /loop                        302 to itself
--   /count/N                     302 to /count/N-1; /count/0 answers "arrived"
--   /slow [t]                    waits t seconds, then 200 "slow"
--   /early                       announces 100 bytes, sends 7 and closes
--   /garbage, /badstatus         a status line that is not HTTP's
--   /hugeheader [size]           a header line of `size` bytes (default 1 MiB)
--   /manyheaders                 two MiB of short header lines
--   /overflow                    a chunk size of 2^64
--   /endless                     a chunk-size line that never ends
--   /never                       reads the request and never answers
--   /continue                    100 Continue, then the /echo answer
--   /hints                       103 Early Hints, then 200
--   /fold                        folded and repeated header fields
--   /status [code]               an empty answer with that code
--   /nolength                    a body delimited by the close of the connection
--   /length [v, also, body]      "Content-Length: v" (any text; a second such field with
--                                `also`), then `body` (default "0123456789") and the close
local socket = require("socket")
local async = socket.async

local function parse_query(q)
  local args = {}
  for k, v in (q or ""):gmatch("([^&=]+)=([^&]*)") do
    args[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return args
end

-- Reads one request: line, headers (raw lines and a lower-cased table), and the body.
local function read_request(c)
  local line, err = c:receive()
  if not line then return nil, err end
  local method, target = line:match("^(%S+) (%S+) HTTP/1%.%d$")
  if not method then return nil, "bad request line" end
  local req = { line = line, method = method, target = target, raw = {}, headers = {} }
  -- a request through a proxy names the whole URL
  local local_part = target:match("^%a+://[^/]*(/.*)$") or target
  req.path, req.query = local_part:match("^([^?]*)%??(.*)$")
  req.path = req.path:gsub(";.*", "")
  req.args = parse_query(req.query)
  while true do
    local h = assert(c:receive())
    if h == "" then break end
    req.raw[#req.raw + 1] = h
    local name, value = h:match("^([^:]+):%s*(.*)$")
    req.headers[name:lower()] = value
  end
  return req
end

local function read_body(c, req)
  local h = req.headers
  if h["transfer-encoding"] then
    local parts = {}
    while true do
      local size = tonumber((assert(c:receive()):gsub(";.*", "")), 16)
      if size == 0 then
        repeat local t = assert(c:receive()) until t == ""
        break
      end
      parts[#parts + 1] = assert(c:receive(size))
      assert(c:receive())
    end
    return table.concat(parts)
  elseif h["content-length"] then
    return assert(c:receive(tonumber(h["content-length"])))
  end
  return ""
end

local reasons = { [200] = "OK", [204] = "No Content", [301] = "Moved Permanently",
  [302] = "Found", [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [404] = "Not Found" }

local function respond(c, req, code, fields, body)
  local out = { ("HTTP/1.1 %d %s\r\n"):format(code, reasons[code] or "Whatever") }
  for _, f in ipairs(fields or {}) do out[#out + 1] = f .. "\r\n" end
  if body then out[#out + 1] = ("Content-Length: %d\r\n"):format(#body) end
  out[#out + 1] = "Connection: close\r\n\r\n"
  if body and req.method ~= "HEAD" then out[#out + 1] = body end
  c:send(table.concat(out))
end

local function echo_text(req, body)
  return req.line .. "\n" .. table.concat(req.raw, "\n") .. "\n\n" .. body
end

local handlers = {}

handlers["/hello"] = function(c, req)
  respond(c, req, 200, { "Content-Type: text/plain" }, "hello world")
end

handlers["/echo"] = function(c, req)
  respond(c, req, 200, { "Content-Type: text/plain" }, echo_text(req, read_body(c, req)))
end

handlers["/continue"] = function(c, req)
  c:send("HTTP/1.1 100 Continue\r\n\r\n")
  respond(c, req, 200, {}, echo_text(req, read_body(c, req)))
end

handlers["/hints"] = function(c, req)
  c:send("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
  respond(c, req, 200, {}, "after hints")
end

handlers["/chunked"] = function(c, req)
  local n, size = tonumber(req.args.n or 5), tonumber(req.args.size or 1000)
  c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n"
    .. "Connection: close\r\n\r\n")
  if req.method == "HEAD" then return end
  for i = 1, n do
    local piece = string.char(96 + (i - 1) % 26 + 1):rep(size)
    c:send(("%x%s\r\n"):format(size, i == 1 and ";name=value" or "") .. piece .. "\r\n")
  end
  c:send("0\r\nX-Trailer: done\r\n\r\n")
end

handlers["/redirect"] = function(c, req)
  respond(c, req, tonumber(req.args.code or 302), { "Location: " .. (req.args.to or "/hello") },
    "moved")
end

handlers["/loop"] = function(c, req)
  respond(c, req, 302, { "Location: /loop" }, "")
end

handlers["/status"] = function(c, req)
  local code = tonumber(req.args.code or 204)
  c:send(("HTTP/1.1 %d %s\r\nConnection: close\r\n\r\n"):format(code, reasons[code] or "X"))
end

handlers["/slow"] = function(c, req)
  async.sleep(tonumber(req.args.t or 0.5))
  respond(c, req, 200, {}, "slow")
end

handlers["/early"] = function(c)
  c:send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
end

handlers["/garbage"] = function(c)
  c:send("GARBAGE\r\n\r\nmore garbage")
end

handlers["/badstatus"] = function(c)
  c:send("HTTP/1.1 abc Nope\r\nContent-Length: 0\r\n\r\n")
end

handlers["/hugeheader"] = function(c, req)
  local size = tonumber(req.args.size or 1048576)
  c:send("HTTP/1.1 200 OK\r\nX-Big: " .. ("a"):rep(size) .. "\r\nContent-Length: 0\r\n\r\n")
end

handlers["/manyheaders"] = function(c)
  c:send("HTTP/1.1 200 OK\r\n")
  local line = ("X-Filler: " .. ("b"):rep(100) .. "\r\n"):rep(1000)
  for _ = 1, 20 do
    if not c:send(line) then return end
  end
  c:send("Content-Length: 0\r\n\r\n")
end

handlers["/overflow"] = function(c)
  c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    .. "10000000000000000\r\nabc\r\n0\r\n\r\n")
end

handlers["/endless"] = function(c)
  c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
  local digits = ("f"):rep(8192)
  for _ = 1, 2048 do   -- 16 MiB at most, unless the client hangs up first
    if not c:send(digits) then return end
  end
end

handlers["/never"] = function(c)
  c:settimeout(30)
  c:receive("*a")   -- returns when the client gives up
end

handlers["/fold"] = function(c)
  c:send("HTTP/1.1 200 OK\r\nX-Folded: one\r\n  two\r\n\tthree\r\nX-Twice: a\r\nX-Twice: b\r\n"
    .. "Content-Length: 2\r\n\r\nok")
end

handlers["/nolength"] = function(c, req)
  c:send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
  if req.method ~= "HEAD" then c:send(("z"):rep(50000)) end
end

handlers["/length"] = function(c, req)
  local out = { "HTTP/1.1 200 OK\r\nConnection: close\r\n" }
  out[#out + 1] = "Content-Length: " .. (req.args.v or "") .. "\r\n"
  if req.args.also then out[#out + 1] = "Content-Length: " .. req.args.also .. "\r\n" end
  out[#out + 1] = "\r\n"
  if req.method ~= "HEAD" then out[#out + 1] = req.args.body or "0123456789" end
  c:send(table.concat(out))
end

local function serve(c)
  c:settimeout(10)
  local req = read_request(c)
  if req then
    local count = req.path:match("^/count/(%d+)$")
    if count then
      count = tonumber(count)
      if count == 0 then
        respond(c, req, 200, {}, "arrived")
      else
        respond(c, req, 302, { "Location: /count/" .. (count - 1) }, "")
      end
    else
      local h = handlers[req.path]
      if h then h(c, req) else respond(c, req, 404, {}, "not found: " .. req.path) end
    end
  end
  c:close()
end

async.run(function()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  io.write("port ", port, "\n")
  io.flush()
  while true do
    local c = srv:accept()
    if c then async.spawn(serve, c) end
  end
end)
