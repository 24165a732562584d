-- socket/smtp.lua: an SMTP client with the API of LuaSocket 3.1's `socket.smtp`: smtp.send
-- delivers a message to a server, smtp.message builds a MIME message (headers, multipart
-- bodies, attachments through ltn12 sources and mime filters) as an ltn12 source, and smtp.open
-- gives the low-level session.
--
-- Pure Lua over socket.tp and socket calls, so a delivery blocks in a plain script and yields
-- inside a task of socket.async. The message source is a plain function (no coroutine), so a
-- body source that itself reads a socket yields its task too. Loading it stores the module in
-- the socket namespace (socket.smtp), as LuaSocket's does.
local socket = require("socket")
local tp = require("socket.tp")
local ltn12 = require("ltn12")
local mime = require("mime")
local headers = require("socket.headers")

local M = {}

local error, getmetatable, ipairs, pairs, pcall, select, setmetatable, tostring, type =
  error, getmetatable, ipairs, pairs, pcall, select, setmetatable, tostring, type
local concat, sort = table.concat, table.sort
local find, format, lower, match = string.find, string.format, string.lower, string.match
local date, getenv = os.date, os.getenv
local random = math.random
local try, newtry, protect = socket.try, socket.newtry, socket.protect

-- Module settings, read at each call.
M.TIMEOUT = 60                                -- seconds any one socket call may wait
M.SERVER = "localhost"                        -- server when a message names none
M.PORT = 25                                   -- port when a message names none
M.DOMAIN = getenv("SERVER_NAME") or "localhost"  -- name given in EHLO
M.ZONE = "-0000"                              -- time zone written in the Date header

-----------------------------------------------------------------------------------------------
-- The low-level session object. Its methods raise socket.try errors (closing the session
-- first), so they are meant to run inside socket.protect, as smtp.send does.
-----------------------------------------------------------------------------------------------
local session = {}
local session_mt = { __index = session }

-- smtp.open([server [, port [, create]]]) -> session: connects to the server.
function M.open(server, port, create)
  local s = setmetatable({}, session_mt)
  s.tp = try(tp.connect(server or M.SERVER, port or M.PORT, M.TIMEOUT, create))
  s.try = newtry(function() s:close() end)
  return s
end

-- Waits for a reply whose code matches `expected`; returns its code and text, or raises.
local function expect(self, expected)
  return self.try(self.tp:check(expected))
end

-- Sends a command (and its argument), then waits for a reply as `expect` does.
local function ask(self, cmd, arg, expected)
  self.try(self.tp:command(cmd, arg))
  return expect(self, expected)
end

-- Sends a line that is not a command (an AUTH LOGIN answer, the end of the data).
local function say(self, line)
  self.try(self.tp:send(line))
end

-- Waits for the greeting and introduces the client with EHLO (HELO when the server does not
-- know EHLO). Returns the server's reply, which lists the extensions it offers.
function session:greet(domain)
  expect(self, "2..")
  return self:ehlo(domain)
end

-- EHLO (HELO when the server does not know EHLO); returns the reply.
function session:ehlo(domain)
  local name = domain or M.DOMAIN
  self.try(self.tp:command("EHLO", name))
  local code, reply = self.tp:check("2..")
  if not code and match(reply, "^5%d%d") then return select(2, ask(self, "HELO", name, "2..")) end
  return select(2, self.try(code, reply))
end

-- STARTTLS: upgrades the session to TLS (socket.tls, with `params`: a table of TLS parameters
-- or true for the defaults, which verify the server against the system's CA certificates and
-- `host`), then says EHLO again; returns the new reply, whose extensions (AUTH) are the ones
-- that count. Raises when the EHLO reply `ext` offers no STARTTLS: nothing, credentials least
-- of all, is then sent in the clear.
function session:starttls(params, host, domain, ext)
  if not find(ext or "", "STARTTLS") then self.try(nil, "server does not offer STARTTLS") end
  ask(self, "STARTTLS", nil, "2..")
  local tls = require("socket.tls")
  local p = {}
  if type(params) == "table" then
    for k, v in pairs(params) do p[k] = v end
  end
  local conn = self.try(tls.wrap(self.tp:getcontrol(), p, p.servername or host))
  self.try(conn:dohandshake())
  return self:ehlo(domain)
end

function session:mail(from)
  return ask(self, "MAIL", "FROM:" .. from, "2..")
end

function session:rcpt(to)
  return ask(self, "RCPT", "TO:" .. to, "2..")
end

-- DATA, the message from `src` (already dot-stuffed), and the line with a dot that ends it.
function session:data(src, step)
  ask(self, "DATA", nil, "3..")
  self.try(self.tp:source(src, step))
  say(self, "\r\n.\r\n")
  return expect(self, "2..")
end

function session:quit()
  return ask(self, "QUIT", nil, "2..")
end

function session:close()
  return self.tp:close()
end

-- AUTH LOGIN: user name and password, each base64-encoded on its own line.
function session:login(user, password)
  ask(self, "AUTH", "LOGIN", "3..")
  say(self, (mime.b64(user)) .. "\r\n")
  expect(self, "3..")
  say(self, (mime.b64(password)) .. "\r\n")
  return expect(self, "2..")
end

-- AUTH PLAIN: both in one base64 string, after an empty authorization identity.
function session:plain(user, password)
  return ask(self, "AUTH", "PLAIN " .. (mime.b64("\0" .. user .. "\0" .. password)), "2..")
