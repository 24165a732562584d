-- socket/tp.lua: the control channel shared by socket.ftp and socket.smtp (numbered, possibly
-- multi-line replies to one-line commands), with the API of LuaSocket 3.1's `socket.tp`, plus
-- the bounded line reader that socket.http uses too.
--
-- Pure Lua over socket calls: every wait is a socket call, so the object blocks in a plain
-- script and yields inside a task without knowing which. Loading it stores the module in the
-- socket namespace (socket.tp), as LuaSocket's does.
local socket = require("socket")
local ltn12 = require("ltn12")

local M = {}

local error, getmetatable, ipairs, rawget, setmetatable, tonumber, tostring, type =
  error, getmetatable, ipairs, rawget, setmetatable, tonumber, tostring, type
local concat = table.concat
local find, match, upper = string.find, string.match, string.upper
local monotonic = socket.async.now

-- Seconds a connection made by tp.connect may wait in any one call.
M.TIMEOUT = 60
-- The longest reply line check accepts, and the longest whole (multi-line) reply, in bytes.
M.MAXLINE = 65536
M.MAXREPLY = 1048576

-----------------------------------------------------------------------------------------------
-- Bounded line reading
-----------------------------------------------------------------------------------------------

-- uvsocket's own stream sockets: their receive takes a maxsize, so a bounded line is one call.
local bounded = { ["tcp{client}"] = true, ["tls{client}"] = true,
  ["unixstream{client}"] = true }

-- The socket whose receive readline may give a maxsize: `sock` itself when it is one of
-- uvsocket's, or what a wrapper's metatable field __bounded(sock) returns (a wrapper that
-- forwards to such a socket says so that way); nil for any other object.
local function bounded_of(sock)
  local mt = getmetatable(sock)
  if mt == nil then return nil end
  if bounded[mt.__name] then return sock end
  local inner = type(mt) == "table" and rawget(mt, "__bounded")
  if inner then return bounded_of(inner(sock)) end
  return nil
