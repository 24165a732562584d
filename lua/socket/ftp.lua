-- socket/ftp.lua: an FTP client with the API of LuaSocket 3.1's `socket.ftp`: ftp.get and
-- ftp.put in their simple (URL) and generic (table) forms, ftp.command, and the low-level
-- session object of ftp.open. Transfers use passive mode (EPSV, or PASV when the server does
-- not know EPSV) unless a request asks for active mode (PORT or EPRT).
--
-- Pure Lua over socket.tp and socket calls, so a transfer blocks in a plain script and yields
-- inside a task of socket.async. Loading it stores the module in the socket namespace
-- (socket.ftp), as LuaSocket's does.
local socket = require("socket")
local url = require("socket.url")
local tp = require("socket.tp")
local ltn12 = require("ltn12")

local M = {}

local error, pairs, ipairs, setmetatable, tonumber, tostring, type =
  error, pairs, ipairs, setmetatable, tonumber, tostring, type
local concat = table.concat
local find, format, gsub, match = string.find, string.format, string.gsub, string.match
local try, newtry, protect = socket.try, socket.newtry, socket.protect

-- Module settings, read at each request.
M.TIMEOUT = 60                          -- seconds any one socket call may wait
M.USER = "ftp"                          -- user when a request names none
M.PASSWORD = "anonymous@anonymous.org"  -- password when a request names none
M.PORT = 21                             -- control port when a request names none
M.PASSIVE = true                        -- passive mode when a request does not say

-- Size of the pieces a download is read in.
local BLOCK = 16384

-----------------------------------------------------------------------------------------------
-- The low-level session object. Its methods raise socket.try errors (closing the session
-- first), so they are meant to run inside socket.protect, as the high-level functions do.
-----------------------------------------------------------------------------------------------
local session = {}
local session_mt = { __index = session }

-- ftp.open(server [, port [, create]]) -> session: connects the control channel.
function M.open(server, port, create)
  local f = setmetatable({}, session_mt)
  f.tp = try(tp.connect(server, port or M.PORT, M.TIMEOUT, create))
  f.try = newtry(function() f:close() end)
  return f
end

-- Waits for a reply whose code matches `expected`; returns its code and text, or raises.
local function expect(self, expected)
  return self.try(self.tp:check(expected))
end

-- Sends a command, then waits for a reply as `expect` does.
local function ask(self, cmd, arg, expected)
  self.try(self.tp:command(cmd, arg))
  return expect(self, expected)
end

-- Waits for the greeting (a 1xx "wait" may come before the 2xx).
function session:greet()
  if expect(self, { "1..", "2.." }) < 200 then expect(self, "2..") end
  return 1
end

-- USER, and PASS when the server asks for a password (331).
function session:login(user, password)
  if ask(self, "user", user or M.USER, { "2..", 331 }) == 331 then
    ask(self, "pass", password or M.PASSWORD, "2..")
  end
  return 1
end

-- Forgets the data connection set up for an earlier transfer.
local function forget_mode(self)
  local listener = self.server
  self.server, self.pasvt = nil, nil
  if listener then listener:close() end
end

-- PASV: the server listens; returns the address and port it gave.
function session:pasv()
  local _, reply = ask(self, "pasv", nil, "2..")
  local h1, h2, h3, h4, p1, p2 = match(reply, "(%d+),(%d+),(%d+),(%d+),(%d+),(%d+)")
  self.try(p2, reply)
  forget_mode(self)
  local where = { address = h1 .. "." .. h2 .. "." .. h3 .. "." .. h4,
    port = tonumber(p1) * 256 + tonumber(p2) }
  self.pasvt = where
  return where.address, where.port
end

-- The port of an EPSV reply "229 text (|||port|)" (any delimiter in place of "|").
local function epsv_port(reply)
  local _, port = match(reply, "%(([!-~])%1%1(%d+)%1%)")
  return tonumber(port)
end

-- EPSV: the server listens on the control connection's address; returns it and the port.
function session:epsv()
  local _, reply = ask(self, "epsv", nil, "229")
  local port = self.try(epsv_port(reply), "invalid epsv response")
  forget_mode(self)
  local address = self.tp:getpeername()
  self.pasvt = { address = address, port = port }
  return address, port
end

-- Listens for the server's data connection on the control connection's local address.
local function listen(self)
  local address = self.try(self.tp:getsockname())
  local server = self.try(socket.bind(address, 0))
  self.server = server
  self.try(server:settimeout(M.TIMEOUT))
  local _, port = self.try(server:getsockname())
  return address, tonumber(port)
end