end

-- Authenticates with the first mechanism of LOGIN and PLAIN that the EHLO reply `ext` offers;
-- does nothing without a user and a password.
function session:auth(user, password, ext)
  if not user or not password then return 1 end
  if find(ext, "AUTH[^\n]+LOGIN") then return self:login(user, password) end
  if find(ext, "AUTH[^\n]+PLAIN") then return self:plain(user, password) end
  self.try(nil, "authentication not supported")
end

-- Sends one message: MAIL FROM, RCPT TO for each recipient, DATA with the source's bytes
-- dot-stuffed.
function session:send(mailt)
  self.try(mailt.from, "missing from")
  self.try(mailt.rcpt, "missing rcpt")
  self.try(mailt.source, "missing source")
  local recipients = mailt.rcpt
  if type(recipients) ~= "table" then recipients = { recipients } end
  self:mail(mailt.from)
  for _, to in ipairs(recipients) do self:rcpt(to) end
  self:data(ltn12.source.chain(mailt.source, mime.stuff()), mailt.step)
end

-----------------------------------------------------------------------------------------------
-- Messages
-----------------------------------------------------------------------------------------------

local function lowered(fields)
  local out = {}
  for name, value in pairs(fields or {}) do out[lower(name)] = value end
  return out
end

-- A header block: the fields sorted by name (so the order is stable), each name in its
-- canonical spelling, ended by a blank line.
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

-- A boundary that cannot occur in base64 or quoted-printable text ("=_" is neither).
local boundaries = 0
local function new_boundary()
  boundaries = boundaries + 1
  return format("=_uvsocket.%s.%08x.%d", date("!%Y%m%d%H%M%S"), random(0, 0x7fffffff),
    boundaries)
end

-- Functions, and tables with a __call metamethod (as socket.source makes), are sources.
local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Appends to `items` the pieces of a message part: strings, and source functions whose
-- output goes in their place.
local function flatten(mesgt, items, fields)
  local body = mesgt.body
  if type(body) == "table" and not callable(body) then
    local boundary = new_boundary()
    fields["content-type"] = (fields["content-type"] or "multipart/mixed")
      .. '; boundary="' .. boundary .. '"'
    items[#items + 1] = header_block(fields)
    if body.preamble then
      items[#items + 1] = body.preamble
      items[#items + 1] = "\r\n"
    end
    for _, part in ipairs(body) do
      items[#items + 1] = "\r\n--" .. boundary .. "\r\n"
      flatten(part, items, lowered(part.headers))
    end
    items[#items + 1] = "\r\n--" .. boundary .. "--\r\n\r\n"
    if body.epilogue then
      items[#items + 1] = body.epilogue
      items[#items + 1] = "\r\n"
    end
  else
    fields["content-type"] = fields["content-type"] or 'text/plain; charset="iso-8859-1"'
    items[#items + 1] = header_block(fields)
    if callable(body) then
      items[#items + 1] = body
    elseif body ~= nil then
      items[#items + 1] = tostring(body)
    end
  end
end

-- smtp.message(mesgt) -> source
-- mesgt = {headers = table, body = string | source | {preamble = s, [1..n] = mesgt,
-- epilogue = s}}. The top-level headers get Date, X-Mailer and MIME-Version: 1.0 when absent
-- (MIME-Version is always 1.0). A body source that fails (or raises) makes the message source
-- return nil, err.
function M.message(mesgt)
  if type(mesgt) ~= "table" then
    error("bad argument #1 to 'message' (table expected, got " .. type(mesgt) .. ")", 2)
  end
  local fields = lowered(mesgt.headers)
  fields["date"] = fields["date"] or date("!%a, %d %b %Y %H:%M:%S ") .. (mesgt.zone or M.ZONE)
  fields["x-mailer"] = fields["x-mailer"] or socket._VERSION
  fields["mime-version"] = "1.0"
  local items = {}
  flatten(mesgt, items, fields)
  local i, failed = 1, nil
  return function()
    while not failed do
      local item = items[i]
      if item == nil then return nil end
      if type(item) == "string" then
        i = i + 1
        if item ~= "" then return item end
      else
        -- a source: its chunks until it ends (next item) or fails (the message fails)
        local ok, chunk, err = pcall(item)
        if not ok then failed = tostring(chunk)
        elseif chunk ~= nil then if chunk ~= "" then return chunk end
        elseif err ~= nil then failed = err
        else i = i + 1 end
      end
    end
    return nil, failed
  end
end

-----------------------------------------------------------------------------------------------
-- Sending
-----------------------------------------------------------------------------------------------

-- smtp.send{from, rcpt, source, [user, password], [server], [port], [domain], [step],
-- [create]} -> 1 | nil, err
M.send = protect(function(mailt)
  if type(mailt) ~= "table" then
    error("bad argument #1 to 'send' (table expected, got " .. type(mailt) .. ")", 2)
  end
  local s = M.open(mailt.server, mailt.port, mailt.create)
  local ext = s:greet(mailt.domain)
  if mailt.starttls then
    ext = s:starttls(mailt.starttls, mailt.server or M.SERVER, mailt.domain, ext)
  end
  s:auth(mailt.user, mailt.password, ext)
  s:send(mailt)
  s:quit()
  return s:close()
end)

socket.smtp = M

return M
