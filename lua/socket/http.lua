-- socket/http.lua: an HTTP/1.1 client with the API of LuaSocket 3.1's `socket.http`:
-- http.request in its simple and generic forms, the low-level connection object of http.open,
-- and the "http-chunked" source and sink.
--
-- Pure Lua over socket calls (connect, send, receive, select), so a request blocks in a plain
-- script and yields inside a task of socket.async: many tasks can each run requests at the same
-- time in one thread. Every request uses a new connection and asks the server to close it,
-- unless the program asks for a keep-alive pool (http.pool, docs/reference/http-pool.md).
--
-- What the server sends is bounded: a status, header or chunk-size line longer than
-- http.MAXLINE bytes, or a header block (or trailer) larger than http.MAXHEADERS bytes, ends the
-- request with an error instead of growing without limit.
--
-- Loading it stores the module in the socket namespace (socket.http) and adds "http-chunked"
-- to socket.sourcet and socket.sinkt, as LuaSocket's does.
local socket = require("socket")
local url = require("socket.url")
local ltn12 = require("ltn12")
local mime = require("mime")
local headers = require("socket.headers")
local tp = require("socket.tp")

local M = {}

local error, ipairs, pairs, pcall, require, setmetatable, tonumber, tostring, type =
  error, ipairs, pairs, pcall, require, setmetatable, tonumber, tostring, type
local concat, sort = table.concat, table.sort
local byte, find, format, gmatch, gsub, lower, match, sub = string.byte, string.find,
  string.format, string.gmatch, string.gsub, string.lower, string.match, string.sub
local try, newtry, protect = socket.try, socket.newtry, socket.protect
local readline, bounded_of = tp.readline, tp._bounded_of

-- Module settings, read at each request.
M.TIMEOUT = 60                 -- seconds any one socket call of a request may wait
M.USERAGENT = socket._VERSION  -- sent as User-Agent
M.PROXY = nil                  -- proxy URL used when a request names none
M.MAXLINE = 65536              -- longest status, header or chunk-size line accepted (bytes)
M.MAXHEADERS = 1048576         -- largest header block (or trailer block) accepted (bytes)

-- Size of the pieces a response body is read in.
local BLOCK = 16384
-- Interim (1xx) responses skipped before one is taken as an error.
local MAX_INTERIM = 32

-----------------------------------------------------------------------------------------------
-- Schemes: the default port and the socket factory of each URL scheme a request may use.
-- schemes[name].create(reqt) returns a function that makes the socket.
-----------------------------------------------------------------------------------------------
local schemes = {}
M.schemes = schemes

local function http_create() return socket.tcp end

schemes.http = {
  port = 80,
  create = http_create,
}

-- schemes.https (socket.tls) is defined with the requests below.

-----------------------------------------------------------------------------------------------
-- Reading responses
-----------------------------------------------------------------------------------------------

-- One line of at most MAXLINE bytes; `what` names it in the "too long" error.
local function getline(sock, what)
  local line, err = readline(sock, M.MAXLINE)
  if not line and err == "line too long" then err = what .. " too long" end
  return line, err
end

-- (nextline's answer for a line that failed or passed the limit; read_headers makes the
-- receive itself and calls it only then)
local function line_error(line, err, what)
  if line then return nil, what .. " too long" end
  if err == "oversized" then err = what .. " too long" end
  return nil, err
end

-- getline on `inner`, the socket tp._bounded_of found for `sock` (false for none): one receive
-- with a maxsize, what tp.readline does without finding the socket again for every line.
local function nextline(sock, inner, what)
  if not inner then return getline(sock, what) end
  local limit = M.MAXLINE
  local line, err = inner:receive("*l", nil, limit + 2)
  if line and #line <= limit then return line end
  return line_error(line, err, what)
end

