-- socket/url.lua: URL parsing, building, escaping and reference resolution, with the API of
-- LuaSocket 3.1's `socket.url`. Pure Lua.
--
-- Grammar used by parse and build (RFC 3986, plus the `;params` split LuaSocket keeps):
--   [scheme:][//authority][path][;params][?query][#fragment]
--   authority = [userinfo@]host[:port], userinfo = user[:password]
-- As in LuaSocket's current sources, the authority ends at the first "/", "?" or "#", so
-- "http://h?x" has host "h" and query "x".
--
-- Like LuaSocket's modules, this one also stores itself in the socket namespace (socket.url).
local socket = require("socket")

local M = {}

local error, pairs, tonumber, tostring, type = error, pairs, tonumber, tostring, type
local char, find, format = string.char, string.find, string.format
local gmatch, gsub, match, sub = string.gmatch, string.gsub, string.match, string.sub
local concat = table.concat

M._VERSION = "URL 1.0.3 (uvsocket 0.1.0)"

-- Raises a standard argument error unless `v` is a string or a number; returns it as a string.
local function check_string(v, n, fname)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname,
    v == nil and "no value" or t), 3)
end

-----------------------------------------------------------------------------------------------
-- Escaping
-----------------------------------------------------------------------------------------------

-- Replacement tables for gsub, built once: every byte outside [A-Za-z0-9_] maps to %xx
-- (lower-case hex, for escape) and, for path segments, every byte that may not appear in a
-- segment maps to %XX (upper-case hex).
local escaped, segment_escaped = {}, {}
do
  local segment_ok = "-.!~*'():@&=+$,"
  for b = 0, 255 do
    local c = char(b)
    escaped[c] = format("%%%02x", b)
    if not find(segment_ok, c, 1, true) then segment_escaped[c] = format("%%%02X", b) end
  end
end

-- url.escape(s) -> s with each byte other than letters, digits and "_" written as %xx.
function M.escape(s)
  s = check_string(s, 1, "escape")
  return (gsub(s, "[^A-Za-z0-9_]", escaped))
end

-- url.unescape(s) -> s with each %XX (either case) replaced by its byte; other "%" stay.
function M.unescape(s)
  s = check_string(s, 1, "unescape")
  return (gsub(s, "%%([0-9A-Fa-f][0-9A-Fa-f])", function(hex)
    return char(tonumber(hex, 16))
  end))
end

-- Escapes what would end or split a path segment; the characters RFC 2396 allows in a segment
-- stay as they are.
local function protect_segment(s)
  return (gsub(s, "[^A-Za-z0-9_]", segment_escaped))
end

-----------------------------------------------------------------------------------------------
-- Parsing and building
-----------------------------------------------------------------------------------------------

local SCHEME = "^([%w][%w%+%-%.]*):"

-- Splits an authority into userinfo, user, password, host and port fields of `parsed`.
local function parse_authority(parsed, authority)
  local userinfo, rest = match(authority, "^([^@]*)@(.*)$")
  if userinfo then
    parsed.userinfo = userinfo
    authority = rest
  end
  -- The port follows the last ":" unless a "]" comes after it (an IPv6 literal).
  local host, port = match(authority, "^(.*):([^:%]]*)$")
  if host then
    parsed.port = port
    authority = host
  end
  if authority ~= "" then
    parsed.host = match(authority, "^%[(.+)%]$") or authority
  end
  if userinfo then
    local user, password = match(userinfo, "^(.*):([^:]*)$")
    if user then
      parsed.user, parsed.password = user, password
    else
      parsed.user = userinfo
    end
  end
end

