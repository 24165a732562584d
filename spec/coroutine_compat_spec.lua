-- coroutine_compat_spec.lua: the coroutine.resume, coroutine.wrap and coroutine.close that
-- require "socket" installs give exactly Lua's own results and messages whenever no wait is
-- involved. The comparison runs in a fresh process that keeps Lua's originals before loading
-- socket, case by case, outside and inside a task.
local H = require("support.helpers").use(_ENV)

local script = [==[
local stock = { resume = coroutine.resume, wrap = coroutine.wrap, close = coroutine.close }
local socket = require("socket")
local mine = { resume = coroutine.resume, wrap = coroutine.wrap, close = coroutine.close }
assert(mine.resume ~= stock.resume and mine.wrap ~= stock.wrap and mine.close ~= stock.close)

local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do
    local v = t[i]
    if type(v) == "string" then v = v:gsub("0x%x+", "ADDR")  -- addresses differ
    elseif type(v) == "table" then v = "table:" .. tostring(v.tag)
    elseif type(v) ~= "nil" and type(v) ~= "boolean" and type(v) ~= "number" then v = type(v) end
    t[i] = tostring(v)
  end
  return t.n .. ":" .. table.concat(t, "|", 1, t.n)
end

-- Each case gets a set of functions (resume, wrap, close) and returns what it observed.
local cases = {
  function(f) return f.resume(coroutine.create(function(a, b) return a + b, "x" end), 1, 2) end,
  function(f)
    local co = coroutine.create(function(...) local x = coroutine.yield(...); return x * 2 end)
    return show(f.resume(co, 1, 2, 3)) .. show(f.resume(co, 21)) .. show(f.resume(co))
  end,
  function(f) return f.resume(coroutine.create(function() error("boom") end)) end,
  function(f) return f.resume(coroutine.create(function() error({ tag = "t" }) end)) end,
  function(f) return f.resume(coroutine.create(function() error("lvl", 2) end)) end,
  function(f) return f.resume(coroutine.create(function() error() end)) end,
  function(f) return pcall(f.resume, 1) end,
  function() return pcall(function() return coroutine.resume(1) end) end,
  function() return pcall(function() return coroutine.wrap() end) end,
  function() return pcall(function() return coroutine.close("x") end) end,
  function(f) return pcall(f.resume) end,
  function(f) return pcall(f.resume, {}) end,
  function(f) return f.resume(coroutine.running()) end,
  function(f)
    local outer
    outer = coroutine.create(function()
      local inner = coroutine.create(function() return f.resume(outer) end)
      return f.resume(inner)
    end)
    return f.resume(outer)
  end,
  function(f)
    local co = coroutine.create(function() return 1 end)
    f.resume(co)
    return show(f.resume(co)) .. show(f.close(co))
  end,
  function(f)
    local g = f.wrap(function(a) local b = coroutine.yield(a + 1); return b * 10 end)
    return show(g(1)) .. show(g(2)) .. show(pcall(g))
  end,
  function(f) return pcall(f.wrap(function() error("wrapped boom") end)) end,
  function(f) return pcall(f.wrap(function() error("no position", 0) end)) end,
  function(f) return pcall(f.wrap(function() error({ tag = "obj" }) end)) end,
  function(f) return pcall(f.wrap, 42) end,
  function(f)
    local g
    g = f.wrap(function() return g() end)
    return pcall(g)
  end,
  function(f)
    local log = {}
    local g = f.wrap(function()
      local x <close> = setmetatable({}, { __close = function() log[#log + 1] = "closed" end })
      error("after close")
    end)
    local r = show(pcall(g))
    return r .. table.concat(log, ",")
  end,
  function(f)
    local co = coroutine.create(function()
      local x <close> = setmetatable({}, { __close = function() error("in close") end })
      coroutine.yield()
    end)
    f.resume(co)
    return f.close(co)
  end,
  function(f) return pcall(f.close, coroutine.running()) end,
  function(f) return pcall(f.close, 5) end,
  function(f)
    local co = coroutine.create(function() coroutine.yield(1) end)
    f.resume(co)
    return show(f.close(co)) .. show(coroutine.status(co)) .. show(f.resume(co))
  end,
  function(f)
    return pcall(f.resume, coroutine.create(function() end), table.unpack({}, 1, 300))
  end,
  function(f)
    local co = coroutine.create(function(...) return select("#", ...) end)
    return f.resume(co, nil, nil, nil)
  end,
}

-- Each set runs installed in the coroutine table, since argument errors name the function by
-- where it is found.
local function with(set, case)
  coroutine.resume, coroutine.wrap, coroutine.close = set.resume, set.wrap, set.close
  local r = show(case(set))
  coroutine.resume, coroutine.wrap, coroutine.close = mine.resume, mine.wrap, mine.close
  return r
end

local function run_all(where)
  local failed = 0
  for i, case in ipairs(cases) do
    local a = with(stock, case)
    local b = with(mine, case)
    if a ~= b then
      failed = failed + 1
      io.write(where, " case ", i, ":\n  Lua:  ", a, "\n  mine: ", b, "\n")
    end
  end
  return failed
end

local failed = run_all("outside a task")
failed = failed + socket.async.run(function() return run_all("in a task") end)
io.write("cases ", #cases, " failed ", failed, "\n")
]==]

describe("coroutine functions installed by socket", function()
  it("match Lua's own in every case that carries no wait", function()
    local f = os.tmpname()
    local h = assert(io.open(f, "w"))
    h:write(script)
    h:close()
    local p = assert(io.popen(H.LUA .. " " .. f .. " 2>&1", "r"))
    local out = p:read("a")
    p:close()
    os.remove(f)
    assert.is_truthy(out:find("cases %d+ failed 0\n$"), out)
  end)
end)