-- PORT: the client listens (on `address`:`port`, by default on a new port of the control
-- connection's local address) and the server connects to it. IPv4 only; see eprt.
function session:port(address, port)
  forget_mode(self)
  if not address then address, port = listen(self) end
  self.try(match(address, "^%d+%.%d+%.%d+%.%d+$"), "PORT needs an IPv4 address")
  port = tonumber(port)
  ask(self, "port", format("%s,%d,%d", gsub(address, "%.", ","), port // 256, port % 256),
    "2..")
  return 1
end

local eprt_families = { inet = "1", inet4 = "1", inet6 = "2", ["1"] = "1", ["2"] = "2" }

-- EPRT: like PORT for IPv4 and IPv6. `family` is "1" or "inet" for IPv4, "2" or "inet6" for
-- IPv6; when no address is given it is the one of the control connection.
function session:eprt(family, address, port)
  forget_mode(self)
  if not address then
    address, port = listen(self)
    family = family or (find(address, ":", 1, true) and "2" or "1")
  end
  family = eprt_families[tostring(family)] or family
  ask(self, "eprt", format("|%s|%s|%d|", family, address, tonumber(port)), "2..")
  return 1
end

-- Connects to the address of the last PASV or EPSV.
function session:pasvconnect()
  local data = self.try(socket.tcp())
  self.data = data
  data:settimeout(M.TIMEOUT)
  self.try(data:connect(self.pasvt.address, self.pasvt.port))
end

-- Accepts the server's data connection after PORT or EPRT; the listener is done with then.
function session:portconnect()
  local listener = self.server
  listener:settimeout(M.TIMEOUT)
  local data = self.try(listener:accept())
  listener:close()
  self.server = nil
  data:settimeout(M.TIMEOUT)
  self.data = data
end

-- The argument of a transfer command: `argument`, or `path` without its leading slash and
-- with %XX escapes decoded.
local function transfer_argument(t)
  local argument = t.argument or url.unescape((gsub(t.path or "", "^[/\\]", "")))
  if argument == "" then return nil end
  return argument
end

-- Opens the data connection of a transfer command: before the command in passive mode, after
-- its preliminary reply in active mode. Returns the reply code and text.
local function start_transfer(self, command, argument, first)
  self.try(self.pasvt or self.server, "need port or pasv first")
  if self.pasvt then self:pasvconnect() end
  return ask(self, command, argument, first)
end

-- Ends a transfer: the final reply when the first one was preliminary.
local function end_transfer(self, code)
  if code < 200 then expect(self, "2..") end
  if self.data then self.data:close() end
  self.data = nil
  self.pasvt = nil
end

-- session:send{source, [argument | path], [command], [step]} -> bytes sent
-- Uploads what `source` produces with STOR (or `command`).
function session:send(sendt)
  local code = start_transfer(self, sendt.command or "stor", transfer_argument(sendt),
    { "2..", "1.." })
  if not self.pasvt then self:portconnect() end
  local data, sent = self.data, 0
  -- Closing the data connection tells the server the file is complete; when the source
  -- fails it is reset instead, so that the server does not keep a truncated file as whole.
  local function sink(chunk, err)
    if chunk == nil then
      if err then data:setoption("linger", { on = true, timeout = 0 }) end
      data:close()
      return 1
    end
    local ok, serr = data:send(chunk)
    if not ok then return nil, serr end
    sent = sent + #chunk
    return 1
  end
  self.try(ltn12.pump.all(sendt.source, sink, sendt.step or ltn12.pump.step))
  end_transfer(self, code)
  return sent + 0.0
end

-- A source of everything the data connection carries until the server closes it.
local function data_source(data)
  local done = false
  return function()
    if done then return nil end
    local chunk, err, partial = data:receive(BLOCK)
    if chunk then return chunk end
    if err ~= "closed" then return nil, err end
    done = true
    if partial ~= "" then return partial end
    return nil
  end
end

-- session:receive{sink, [argument | path], [command], [step]} -> 1
-- Downloads with RETR (or `command`, such as NLST or LIST) into `sink`. A server that answers
-- the command at once, without a transfer, has its reply handed to the sink.
function session:receive(recvt)
  local code, reply = start_transfer(self, recvt.command or "retr", transfer_argument(recvt),
    { "1..", "2.." })
  if code >= 200 then
    recvt.sink(reply)
    end_transfer(self, code)
    return 1
  end
  if not self.pasvt then self:portconnect() end
  self.try(ltn12.pump.all(data_source(self.data), recvt.sink, recvt.step or ltn12.pump.step))
  end_transfer(self, code)
  return 1
end

function session:cwd(dir)
  ask(self, "cwd", dir, 250)
  return 1
end

function session:type(kind)
  ask(self, "type", kind, 200)
  return 1
end

function session:quit()
  ask(self, "quit", nil, "2..")
  return 1
end

-- Closes whatever is open: data connection, listener, control connection.
function session:close()
  for _, key in ipairs({ "data", "server" }) do
    if self[key] then
      self[key]:close()
      self[key] = nil
    end
  end
  return self.tp:close()
end

-----------------------------------------------------------------------------------------------
-- High-level functions
-----------------------------------------------------------------------------------------------

-- A request table with the parts of its `url` field filled in (explicit fields win).
local function override(t)
  if not t.url then return t end
  local u = try(url.parse(t.url))
  if u.user then u.user = url.unescape(u.user) end
  if u.password then u.password = url.unescape(u.password) end
  for k, v in pairs(t) do u[k] = v end
  return u
end

-- Passive mode: EPSV, or PASV when the server refuses EPSV.
local function enter_passive(f)
  f.try(f.tp:command("epsv"))
  local code, reply = f.tp:check("229")
  if code then
    f.pasvt = { address = f.tp:getpeername(), port = f.try(epsv_port(reply),
      "invalid epsv response") }
    return
  end
  f.try(match(reply, "^5%d%d"), reply)
  f:pasv()
end

-- Logs in, sets the type, and sets up the data connection of the next transfer.
local function open_session(t)
  try(t.host, "missing hostname")
  local f = M.open(t.host, t.port, t.create)
  f:greet()
  f:login(t.user, t.password)
  if t.type then f:type(t.type) end
  local passive = t.passive
  if passive == nil then passive = M.PASSIVE end
  if passive then
    enter_passive(f)
  elseif find(f.try(f.tp:getsockname()), ":", 1, true) then
    f:eprt()
  else
    f:port()
  end
  return f
end

-- One upload (session:send) or download (session:receive) from login to QUIT.
local function transfer(t, method)
  t = override(t)
  local f = open_session(t)
  local result = method(f, t)
  f:quit()
  f:close()
  return result
end

local url_defaults = { path = "/", scheme = "ftp" }

-- ftp.genericform(url) -> request table of an ftp:// URL (user and password decoded, the
-- ";type=a|i" parameter as `type`).
function M.genericform(u)
  local t = try(url.parse(u, url_defaults))
  try(t.scheme == "ftp", "wrong scheme '" .. tostring(t.scheme) .. "'")
  try(t.host, "missing hostname")
  if t.params then
    local kind = match(t.params, "^type=(.)$")
    try(kind == "a" or kind == "i", "invalid type '" .. tostring(kind) .. "'")
    t.type = kind
  end
  if t.user then t.user = url.unescape(t.user) end
  if t.password then t.password = url.unescape(t.password) end
  return t
end

local function check_form(fname, v)
  local t = type(v)
  if t ~= "string" and t ~= "table" then
    error("bad argument #1 to '" .. fname .. "' (string or table expected, got " .. t .. ")", 3)
  end
  return t
end

-- ftp.put(url, content) -> bytes | nil, err;  ftp.put(putt) -> bytes | nil, err
M.put = protect(function(putt, body)
  if check_form("put", putt) == "string" then
    local t = M.genericform(putt)
    t.source = ltn12.source.string(body)
    return transfer(t, session.send)
  end
  return transfer(putt, session.send)
end)

-- ftp.get(url) -> content | nil, err;  ftp.get(gett) -> 1 | nil, err
M.get = protect(function(gett)
  if check_form("get", gett) == "string" then
    local t = M.genericform(gett)
    local parts = {}
    t.sink = ltn12.sink.table(parts)
    transfer(t, session.receive)
    return concat(parts)
  end
  return transfer(gett, session.receive)
end)

-- ftp.command{host, command, [argument], [check], ...} -> 1 | nil, err
-- Logs in, sends the command(s) (a string, or an array with arrays of arguments and checks)
-- and checks each reply when a check is given.
M.command = protect(function(cmdt)
  if type(cmdt) ~= "table" then
    error("bad argument #1 to 'command' (table expected, got " .. type(cmdt) .. ")", 2)
  end
  cmdt = override(cmdt)
  try(cmdt.host, "missing hostname")
  try(cmdt.command, "missing command")
  -- One command is a list of one.
  local list, args, checks = cmdt.command, cmdt.argument, cmdt.check
  if type(list) ~= "table" then list, args, checks = { list }, { args }, { checks } end
  args, checks = args or {}, checks or {}
  local f = M.open(cmdt.host, cmdt.port, cmdt.create)
  f:greet()
  f:login(cmdt.user, cmdt.password)
  for i = 1, #list do
    f.try(f.tp:command(list[i], args[i]))
    if checks[i] then expect(f, checks[i]) end
  end
  f:quit()
  return f:close()
end)

socket.ftp = M

return M