-- url.parse(url [, default]) -> table | nil, "invalid url"
-- The fields found in `url` (strings), over a shallow copy of `default`.
function M.parse(url, default)
  local parsed = {}
  if default ~= nil then
    if type(default) ~= "table" then
      error("bad argument #2 to 'parse' (table expected, got " .. type(default) .. ")", 2)
    end
    for k, v in pairs(default) do parsed[k] = v end
  end
  if url == nil or url == "" then return nil, "invalid url" end
  local rest = check_string(url, 1, "parse")
  local scheme = match(rest, SCHEME)
  if scheme then
    parsed.scheme = scheme
    rest = sub(rest, #scheme + 2)
  end
  local authority = match(rest, "^//([^/?#]*)")
  if authority then
    parsed.authority = authority
    rest = sub(rest, #authority + 3)
  end
  local at = find(rest, "#", 1, true)
  if at then
    parsed.fragment = sub(rest, at + 1)
    rest = sub(rest, 1, at - 1)
  end
  at = find(rest, "?", 1, true)
  if at then
    parsed.query = sub(rest, at + 1)
    rest = sub(rest, 1, at - 1)
  end
  at = find(rest, ";", 1, true)
  if at then
    parsed.params = sub(rest, at + 1)
    rest = sub(rest, 1, at - 1)
  end
  if rest ~= "" then parsed.path = rest end
  if authority then parse_authority(parsed, authority) end
  return parsed
end

-- The authority written from its parts: [userinfo@]host[:port], where user and password, when
-- set, replace userinfo.
local function authority_of(parsed)
  local host = tostring(parsed.host)
  if find(host, ":", 1, true) and not match(host, "^%[.*%]$") then
    host = "[" .. host .. "]"   -- an IPv6 literal
  end
  local port = parsed.port and ":" .. tostring(parsed.port) or ""
  local userinfo = parsed.userinfo
  if parsed.user then
    userinfo = parsed.password and parsed.user .. ":" .. parsed.password or parsed.user
  end
  return (userinfo and userinfo .. "@" or "") .. host .. port
end

-- url.build(parsed) -> string
-- The inverse of parse. When `host` is set, the authority is made of host, port, user,
-- password and userinfo (the lower-level fields win) and the `authority` field is ignored. A
-- host containing ":" is written in brackets.
function M.build(parsed)
  if type(parsed) ~= "table" then
    error("bad argument #1 to 'build' (table expected, got " .. type(parsed) .. ")", 2)
  end
  local authority = parsed.authority
  if parsed.host then authority = authority_of(parsed) end
  local parts = {}
  local function add(prefix, value)
    if value then parts[#parts + 1] = prefix .. value end
  end
  add("", parsed.scheme and parsed.scheme .. ":")
  add("//", authority)
  add("", parsed.path)
  add(";", parsed.params)
  add("?", parsed.query)
  add("#", parsed.fragment)
  return concat(parts)
end

-----------------------------------------------------------------------------------------------
-- Reference resolution (RFC 3986 section 5.2)
-----------------------------------------------------------------------------------------------

-- The five components of RFC 3986 (the path keeps any ";params"). Absent components are nil;
-- the path is always a string.
local function components(s)
  local c = {}
  local scheme = match(s, SCHEME)
  if scheme then
    c.scheme = scheme
    s = sub(s, #scheme + 2)
  end
  local authority = match(s, "^//([^/?#]*)")
  if authority then
    c.authority = authority
    s = sub(s, #authority + 3)
  end
  local at = find(s, "#", 1, true)
  if at then
    c.fragment = sub(s, at + 1)
    s = sub(s, 1, at - 1)
  end
  at = find(s, "?", 1, true)
  if at then
    c.query = sub(s, at + 1)
    s = sub(s, 1, at - 1)
  end
  c.path = s
  return c
end

-- RFC 3986 5.2.4: interprets the "." and ".." segments of a path. The output is kept as a list
-- of segments, each with the "/" in front of it, so that ".." drops the last one whole. The RFC
-- only meets absolute paths here; a relative one (from a relative base) stays relative.
local function remove_dots(path)
  if not find(path, ".", 1, true) then return path end
  local relative = sub(path, 1, 1) ~= "/"
  local out, n = {}, 0
  local input = path
  while input ~= "" do
    if sub(input, 1, 3) == "../" then
      input = sub(input, 4)
    elseif sub(input, 1, 2) == "./" then
      input = sub(input, 3)
    elseif sub(input, 1, 3) == "/./" then
      input = sub(input, 3)
    elseif input == "/." then
      input = "/"
    elseif sub(input, 1, 4) == "/../" or input == "/.." then
      input = "/" .. sub(input, 5)
      if n > 0 then
        out[n] = nil
        n = n - 1
      end
    elseif input == "." or input == ".." then
      input = ""
    else
      local segment = match(input, "^/?[^/]*")
      input = sub(input, #segment + 1)
      if n == 0 and relative then segment = match(segment, "^/?(.*)$") end
      n = n + 1
      out[n] = segment
    end
  end
  return concat(out)
end

-- RFC 3986 5.2.3: the reference's path appended to the base path's directory.
local function merge(base, path)
  if base.authority and base.path == "" then return "/" .. path end
  local dir = match(base.path, "^(.*/)") or ""
  return dir .. path
end

local function recompose(c)
  local out = {}
  if c.scheme then out[#out + 1] = c.scheme .. ":" end
  if c.authority then out[#out + 1] = "//" .. c.authority end
  out[#out + 1] = c.path
  if c.query then out[#out + 1] = "?" .. c.query end
  if c.fragment then out[#out + 1] = "#" .. c.fragment end
  return concat(out)
end

-- url.absolute(base, relative) -> string
-- Resolves `relative` against `base` (a string or a table as returned by parse) as RFC 3986
-- section 5.2 says. An empty or nil `relative` gives the base itself, unchanged.
function M.absolute(base, relative)
  if type(base) == "table" then
    base = M.build(base)
  elseif base == nil then
    base = ""
  else
    base = check_string(base, 1, "absolute")
  end
  if relative == nil or relative == "" then return base end
  relative = check_string(relative, 2, "absolute")
  local r = components(relative)
  local t = {}
  if r.scheme then
    t.scheme, t.authority, t.query = r.scheme, r.authority, r.query
    t.path = remove_dots(r.path)
  else
    local b = components(base)
    if r.authority then
      t.authority, t.query = r.authority, r.query
      t.path = remove_dots(r.path)
    else
      if r.path == "" then
        t.path = b.path
        t.query = r.query or b.query
      else
        if sub(r.path, 1, 1) == "/" then
          t.path = remove_dots(r.path)
        else
          t.path = remove_dots(merge(b, r.path))
        end
        t.query = r.query
      end
      t.authority = b.authority
    end
    t.scheme = b.scheme
  end
  t.fragment = r.fragment
  return recompose(t)
end

-----------------------------------------------------------------------------------------------
-- Paths
-----------------------------------------------------------------------------------------------

-- url.parse_path(path) -> array of unescaped segments, with is_absolute = 1 when the path
-- starts with "/" and is_directory = 1 when it ends with "/". Empty segments are dropped.
function M.parse_path(path)
  if path == nil then path = "" end
  path = check_string(path, 1, "parse_path")
  local segments = {}
  for segment in gmatch(path, "[^/]+") do
    segments[#segments + 1] = M.unescape(segment)
  end
  if sub(path, 1, 1) == "/" then segments.is_absolute = 1 end
  if sub(path, -1) == "/" then segments.is_directory = 1 end
  return segments
end

-- url.build_path(segments [, unsafe]) -> path
-- Joins the segments with "/". Unless `unsafe` is true, each segment is escaped first, so that
-- no byte of it can be read as a delimiter.
function M.build_path(segments, unsafe)
  if type(segments) ~= "table" then
    error("bad argument #1 to 'build_path' (table expected, got " .. type(segments) .. ")", 2)
  end
  local n = #segments
  local out = {}
  for i = 1, n do
    local segment = segments[i]
    local t = type(segment)
    if t ~= "string" and t ~= "number" then
      error(("bad argument #1 to 'build_path' (segment %d is a %s)"):format(i, t), 2)
    end
    segment = tostring(segment)
    out[i] = unsafe and segment or protect_segment(segment)
  end
  local path = concat(out, "/")
  if n > 0 and segments.is_directory then path = path .. "/" end
  if segments.is_absolute then path = "/" .. path end
  return path
end

socket.url = M

return M