end
-- (internal: socket.http finds a connection's socket once and reads every line of a head on it)
M._bounded_of = bounded_of

-- tp.readline(sock [, limit]) -> line | nil, err
-- Reads one line like sock:receive("*l") (the LF and every CR dropped), but gives up with
-- nil, "line too long" once the line passes `limit` bytes (default tp.MAXLINE), so that a peer
-- cannot make it hold an unbounded line. On uvsocket's own sockets that is one receive with a
-- maxsize (the limit, a CR and the LF); on any other object it reads one byte at a time, so it
-- never takes a byte past the LF from the socket and a later receive sees the stream exactly as
-- it would after receive("*l"). The socket's timeouts bound the whole line, as they bound one
-- receive call: byte by byte, before a read that may have to wait, the socket's timeout is
-- lowered to what is left of the line's budget and put back afterwards. (A socket without
-- gettimeout, such as a wrapper made by a `create` hook, keeps its own timeout for each byte.)
function M.readline(sock, limit)
  limit = limit or M.MAXLINE
  -- (bounded_of's first test made here: it is the common case, and a call per line counts)
  local mt = getmetatable(sock)
  local inner = mt ~= nil and (bounded[mt.__name] and sock or bounded_of(sock))
  if inner then
    local line, err = inner:receive("*l", nil, limit + 2)
    if line then
      if #line > limit then return nil, "line too long" end
      return line
    end
    if err == "oversized" then err = "line too long" end
    return nil, err
  end
  local block, total = -1, -1
  if sock.gettimeout then block, total = sock:gettimeout() end
  local budget = total >= 0 and total or block
  local deadline = budget >= 0 and monotonic() + budget or nil
  local bytes, n = {}, 0
  while true do
    local byte, err
    if deadline and not sock:dirty() then
      local left = deadline - monotonic()
      if left <= 0 then return nil, "timeout" end
      if block >= 0 and block < left then left = block end
      sock:settimeout(left)
      byte, err = sock:receive(1)
      sock:settimeout(block)
      if total >= 0 then sock:settimeout(total, "t") end
    else
      byte, err = sock:receive(1)
    end
    if not byte then return nil, err end
    if byte == "\n" then return concat(bytes, "", 1, n) end
    if byte ~= "\r" then
      n = n + 1
      if n > limit then return nil, "line too long" end
      bytes[n] = byte
    end
  end
end

-----------------------------------------------------------------------------------------------
-- The control-channel object
-----------------------------------------------------------------------------------------------

local methods = {}
local metat = { __index = methods }

-- The reply code and separator of a reply line: "250-..." gives "250", "-".
local function code_of(line)
  return match(line, "^(%d%d%d)(.?)")
end

-- Reads one reply: a line "NNN text", or "NNN-text" continued until a line that starts with
-- the same "NNN ". Returns the code (a string) and the lines joined with "\n", or nil, err.
local function read_reply(c)
  local line, err = M.readline(c, M.MAXLINE)
  if not line then return nil, err end
  local code, sep = code_of(line)
  if not code then return nil, "invalid server reply" end
  if sep ~= "-" then return code, line end
  local lines, size = { line }, #line
  repeat
    line, err = M.readline(c, M.MAXLINE)
    if not line then return nil, err end
    size = size + #line + 1
    if size > M.MAXREPLY then return nil, "server reply too long" end
    lines[#lines + 1] = line
    local current
    current, sep = code_of(line)
  until current == code and sep == " "
  return code, concat(lines, "\n")
end

-- Does `code` (a string) match `expected`: a pattern string or a number, matched against the
-- code the way string.find does ("2.." matches "250").
local function matches(code, expected)
  return find(code, expected) ~= nil
end

-- tp:check(expected) -> code, reply | nil, reply-or-err
-- Waits for the next reply. `expected` is a pattern (or number) for the code, an array of
-- them (any may match), or a function(code, reply) whose results are returned.
function methods:check(expected)
  local code, reply = read_reply(self.c)
  if not code then return nil, reply end
  local t = type(expected)
  if t == "function" then return expected(tonumber(code), reply) end
  if t == "table" then
    for _, e in ipairs(expected) do
      if matches(code, e) then return tonumber(code), reply end
    end
    return nil, reply
  end
  if matches(code, expected) then return tonumber(code), reply end
  return nil, reply
end

-- tp:command(cmd [, arg]) -> bytes | nil, err: sends "CMD arg\r\n" (the command upper-cased).
-- A line break inside either would start a second command: that is refused.
function methods:command(cmd, arg)
  cmd = upper(cmd)
  local line = arg ~= nil and cmd .. " " .. tostring(arg) or cmd
  if find(line, "[\r\n]") then return nil, "invalid command" end
  return self.c:send(line .. "\r\n")
end

-- tp:sink(snk [, pattern]) -> what snk returns for one receive of `pattern`.
function methods:sink(snk, pattern)
  local chunk, err = self.c:receive(pattern)
  return snk(chunk, err)
end

-- tp:source(src [, step]) -> 1 | nil, err: sends everything src produces.
function methods:source(src, step)
  return ltn12.pump.all(src, socket.sink("keep-open", self.c), step or ltn12.pump.step)
end

function methods:send(data) return self.c:send(data) end
function methods:receive(pattern) return self.c:receive(pattern) end
function methods:getfd() return self.c:getfd() end
function methods:dirty() return self.c:dirty() end
function methods:getcontrol() return self.c end
function methods:getpeername() return self.c:getpeername() end
function methods:getsockname() return self.c:getsockname() end

-- tp:close() -> 1
function methods:close()
  self.c:close()
  return 1
end

-- tp.connect(host, port [, timeout [, create]]) -> tp | nil, err
-- Creates the socket with create() (default socket.tcp), sets its timeout (default tp.TIMEOUT)
-- and waits for the connection.
function M.connect(host, port, timeout, create)
  if create ~= nil and type(create) ~= "function" then
    error("bad argument #4 to 'connect' (function expected, got " .. type(create) .. ")", 2)
  end
  local c, err = (create or socket.tcp)()
  if not c then return nil, err end
  c:settimeout(timeout or M.TIMEOUT)
  local connected, cerr = c:connect(host, port)
  if connected then return setmetatable({ c = c }, metat) end
  c:close()
  return nil, cerr
end

socket.tp = M

return M
