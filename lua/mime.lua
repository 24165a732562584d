-- mime.lua: the `mime` namespace, with LuaSocket 3.1's API: the low-level functions of the C++
-- core (mime.core) plus high-level ltn12 filters built on them (encode, decode, wrap,
-- normalize, stuff). Pure Lua over mime.core; `require("mime")` returns the core's table.
local ltn12 = require("ltn12")
local M = require("mime.core")

local error, tostring, type = error, tostring, type
local cycle = ltn12.filter.cycle

-- Optional arguments of the filter factories, checked when the filter is made rather than when
-- it first runs. `level` counts from the factory (factories are called through a chooser).
local function check_opt(v, n, fname, expected, level)
  if v == nil then return end
  local t = type(v)
  if t == expected or (expected == "string" and t == "number") then return end
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, expected, t),
    level + 1)
end

-- Filter factories by name: encodet[name](...), decodet[name](...), wrapt[name](...). The
-- tables are public; adding an entry adds a name that encode/decode/wrap accept.
local encodet, decodet, wrapt = {}, {}, {}
M.encodet, M.decodet, M.wrapt = encodet, decodet, wrapt

encodet["base64"] = function()
  return cycle(M.b64, "")
end

-- mode "binary" escapes line breaks too, so that binary data survives; "text" (the default)
-- keeps CRLF as the line break.
encodet["quoted-printable"] = function(mode)
  check_opt(mode, 2, "encode", "string", 3)
  return cycle(M.qp, "", mode == "binary" and "=0D=0A" or "\r\n")
end

decodet["base64"] = function()
  return cycle(M.unb64, "")
end

decodet["quoted-printable"] = function()
  return cycle(M.unqp, "")
end

local function wrap_text(length)
  check_opt(length, 2, "wrap", "number", 3)
  length = length or 76
  return cycle(M.wrp, length, length)
end
wrapt["text"] = wrap_text
wrapt["base64"] = wrap_text
wrapt["default"] = wrap_text

wrapt["quoted-printable"] = function()
  return cycle(M.qpwrp, 76, 76)
end

-- Returns f(name, a, b) that calls factories[name](a, b). A first argument that is not a
-- string stands for "default" and moves to the options, so that mime.wrap(60) is
-- mime.wrap("default", 60). An unknown name raises "unknown key (name)".
local function chooser(factories)
  return function(...)
    local name, a, b = ...
    if type(name) ~= "string" then name, a, b = "default", ... end
    local factory = factories[name]
    if factory == nil then error("unknown key (" .. tostring(name) .. ")", 3) end
    return factory(a, b)
  end
end

-- mime.encode("base64") | mime.encode("quoted-printable" [, "text" | "binary"]) -> filter
-- mime.decode("base64" | "quoted-printable") -> filter
-- mime.wrap(["text" [, length]] | "base64" | "quoted-printable") -> filter
M.encode, M.decode, M.wrap = chooser(encodet), chooser(decodet), chooser(wrapt)

-- mime.normalize([marker]) -> filter that writes every line break as `marker` (default CRLF).
function M.normalize(marker)
  check_opt(marker, 1, "normalize", "string", 2)
  return cycle(M.eol, 0, marker)
end

-- mime.stuff() -> filter that dot-stuffs an SMTP message body (which starts at a line start).
function M.stuff()
  return cycle(M.dot, 2)
end

return M