-- Field lines seen before, by the whole line: the lower-case name and the value read_headers
-- makes of it (a server sends the same lines again and again: Server, Content-Type, even Date
-- for a second). Only short lines (Lua's interned strings, so a lookup is one hash) and a
-- bounded number of them.
local line_names, line_values, nlines = {}, {}, 0
local LINES_MAX = 256
local LINE_KEPT = 40

-- Reads header lines up to the blank line that ends them, into `into` (a new table if nil):
-- names lower-cased, values after the colon and the spaces that follow it, folded lines
-- appended to the value they continue, repeated fields joined with ", ".
-- Returns the table, or nil, err.
local function read_headers(sock, into, inner)
  if inner == nil then inner = bounded_of(sock) or false end
  -- (a new table made with room for 8 fields, the size of a usual response's header block, so
  -- that it is not grown field by field; a nil in a constructor stores nothing)
  local fields = into or { a = nil, b = nil, c = nil, d = nil, e = nil, f = nil }
  local repeated  -- name -> the values of a field seen more than once
  local limit = M.MAXLINE
  local max = limit + 2
  -- (nextline, written out here for the common case: a call per line counts)
  local line, err
  if inner then
    line, err = inner:receive("*l", nil, max)
    if not line or #line > limit then line, err = line_error(line, err, "header line") end
  else
    line, err = getline(sock, "header line")
  end
  if not line then return nil, err end
  local size = #line
  while line ~= "" do
    local name = line_names[line]
    local value
    if name then
      value = line_values[line]
    else
      name, value = match(line, "^([^:]+):%s*(.*)$")
      if not name then return nil, "malformed response headers" end
      name = lower(name)
      if #line <= LINE_KEPT then
        if nlines >= LINES_MAX then line_names, line_values, nlines = {}, {}, 0 end
        line_names[line], line_values[line], nlines = name, value, nlines + 1
      end
    end
    while true do
      if inner then
        line, err = inner:receive("*l", nil, max)
        if not line or #line > limit then line, err = line_error(line, err, "header line") end
      else
        line, err = getline(sock, "header line")
      end
      if not line then return nil, err end
      size = size + #line
      if size > M.MAXHEADERS then return nil, "response headers too long" end
      local first = byte(line)
      if first ~= 32 and first ~= 9 then break end  -- not a folded line (space, tab)
      value = value .. line
    end
    -- Repeated fields gather in a list, joined once at the end: joining as they come copies
    -- the growing value for every line, quadratic in what a peer sends.
    local previous = fields[name]
    if previous == nil then
      fields[name] = value
    else
      local list = repeated and repeated[name]
      if not list then
        repeated = repeated or {}
        list = { previous }
        repeated[name] = list
      end
      list[#list + 1] = value
    end
  end
  if repeated then
    for name, list in pairs(repeated) do fields[name] = concat(list, ", ") end
  end
  return fields
end

-- The code of status lines seen before, and whether they are HTTP/1.1's (a server sends the
-- same few lines again and again).
local status_codes, http11, nstatus = {}, {}, 0
local STATUS_MAX = 64

-- Reads the status line: returns the code (a number) and the line, or nil, err.
local function read_status(sock, inner)
  if inner == nil then inner = bounded_of(sock) or false end
  local line, err = nextline(sock, inner, "status line")
  if not line then return nil, err end
  local code = status_codes[line]
  if code then return code, line end
  code = match(line, "^HTTP/%d+%.%d+ (%d%d%d)%f[^%d]")
  if not code then return nil, "invalid status line" end
  code = tonumber(code)
  if nstatus >= STATUS_MAX then status_codes, http11, nstatus = {}, {}, 0 end
  status_codes[line], http11[line], nstatus = code, match(line, "^HTTP/1%.1 ") ~= nil,
    nstatus + 1
  return code, line
end

-- A source of exactly `length` bytes of the socket.
local function length_source(sock, length)
  return function()
    if length <= 0 then return nil end
    local n = length < BLOCK and length or BLOCK
    local chunk, err = sock:receive(n)
    if not chunk then return nil, err end
    length = length - n
    return chunk
  end
end

-- A source of everything the socket sends until the peer closes.
local function closed_source(sock)
  local done = false
  return function()
    if done then return nil end
    local chunk, err, partial = sock:receive(BLOCK)
    if chunk then return chunk end
    if err ~= "closed" then return nil, err end
    done = true
    if partial ~= "" then return partial end
    return nil
  end
end

-- The size of a chunk from its size line ("1a2b;ext=1"), or nil for anything that is not a
-- hexadecimal number that fits comfortably in a Lua integer.
local function chunk_size(line)
  local hex = match(gsub(line, ";.*", ""), "^%s*(%x+)%s*$")
  if not hex then return nil end
  hex = gsub(hex, "^0+(%x)", "%1")
  if #hex > 15 then return nil end
  return tonumber(hex, 16)
end

-- The body length a Content-Length value announces, or nil for a value that cannot be used:
-- anything but decimal digits (a sign included), more than 15 significant digits, or a list of
-- different lengths. A field sent twice arrives joined with ", " (read_headers); copies of one
-- length are that length (RFC 9110 section 8.6).
local function content_length(value)
  -- (the common case first: a plain number, at most 15 digits)
  if #value <= 15 and not find(value, "%D") then
    local n = tonumber(value)
    if n then return n end
  end
  local length
  for item in gmatch(value .. ",", "([^,]*),") do
    local digits = match(item, "^[ \t]*0*(%d+)[ \t]*$")
    if not digits or #digits > 15 then return nil end
    local n = tonumber(digits)
    if length and n ~= length then return nil end
    length = n
  end
  return length
end

-- A source that decodes a chunked body; the trailer fields are added to `fields`.
local function chunked_source(sock, fields)
  local left, done = 0, false
  return function()
    if done then return nil end
    if left == 0 then
      local line, err = getline(sock, "chunk size line")
      if not line then return nil, err end
      local size = chunk_size(line)
      if not size then return nil, "invalid chunk size" end
      if size == 0 then
        done = true
        local ok
        ok, err = read_headers(sock, fields or {})
        if not ok then return nil, err end
        return nil
      end
      left = size
    end
    local n = left < BLOCK and left or BLOCK
    local chunk, err = sock:receive(n)
    if not chunk then return nil, err end
    left = left - n
    if left == 0 then
      local line
      line, err = getline(sock, "chunk size line")
      if not line then return nil, err end
      if line ~= "" then return nil, "malformed chunked body" end
    end
    return chunk
  end
end

-- A sink that sends its data as chunks. An empty chunk is skipped (it would mark the end);
-- the end of the data sends the last chunk, unless the data ended with an error, in which case
-- nothing more is sent, so that the peer cannot take a truncated body for a whole one.
local function chunked_sink(sock)
  return function(chunk, err)
    if chunk == nil then
      if err then return nil, err end
      return sock:send("0\r\n\r\n")
    end
    if chunk == "" then return 1 end
    return sock:send(format("%X\r\n", #chunk) .. chunk .. "\r\n")
  end
end

-- Sources and sinks given to socket.source/socket.sink answer getfd and dirty, so that they
-- can be passed to socket.select.
local function selectable(sock, fn)
  return setmetatable({
    getfd = function() return sock:getfd() end,
    dirty = function() return sock:dirty() end,
  }, { __call = function(_, ...) return fn(...) end })
end

socket.sourcet["http-chunked"] = function(sock, fields)
  return selectable(sock, chunked_source(sock, fields))
end

socket.sinkt["http-chunked"] = function(sock)
  return selectable(sock, chunked_sink(sock))
end

-----------------------------------------------------------------------------------------------
-- The low-level connection object of http.open. Its methods raise socket.try errors (and close
-- the connection first), so they are meant to run inside socket.protect, as http.request does.
-----------------------------------------------------------------------------------------------
local conn = {}
local conn_mt = { __index = conn }

-- The header block for a table of lower-case names: sorted, so the order is stable, written
-- with the canonical spelling of each name, ended by a blank line.
local function header_block(fields)
  local names = {}
  for name in pairs(fields) do names[#names + 1] = name end
  sort(names)
  local canonic = headers.canonic
  local out = {}
  for i, name in ipairs(names) do
    out[i] = (canonic[name] or name) .. ": " .. tostring(fields[name]) .. "\r\n"
  end
  out[#out + 1] = "\r\n"
  return concat(out)
end

-- http.open(host, port [, create]) -> connection
-- Creates the socket with create() (default socket.tcp), sets http.TIMEOUT and connects.
function M.open(host, port, create)
  local h = setmetatable({}, conn_mt)
  h.c = try((create or socket.tcp)())
  h.try = newtry(function() h:close() end)
  h.c:settimeout(M.TIMEOUT)
  h.try(h.c:connect(host, port))
  return h
end

function conn:sendrequestline(method, uri)
  return self.try(self.c:send(format("%s %s HTTP/1.1\r\n", method or "GET", uri)))
end

function conn:sendheaders(fields)
  self.try(self.c:send(header_block(fields)))
  return 1
end

-- The request line and the headers in one send.
function conn:sendhead(method, uri, fields)
  self.try(self.c:send(format("%s %s HTTP/1.1\r\n", method, uri) .. header_block(fields)))
  return 1
end

-- Sends the body from `source`: as is when the headers give its length, chunked otherwise.
function conn:sendbody(fields, source, step)
  source = source or ltn12.source.empty()
  local snk
  if fields["content-length"] then
    snk = socket.sink("keep-open", self.c)
  else
    snk = chunked_sink(self.c)
  end
  return self.try(ltn12.pump.all(source, snk, step or ltn12.pump.step))
end

-- The socket the lines of a head are read on (tp._bounded_of), found at the first read, once
-- the connection is made.
local function inner_of(h)
  local inner = h.inner
  if inner == nil then
    inner = bounded_of(h.c) or false
    h.inner = inner
  end
  return inner
end

function conn:receivestatusline()
  return self.try(read_status(self.c, inner_of(self)))
end

function conn:receiveheaders()
  local inner = inner_of(self)
  -- The whole block is usually buffered by now (it came with the status line): taken in one
  -- call when it is plain, read line by line otherwise (src/socket/fields_scan.hpp).
  if inner then
    local fields = inner:_headers(M.MAXLINE, M.MAXHEADERS)
    if fields then return fields end
  end
  return self.try(read_headers(self.c, nil, inner))
end

-- Reads the body the headers announce: chunked when a transfer coding other than identity is
-- named, else content-length bytes, else everything until the server closes. A Content-Length
-- that cannot be used fails the request ("invalid content-length"): taking it for "no length"
-- would return whatever arrives before the close as if it were the whole body.
function conn:receivebody(fields, sink, step)
  local coding = fields["transfer-encoding"]
  local announced = fields["content-length"]
  local src
  if coding and lower(coding) ~= "identity" then
    src = chunked_source(self.c, fields)
  elseif announced then
    local length = self.try(content_length(announced), "invalid content-length")
    if length <= BLOCK and step == nil and (sink == nil or type(sink) == "function") then
      -- A body of one piece, the common answer: what ltn12.pump.all does with length_source,
      -- without making the source (the same calls of the sink, the same answers).
      local chunk, err
      if length > 0 then
        chunk, err = self.c:receive(length)
        if not chunk then
          if sink then sink(nil, err) end
          return self.try(nil, err)
        end
        if sink then
          local accepted
          accepted, err = sink(chunk, nil)
          if not accepted then
            if err then return self.try(nil, err) end
            return 1
          end
        end
      end
      if sink then
        local _, failure = sink(nil, nil)
        if failure then return self.try(nil, failure) end
      end
      return 1
    end
    src = length_source(self.c, length)
  else
    src = closed_source(self.c)
  end
  return self.try(ltn12.pump.all(src, sink or ltn12.sink.null(), step))
end

-- Reads a response without status line or headers: `status` (what was read already) and then
-- everything until the server closes.
function conn:receive09body(status, sink, step)
  local src = ltn12.source.cat(ltn12.source.string(status), closed_source(self.c))
  return self.try(ltn12.pump.all(src, sink or ltn12.sink.null(), step or ltn12.pump.step))
end

function conn:close()
  return self.c:close()
end

-----------------------------------------------------------------------------------------------
-- Requests
-----------------------------------------------------------------------------------------------

-- The codes a GET or HEAD follows when they carry a Location.
local redirect_codes = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

local url_defaults = { scheme = "http", path = "/" }

-- A host for the Host header or a URL: IPv6 literals go in brackets.
local function bracket(host)
  if find(host, ":", 1, true) and sub(host, 1, 1) ~= "[" then return "[" .. host .. "]" end
  return host
end

local function basic(user, password)
  return "Basic " .. (mime.b64(url.unescape(user) .. ":" .. url.unescape(password)))
end

-----------------------------------------------------------------------------------------------
-- https: socket.tls, with the request's TLS parameters under LuaSec's names (verify, cafile,
-- capath, certificate, key, password, protocol, options, ciphers, servername, ...). The server
-- is verified against the system's CA certificates, and its name checked, unless the request
-- says verify = "none". Through a proxy the connection is a CONNECT tunnel.
-----------------------------------------------------------------------------------------------
local tls  -- socket.tls, loaded by the first https request

-- Opens the tunnel to `t.authority` through the proxy `sock` is connected to.
local function open_tunnel(sock, t)
  local head = "CONNECT " .. t.authority .. " HTTP/1.1\r\nHost: " .. t.authority .. "\r\n"
  if t.auth then head = head .. "Proxy-Authorization: " .. t.auth .. "\r\n" end
  local ok, err = sock:send(head .. "\r\n")
  if not ok then return nil, err end
  local code, line = read_status(sock)
  if not code then return nil, line end
  local fields
  fields, err = read_headers(sock)
  if not fields then return nil, err end
  if code < 200 or code > 299 then return nil, "proxy refused the tunnel: " .. line end
  return true
end

-- The socket an https request uses: connect() makes the TCP connection (and the tunnel), then
-- the TLS handshake; every other method is the TLS socket's.
local Https = {}
Https.__index = Https
-- tp.readline reads a line of the TLS socket underneath in one bounded receive.
Https.__bounded = function(self) return self.sock end

function Https:connect(host, port)
  local sock = self.sock
  local ok, err = sock:connect(host, port)
  if not ok then return nil, err end
  if self.tunnel then
    ok, err = open_tunnel(sock, self.tunnel)
    if not ok then return nil, err end
  end
  local wrapped
  wrapped, err = tls.wrap(sock, self.params, self.servername)
  if not wrapped then return nil, err end
  return wrapped:dohandshake()
end

for _, name in ipairs({ "send", "receive", "receiveany", "close", "settimeout", "gettimeout",
  "getfd", "dirty", "getpeername", "getsockname", "shutdown", "getstats", "setstats",
  "getoption", "setoption", "info", "getpeercertificate", "getpeerverification",
  "getsession" }) do
  Https[name] = function(self, ...)
    local sock = self.sock
    return sock[name](sock, ...)
  end
end

Https.__tostring = function(self) return tostring(self.sock) end

schemes.https = {
  port = 443,
  tunnel = true,
  -- `r` is the prepared request; `tunnel`, when it goes through a proxy: {authority, auth}.
  create = function(r, tunnel)
    tls = tls or require("socket.tls")
    local params = tls.params_of(r) or {}
    params.mode = "client"
    if params.verify == nil then params.verify = "peer" end
    local servername = params.servername or r.host
    return function()
      local sock, err = socket.tcp()
      if not sock then return nil, err end
      return setmetatable({ sock = sock, params = params, servername = servername,
        tunnel = tunnel }, Https)
    end
  end,
}

-- The request as it will be sent: the URL parsed, explicit fields copied over it, defaults
-- filled in, target, headers and the address to connect to worked out.
local parsed, nparsed = {}, 0  -- url.parse(u, url_defaults) by u, for repeated requests
local PARSED_MAX = 64

local function parse_url(u)
  local t = parsed[u]
  if not t then
    t = try(url.parse(u, url_defaults))
    if nparsed >= PARSED_MAX then parsed, nparsed = {}, 0 end
    if type(u) == "string" then parsed[u], nparsed = t, nparsed + 1 end
  end
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  return r
end

local function prepare_new(reqt, pooled)
  local r = reqt.url and parse_url(reqt.url) or {}
  for k, v in pairs(reqt) do r[k] = v end
  local scheme = r.scheme
  local defs = schemes[scheme]
  if not defs then try(nil, "unsupported scheme '" .. tostring(scheme) .. "'") end
  if not (r.host and r.host ~= "") then try(nil, "invalid host '" .. tostring(r.host) .. "'") end
  if not (r.port and r.port ~= "") then r.port = defs.port end
  if not (r.method and r.method ~= "") then r.method = "GET" end
  if not match(r.method, "^[%w!#$%%&'*+.^_`|~-]+$") then
    try(nil, "invalid method '" .. tostring(r.method) .. "'")
  end
  try(r.path, "invalid path 'nil'")
  local proxy = r.proxy or M.PROXY
  r.proxy_url = proxy
  proxy = proxy and try(url.parse(proxy))
  -- The request target: the absolute URL for a proxy, otherwise the path and what follows it.
  -- The fragment belongs to the client and is never sent.
  -- A scheme that tunnels through the proxy (https) sends the request to the origin itself.
  local tunnel = proxy and defs.tunnel
  local target = r.uri
  if not target and not (proxy and not tunnel) and not r.params and not r.query then
    target = r.path  -- what url.build makes of a path alone
  elseif not target then
    local parts = { path = r.path, params = r.params, query = r.query }
    if proxy and not tunnel then
      parts.scheme, parts.host, parts.port = scheme, r.host, r.port
    end
    target = url.build(parts)
  end
  if find(target, "[%s%c]") then try(nil, "invalid path '" .. target .. "'") end
  r.uri = target
  -- Headers: the defaults, then the caller's (names lower-cased) over them.
  local host = bracket(r.host)
  if tostring(r.port) ~= tostring(defs.port) then host = host .. ":" .. r.port end
  local fields = { host = host, te = "trailers",
    connection = pooled and "keep-alive, TE" or "close, TE" }
  fields["user-agent"] = M.USERAGENT
  if r.user and r.password then fields["authorization"] = basic(r.user, r.password) end
  local proxy_auth = proxy and proxy.user and proxy.password and basic(proxy.user, proxy.password)
  if proxy_auth and not tunnel then fields["proxy-authorization"] = proxy_auth end
  if reqt.headers then
    for name, value in pairs(reqt.headers) do fields[lower(name)] = value end
  end
  for name, value in pairs(fields) do
    if find(name, "[%s%c:]") or find(tostring(value), "[\r\n]") then
      try(nil, "invalid header '" .. name .. "'")
    end
  end
  if r.source and not fields["content-length"] and not fields["transfer-encoding"] then
    fields["transfer-encoding"] = "chunked"
  end
  r.headers = fields
  -- Where to connect, and with which socket factory: a proxy's own scheme decides its factory.
  if proxy then
    r.connect_host, r.connect_port = proxy.host, proxy.port or 3128
    if not r.create and tunnel then
      r.create = defs.create(r, { authority = bracket(r.host) .. ":" .. r.port, auth = proxy_auth })
    elseif not r.create then
      r.create = (schemes[proxy.scheme] or schemes.http).create(r)
    end
  else
    r.connect_host, r.connect_port = r.host, r.port
    if not r.create then r.create = defs.create(r) end
  end
  return r
end

-- Whether a comma-separated header value names `token`.
local function has_token(value, token)
  if not value then return false end
  value = lower(tostring(value))
  if not find(value, token, 1, true) then return false end
  for item in gmatch(value, "[^,]+") do
    if match(item, "^%s*(.-)%s*$") == token then return true end
  end
  return false
end

local pool_key  -- (with the pool, below)

-- Prepared requests kept by URL and method, for the requests whose preparation depends on
-- nothing else: an http URL without proxy, no field but those of `plain_keys`, the module's
-- settings and the canonical names of the headers unchanged. Such a request shares the prepared
-- table (nothing changes it once made: what differs between requests, the sink, the step, the
-- redirect settings, is read from the request itself) and the request head made from it.
local plain_keys = { url = true, method = true, sink = true, target = true, step = true,
  pool = true, redirect = true, maxredirects = true, nredirects = true }
local plans, nplans = { [false] = {}, [true] = {} }, 0  -- pooled -> method -> url -> plan
local PLANS_MAX = 64

-- Whether a request has no field but those of plain_keys.
local function plain(reqt)
  for k in pairs(reqt) do
    if not plain_keys[k] then return false end
  end
  return true
end

-- The plan of a request, if it has a valid one: {r = the prepared request, head = its request
-- line and headers, key = its pool key (pooled plans), ...what it was made with}.
local function plan_of(reqt, u, method, pooled, known_plain)
  local byurl = plans[pooled][method]
  local plan = byurl and byurl[u]
  if not plan or plan.useragent ~= M.USERAGENT or M.PROXY ~= nil
    or not (known_plain or plain(reqt)) then
    return nil
  end
  local defs = schemes.http
  if defs ~= plan.defs or defs.port ~= plan.port or defs.create ~= http_create
    or plan.r.create ~= socket.tcp then
    return nil
  end
  local canonic, names = headers.canonic, plan.names
  for i = 1, #names, 2 do
    if (canonic[names[i]] or false) ~= names[i + 1] then return nil end
  end
  return plan
end

-- (`known_plain`: the caller made `reqt` with no field but those of plain_keys)
local function prepare(reqt, pooled, known_plain)
  pooled = pooled and true or false
  local u, method = reqt.url, reqt.method
  if method == nil then method = "GET" end
  if type(u) ~= "string" or type(method) ~= "string" then return prepare_new(reqt, pooled) end
  local found = plan_of(reqt, u, method, pooled, known_plain)
  if found then return found.r, found end
  local r = prepare_new(reqt, pooled)
  local defs = schemes.http
  if r.scheme ~= "http" or r.proxy_url ~= nil or defs.create ~= http_create
    or r.create ~= socket.tcp or not plain(reqt) then
    return r
  end
  for k in pairs(plain_keys) do
    if k ~= "url" and k ~= "method" then r[k] = nil end
  end
  local names, canonic = {}, headers.canonic
  for name in pairs(r.headers) do
    local n = #names
    names[n + 1], names[n + 2] = name, canonic[name] or false
  end
  local plan = { r = r, useragent = M.USERAGENT, defs = defs, port = defs.port, names = names,
    head = format("%s %s HTTP/1.1\r\n", r.method, r.uri) .. header_block(r.headers),
    key = pooled and pool_key(r) or nil, close = has_token(r.headers.connection, "close") }
  if nplans >= PLANS_MAX then plans, nplans = { [false] = {}, [true] = {} }, 0 end
  local byurl = plans[pooled][method] or {}
  plans[pooled][method] = byurl
  byurl[u] = plan
  nplans = nplans + 1
  return r, plan
end

-- The absolute URL a response redirects to, when the request should follow it; and the
-- Location value as the server sent it.
local function redirection(reqt, r, code, fields)
  if reqt.redirect == false or not redirect_codes[code] or reqt.source then return nil end
  if r.method ~= "GET" and r.method ~= "HEAD" then return nil end
  local location = fields.location
  if not location then return nil end
  location = gsub(location, "%s", "")
  if location == "" then return nil end
  if reqt.maxredirects ~= false and (reqt.nredirects or 0) >= (reqt.maxredirects or 5) then
    return nil
  end
  -- Made absolute first, so that a relative Location keeps the scheme it came from.
  -- The URL that relative redirects are resolved against: the request's.
  local base = url.build({ scheme = r.scheme, host = r.host, port = r.port, path = r.path,
    params = r.params, query = r.query })
  local target = url.absolute(base, location)
  local scheme = url.parse(target).scheme
  if not (scheme and schemes[scheme]) then return nil end
  if r.scheme == "https" and scheme ~= "https" then return nil end
  return target, location, scheme
end

local generic

-- The settings a followed redirect keeps from the request that led to it.
-- The TLS parameters go along (a redirect from http to https is verified the same way), except
-- servername, which belongs to the host first asked.
local carried = { "sink", "step", "headers", "proxy", "redirect", "maxredirects", "pool",
  "verify", "cafile", "capath", "certificate", "key", "password", "protocol", "options",
  "ciphers", "ciphersuites", "depth", "alpn" }

-- Follows a redirect with a new request that keeps the caller's settings (and its socket
-- factory while the scheme stays the same).
local function follow(reqt, r, target, location, scheme)
  local hop = { url = target, method = r.method, nredirects = (reqt.nredirects or 0) + 1 }
  for _, key in ipairs(carried) do hop[key] = reqt[key] end
  if scheme == r.scheme then hop.create = reqt.create end
  local ok, code, fields, status = generic(hop)
  fields = fields or {}
  fields.location = fields.location or location
  return ok, code, fields, status
end

-- Whether a response to `method` with `code` has a body.
local function has_body(method, code)
  if method == "HEAD" or code == 204 or code == 304 then return false end
  return code >= 200
end

-- Sends the request on `h` and reads the response's status line and headers: code, status,
-- fields.
local function exchange(h, reqt, r, plan)
  if plan then
    h.try(h.c:send(plan.head))
  else
    h:sendhead(r.method, r.uri, r.headers)
  end
  if reqt.source then h:sendbody(r.headers, reqt.source, reqt.step) end
  local code, status = h:receivestatusline()
  -- Interim responses (100 Continue, 103 Early Hints, ...) come before the real one; a 101
  -- would switch protocols, which no request here asks for, so it is returned as it is.
  local interim = 0
  while code < 200 and code ~= 101 do
    interim = interim + 1
    h.try(interim <= MAX_INTERIM, "too many interim responses")
    h:receiveheaders()
    code, status = h:receivestatusline()
  end
  return code, status, h:receiveheaders()
end

-----------------------------------------------------------------------------------------------
-- Requests through a keep-alive pool. socket/http/pool.lua keeps the connections; what a key
-- is, what may be reused and when a request is sent again are decided here.
-----------------------------------------------------------------------------------------------
local poolmod  -- socket.http.pool, loaded with the first pool
local default_pool

-- Whether the connection can carry another request once this response's body is read: both
-- sides keep it alive, and the body ends by its length or its last chunk, not by the close.
local function keeps_alive(r, plan, code, status, fields)
  if code == 101 then return false end
  if plan then
    if plan.close then return false end
  elseif has_token(r.headers.connection, "close") then
    return false
  end
  local connection = fields.connection
  if has_token(connection, "close") then return false end
  local v11 = http11[status]
  if v11 == nil then v11 = match(status, "^HTTP/1%.1 ") ~= nil end
  if not v11 and not has_token(connection, "keep-alive") then
    return false
  end
  if not has_body(r.method, code) then return true end
  local coding = fields["transfer-encoding"]
  if coding then return match(lower(coding), "chunked%s*$") ~= nil end
  local announced = fields["content-length"]
  return announced ~= nil and content_length(announced) ~= nil
end

local tls_keys  -- socket.tls.request_keys without session, which the pool keeps per key

-- What decides whether a connection fits a request: where it goes, through which proxy, and
-- for https every TLS setting.
function pool_key(r)
  local parts = { r.scheme, r.host, tostring(r.port), tostring(r.proxy_url or "") }
  if r.scheme == "https" then
    tls = tls or require("socket.tls")
    if not tls_keys then
      tls_keys = {}
      for _, k in ipairs(tls.request_keys) do
        if k ~= "session" then tls_keys[#tls_keys + 1] = k end
      end
    end
    return tls._settings_key(r, tls_keys, parts)
  end
  return concat(parts, "\n")
end

-- Opens a connection for a pooled request, resuming the key's last TLS session. (The https
-- socket's parameters are the prepared request's own table, made for it by schemes.https.)
local function open_pooled(p, key, r)
  local session = r.scheme == "https" and r.session == nil and p.sessions[key]
  local create = r.create
  if session then
    create = function()
      local sock, err = r.create()
      if sock then sock.params.session = session end
      return sock, err
    end
  end
  local h = M.open(r.connect_host, r.connect_port, create)
  if session and h.c:info("resumed") then p.counts.resumed = p.counts.resumed + 1 end
  return h
end

-- Methods a request may be sent twice with, when it has no body (RFC 9110 section 9.2.2).
local idempotent = { GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true,
  DELETE = true }

-- What ends a failed attempt on a pooled connection: the bytes received so far noted (for the
-- retry rule), the connection closed. Made once per connection, as the try of its requests.
local function pooled_fail(p, entry)
  local c = entry.conn.c
  local function fail()
    if entry.state == "busy" then
      entry.received = c:getstats()
      p:_discard(entry)
    end
  end
  entry.fail = fail
  entry.conn.try = newtry(fail)
end

-- The request and its response on a pooled connection: code, status, fields, redirect.
local function pooled_exchange(reqt, r, plan, p, key, entry, h, c)
  local code, status, fields = exchange(h, reqt, r, plan)
  local keep = keeps_alive(r, plan, code, status, fields)
  local body = has_body(r.method, code)
  local target, location, scheme = redirection(reqt, r, code, fields)
  local hop
  if target then
    hop = { target, location, scheme }
    -- a short body is read to keep the connection; a long one is not worth it
    local announced = fields["content-length"]
    local length = announced and content_length(announced)
    if body and keep and length and length <= BLOCK then h:receivebody(fields) end
    keep = keep and (not body or (length and length <= BLOCK))
  elseif body then
    h:receivebody(fields, reqt.sink, reqt.step)
  end
  -- bytes after the response are nothing a later request could make sense of
  if keep and c:dirty() then keep = false end
  if keep then
    if r.scheme == "https" then p.sessions[key] = c:getsession() or p.sessions[key] end
    p:_checkin(entry)
  else
    p:_discard(entry)
  end
  return code, status, fields, hop
end

-- One attempt on one connection. Returns true, code, status, fields, redirect (nil or
-- {target, location, scheme}); or false, err, retry: whether the request may be sent again,
-- which is when it failed on a reused connection before any byte of the response came.
local function pooled_once(reqt, r, plan, p, key, fresh)
  local entry, err = p:_checkout(key, fresh, M.TIMEOUT)
  if entry == nil then try(nil, err) end
  local reused = entry ~= false
  if not entry then
    local ok, h = pcall(open_pooled, p, key, r)
    if not ok then
      p:_unreserve(key)
      error(h, 0)
    end
    entry = p:_add(key, h)
    pooled_fail(p, entry)
  end
  local h = entry.conn
  local c = h.c
  local before = c:getstats()
  entry.received = nil
  entry.uses = entry.uses + 1
  local ok, code, status, fields, hop = pcall(pooled_exchange, reqt, r, plan, p, key, entry,
    h, c)
  if ok then return true, code, status, fields, hop end
  entry.fail()
  local timeout = type(code) == "table" and code[1] == "timeout"
  return false, code, reused and entry.received == before and not reqt.source
    and idempotent[r.method] and not timeout
end

local function pooled(reqt, p, r, plan)
  local key = plan and plan.key or pool_key(r)
  p.counts.requests = p.counts.requests + 1
  local ok, code, status, fields, hop = pooled_once(reqt, r, plan, p, key, false)
  if not ok and status then
    p.counts.retried = p.counts.retried + 1
    ok, code, status, fields, hop = pooled_once(reqt, r, plan, p, key, true)
  end
  if not ok then error(code, 0) end
  if hop then return follow(reqt, r, hop[1], hop[2], hop[3]) end
  return 1, code, fields, status
end

-- http.pool([options]) -> pool
function M.pool(options)
  poolmod = poolmod or require("socket.http.pool")
  return poolmod.new(options)
end

-- http.setpool(pool | nil) -> the previous default pool
function M.setpool(p)
  poolmod = poolmod or require("socket.http.pool")
  if p ~= nil and not poolmod.ispool(p) then
    error("bad argument #1 to 'setpool' (http.pool or nil expected, got " .. type(p) .. ")", 2)
  end
  local previous = default_pool
  default_pool = p
  return previous
end

-- http.getpool() -> the default pool or nil
function M.getpool()
  return default_pool
end

-- The generic form; raises socket.try errors, turned into nil, err by http.request.
-- (`known_plain`: as for prepare)
function generic(reqt, known_plain)
  local p = reqt.pool
  if p == nil then p = default_pool end
  if p and not reqt.create then return pooled(reqt, p, prepare(reqt, true, known_plain)) end
  local r, plan = prepare(reqt, false, known_plain)
  local h = M.open(r.connect_host, r.connect_port, r.create)
  local code, status, fields = exchange(h, reqt, r, plan)
  local target, location, scheme = redirection(reqt, r, code, fields)
  if target then
    h:close()
    return follow(reqt, r, target, location, scheme)
  end
  if has_body(r.method, code) then h:receivebody(fields, reqt.sink, reqt.step) end
  h:close()
  return 1, code, fields, status
end

-- http.genericform(url [, body]) -> reqt
-- The generic request the simple form makes: a GET, or with `body` a form POST; the response
-- body is collected in reqt.target.
local function genericform(u, body)
  local sink, target = ltn12.sink.table()
  local reqt = { url = u, sink = sink, target = target }
  if body == nil then return reqt end
  body = tostring(body)
  reqt.method = "POST"
  reqt.headers = { ["content-type"] = "application/x-www-form-urlencoded",
    ["content-length"] = #body }
  reqt.source = ltn12.source.string(body)
  return reqt
end

M.genericform = genericform

local function simple(u, body)
  local form = M.genericform
  local reqt = form(u, body)
  -- (what genericform makes of a URL alone has a url, a sink and a target)
  local _, code, fields, status = generic(reqt, body == nil and form == genericform)
  return concat(reqt.target), code, fields, status
end

-- http.request(url [, body]) -> body, code, headers, status | nil, err
-- http.request(reqt) -> 1, code, headers, status | nil, err
M.request = protect(function(reqt, body)
  local t = type(reqt)
  if t == "string" then return simple(reqt, body) end
  if t ~= "table" then
    error("bad argument #1 to 'request' (string or table expected, got " .. t .. ")", 2)
  end
  return generic(reqt)
end)

socket.http = M

return M
