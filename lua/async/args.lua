-- async/args.lua: the argument checks of the Lua half of socket.async (sync, group, timer,
-- serve). Each raises Lua's standard "bad argument #N to 'name' (X expected, got Y)" at the
-- caller of the checked function, so that a wrong argument never surfaces later as an
-- "attempt to ..." error from inside the module.
local M = {}

local error, getmetatable, type = error, getmetatable, type
local format = string.format

-- The name "got Y" gives, as luaL_typeerror does: a userdata's __name (tcp{client}, ...),
-- "no value" for nil, otherwise the type.
local function typename(v)
  if v == nil then return "no value" end
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(v)
end
M.typename = typename

-- Raises the argument error for argument `n` of `fname`; `level` 1 is the checked function.
function M.fail(n, fname, expected, got, level)
  error(format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected,
    typename(got)), (level or 1) + 2)
end

-- `self` of a method of the class whose metatable is `class` (`cname` in the message). As for
-- the C methods, the arguments of a method are numbered from the one after self, and a wrong
-- self is "calling 'name' on bad self".
function M.self(v, class, cname, fname)
  if getmetatable(v) ~= class then
    error(format("calling '%s' on bad self (%s expected, got %s)", fname, cname, typename(v)), 3)
  end
  return v
end

-- An optional timeout in seconds: nil or a number.
function M.timeout(v, n, fname)
  if v ~= nil and type(v) ~= "number" then M.fail(n, fname, "number", v, 2) end
  return v
end

function M.func(v, n, fname)
  if type(v) ~= "function" then M.fail(n, fname, "function", v, 2) end
  return v
end

return M
