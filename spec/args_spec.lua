-- args_spec.lua: every public function called with random arguments.
--
-- Each function of socket (and socket.core: the socket namespace, the tcp, udp and unix
-- methods, dns), mime and mime.core, ltn12, socket.url, socket.async (the C functions, the Lua
-- helpers and the methods of the objects they return) is called with arguments drawn from a
-- fixed pool (nil, booleans, numbers from -1e308 to NaN and math.mininteger, strings up to
-- 64 KiB, tables, functions, a FILE*, a coroutine, sockets of other classes) by a seeded
-- generator, a bounded number of times, in blocking mode and inside a task. Each call must
-- either return (a failure being LuaSocket's nil, err) or raise a string error that names an
-- argument of that function ("bad argument #N to 'name' (...)", "calling 'name' on bad self"),
-- or one of the few usage errors the function documents. An "attempt to ..." error from inside,
-- an argument error of some function it calls, or a crash is a bug.
--
-- Nothing here leaves loopback or blocks: host names are replaced by numeric loopback
-- addresses (no lookup goes out), Unix paths by abstract names (no file is made), every socket
-- a call receives has a timeout of 0, and the timeout arguments of waits are 0. Each call gets
-- fresh objects, closed after it; tasks it starts are cancelled.
local socket = require("socket")
local unix = require("socket.unix")
local mime = require("mime")
local ltn12 = require("ltn12")
local url = require("socket.url")
local async = socket.async
local H = require("support.helpers").use(_ENV)

local SEED = 20240611
local CALLS = 10000 -- per mode
local HUGE = string.rep("a", 65536)
local TRACE = os.getenv("ARGS_TRACE") -- set it to see each call on stderr before it is made

-----------------------------------------------------------------------------------------------
-- The pool. Each entry makes a fresh value; `made` collects what must be closed after the call.
-----------------------------------------------------------------------------------------------
local made

local function keep(v)
  made[#made + 1] = v
  return v
end

local function nothing() end

local POOL = {
  function() return nil end,
  function() return true end,
  function() return false end,
  function() return 0 end,
  function() return 1 end,
  function() return -1 end,
  function() return 0.5 end,
  function() return 2 end,
  function() return 1e308 end,
  function() return -1e308 end,
  function() return 0 / 0 end,
  function() return math.huge end,
  function() return -math.huge end,
  function() return math.mininteger end,
  function() return math.maxinteger end,
  function() return 2 ^ 63 end,
  function() return "" end,
  function() return "x" end,
  function() return "*l" end,
  function() return "*a" end,
  function() return "80" end,
  function() return "-1" end,
  function() return "127.0.0.1" end,
  function() return "http://u:p@h:8/a/../b;p?q#f" end,
  function() return "=41\r\n.\r\n" end,
  function() return "\0\255" end,
  function() return "recv-buffer-size" end, -- socket options, so that setoption goes further
  function() return "linger" end,
  function() return "ipv6-add-membership" end,
  function() return HUGE end,
  function() return {} end,
  function() return { 1, 2, 3 } end,
  function() return { "a", "b", x = 1 } end,
  function() return nothing end,
  function() return os.clock end, -- a C function that takes any arguments and never raises
  function() return setmetatable({}, { __call = nothing }) end,
  function() return keep(io.tmpfile()) end,
  function() return coroutine.create(nothing) end,
  function() return keep(socket.tcp()) end,
  function() return keep(socket.udp()) end,
  function() return keep(unix.stream()) end,
  function() return keep({ keep(socket.tcp()) }) end,
  function() return async.lock() end,
  function() return ltn12.source.empty() end,
}

-- What a host argument gets instead of a string or a number: numeric addresses only, so that no
-- lookup leaves the machine (/etc/hosts names 127.0.0.1, so its reverse lookup stays local
-- too). Unix path arguments get abstract names, so that no file appears.
local ADDRESSES = { "127.0.0.1", "::1", "0.0.0.0", "*" }
local REVERSE = { "127.0.0.1" }
local PATHS = { "\0uvsocket-args-a", "\0uvsocket-args-b" }
-- What a descriptor argument (setfd) gets instead of a number: nothing that is open, so that no
-- socket takes over (and later closes) stdout or another socket's descriptor.
local FDS = { -1, 999999, 1e308, -1e308, 0 / 0, math.mininteger }

-- A small deterministic generator (the spec must not depend on math.random's state).
local state
local function rand(n)
  state = (state * 1103515245 + 12345) % 2147483648
  return state % n + 1
end

local function close_all(list)
  for i = #list, 1, -1 do
    local v = list[i]
    if type(v) == "userdata" and v.close then pcall(v.close, v) end
    if type(v) == "table" then
      for _, x in ipairs(v) do pcall(x.close, x) end
    end
  end
end

-----------------------------------------------------------------------------------------------
-- What a call may raise
-----------------------------------------------------------------------------------------------

-- The function an argument error names, stripped of module prefixes; nil if `err` is not one.
local function named(err)
  local name = err:match("bad argument #%d+ to '([^']*)' %(.+%)")
    or err:match("calling '([^']*)' on bad self")
  if not name then return nil end
  return name:match("([^.:]+)$") or name
end

-- Returns nil if the outcome is acceptable for `entry`, else a description of what went wrong.
local function judge(entry, ok, err)
  if ok then return nil end
  if entry.raises_any then return nil end
  if type(err) ~= "string" then
    if entry.raises_table and type(err) == "table" then return nil end
    return "raised a " .. type(err)
  end
  if err:find("attempt to", 1, true) then return "internal error: " .. err end
  local fname = named(err)
  if fname then
    if fname == "?" then return nil end
    for _, n in ipairs(entry.names) do
      if fname == n then return nil end
    end
    return "argument error of another function: " .. err
  end
  for _, pattern in ipairs(entry.allow or {}) do
    if err:find(pattern) then return nil end
  end
  return "unexpected error: " .. err
end

-----------------------------------------------------------------------------------------------
-- The functions
-----------------------------------------------------------------------------------------------
local entries = {}

-- Tasks a call starts run its arguments later: their failures count too.
local task_failures = {}
local function record_task_error(task, err)
  task_failures[#task_failures + 1] = ("task %s failed: %s"):format(task:name() or task:id(),
    tostring(err))
end

-- opts: names (accepted in argument errors; default: the last part of `name`), allow (Lua
-- patterns of usage errors), timeouts (argument positions that are waits: numbers and nil
-- become 0), hosts, reverse, paths (argument positions where strings and numbers are replaced,
-- see ADDRESSES), nargs (most arguments drawn), recv (makes a fresh receiver passed as argument
-- 1), after (runs after each call).
local function add(name, fn, opts)
  opts = opts or {}
  opts.name, opts.fn = name, fn
  opts.names = opts.names or { name:match("([^.:]+)$") }
  opts.nargs = opts.nargs or 4
  entries[#entries + 1] = opts
end

local function add_table(prefix, tbl, opts, skip)
  local names = {}
  for k, v in pairs(tbl) do
    if type(v) == "function" and not k:match("^__") and not (skip and skip[k]) then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local o = {}
    for ok, ov in pairs(opts and (opts[k] or opts["*"]) or {}) do o[ok] = ov end
    add(prefix .. "." .. k, tbl[k], o)
  end
end

local WAITS = { "must be called from a task", "outside a task", "from a task" }

-- socket namespace (socket.core and socket.lua)
add_table("socket", socket, {
  connect = { hosts = { 1, 3 } },
  connect4 = { hosts = { 1, 3 }, names = { "connect4", "connect" } },
  connect6 = { hosts = { 1, 3 }, names = { "connect6", "connect" } },
  bind = { hosts = { 1 } },
  sleep = { timeouts = { 1 } },
  select = { timeouts = { 3 } },
  try = { raises_table = true },
  sink = { allow = { "unknown key" } },
  source = { allow = { "unknown key" } },
})
add_table("socket.dns", socket.dns, {
  getaddrinfo = { hosts = { 1 } }, toip = { hosts = { 1 } },
  tohostname = { reverse = { 1 } },
  -- LuaSocket raises this usage error too
  getnameinfo = { reverse = { 1 }, allow = { "host and serv cannot be both nil" } },
})
add_table("socket.unix", unix)

-- mime and ltn12
add_table("mime", mime, {
  encode = { allow = { "unknown key" } },
  decode = { allow = { "unknown key" } },
  wrap = { allow = { "unknown key" } },
})
for _, part in ipairs({ "filter", "source", "sink", "pump" }) do
  add_table("ltn12." .. part, ltn12[part])
end
add_table("url", url)

-- socket.async: the C functions and the Lua helpers
add_table("async", async, {
  sleep = { timeouts = { 1 } },
  run = { allow = { "already running", "deadlock" } },
  timeout = { allow = WAITS },
  signal = { timeouts = { 2 } },
  watchdog = { after = function() async.watchdog(3) end },
  onerror = { after = function() async.onerror(record_task_error) end },
  _wait = { timeouts = { 1 }, allow = WAITS },
  _resume = { names = { "_resume", "resume" } },
  _wrap = { names = { "_wrap", "wrap" } },
}, { _debug = true })

-- Methods: each call gets a fresh receiver from `make` as its first argument.
local function add_methods(class, make, opts)
  local sample = make()
  local index = getmetatable(sample).__index
  if type(sample) == "userdata" and sample.close then sample:close() end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o["*"] = o["*"] or {}
  local tbl = {}
  for k, v in pairs(index) do
    if type(v) == "function" then tbl[k] = v end
  end
  local wrapped = {}
  for k in pairs(tbl) do
    local mo = {}
    for ok, ov in pairs(o[k] or o["*"]) do mo[ok] = ov end
    mo.recv = make
    wrapped[k] = mo
  end
  add_table(class, tbl, wrapped)
  -- and the same methods with a random first argument (a wrong self)
  add_table(class .. "(bad self)", tbl, o)
end

local listener, ulistener, unix_name
local function fresh_tcp_pair()
  local c = keep(socket.tcp())
  c:settimeout(1)
  assert(c:connect("127.0.0.1", select(2, listener:getsockname())))
  local s = keep(assert(listener:accept()))
  c:settimeout(0)
  s:settimeout(0)
  return c
end

local function zero(s)
  s:settimeout(0)
  return s
end

local SOCKET_METHODS = {
  bind = { hosts = { 2 } }, connect = { hosts = { 2 } }, setpeername = { hosts = { 2 } },
  setsockname = { hosts = { 2 } }, sendto = { hosts = { 3 } }, setfd = { fds = { 2 } },
}

local function define_methods()
  add_methods("tcp{master}", function() return keep(zero(socket.tcp())) end, SOCKET_METHODS)
  add_methods("tcp{client}", fresh_tcp_pair, SOCKET_METHODS)
  add_methods("tcp{server}", function()
    return keep(zero(assert(socket.bind("127.0.0.1", 0))))
  end, SOCKET_METHODS)
  add_methods("udp{unconnected}", function() return keep(zero(socket.udp())) end,
    SOCKET_METHODS)
  add_methods("udp{connected}", function()
    local u = keep(zero(socket.udp()))
    assert(u:setpeername("127.0.0.1", 9))
    return u
  end, SOCKET_METHODS)
  local UNIX = {
    bind = { paths = { 2 } }, connect = { paths = { 2 } }, setpeername = { paths = { 2 } },
    setsockname = { paths = { 2 } }, sendto = { paths = { 3 } }, setfd = { fds = { 2 } },
  }
  add_methods("unix{master}", function() return keep(zero(unix.stream())) end, UNIX)
  add_methods("unix{client}", function()
    local c = keep(zero(unix.stream()))
    c:settimeout(1)
    assert(c:connect(unix_name))
    keep(assert(ulistener:accept()))
    c:settimeout(0)
    return c
  end, UNIX)
  add_methods("unixdgram", function() return keep(zero(unix.dgram())) end, UNIX)
  -- socket.async objects
  local W = { timeouts = { 2 }, allow = WAITS }
  add_methods("task", function() return async.spawn(nothing) end, {
    join = { timeouts = { 2 }, allow = { "must be called from a task", "joins itself" } },
  })
  add_methods("lock", async.lock, {
    lock = W, trylock = W, unlock = { allow = { "not held by this task" } },
  })
  add_methods("semaphore", async.semaphore, { acquire = W })
  add_methods("queue", async.queue, {
    get = W, put = { timeouts = { 3 }, allow = WAITS }, items = { timeouts = { 2 } },
  })
  add_methods("event", async.event, { wait = W })
  add_methods("condition", async.condition, { wait = W })
  add_methods("group", async.group, { wait = { timeouts = { 2 } } })
end

-----------------------------------------------------------------------------------------------
-- Calling
-----------------------------------------------------------------------------------------------

local function at(list, i)
  for _, pos in ipairs(list or {}) do
    if pos == i then return true end
  end
  return false
end

local function draw(entry, i)
  local v = POOL[rand(#POOL)]()
  local t = type(v)
  if at(entry.timeouts, i) and (v == nil or tonumber(v)) then v = 0 end
  if t == "string" or t == "number" then
    if at(entry.hosts, i) then v = ADDRESSES[rand(#ADDRESSES)] end
    if at(entry.reverse, i) then v = REVERSE[rand(#REVERSE)] end
    if at(entry.paths, i) then v = PATHS[rand(#PATHS)] end
  end
  if t == "number" and at(entry.fds, i) then v = FDS[rand(#FDS)] end
  return v
end

-- Cancels the tasks a call started and lets them end.
local function drain()
  local me = async.current()
  local left = {}
  for _, t in ipairs(async.tasks()) do
    if t ~= me then left[#left + 1] = t end
  end
  if #left == 0 then return end
  local function finish()
    for _, t in ipairs(left) do t:cancel("args spec") end
    for _, t in ipairs(left) do t:join(1) end
  end
  if me then finish() else async.run(finish) end
end

-- Calls known to reach undefined behaviour (the sanitizer build, with float-cast-overflow,
-- aborts on them) would be listed here, each skipped and reported as pending, with the name
-- pattern, a predicate on the arguments and what happens. None is known.
local PENDING = {}

local function pending_reason(entry, args)
  for _, p in ipairs(PENDING) do
    if entry.name:find(p[1]) and p[2](args) then return p[3] end
  end
  return nil
end

local function describe_args(args, n)
  local out = {}
  for i = 1, n do
    local v = args[i]
    if type(v) == "string" then
      out[i] = #v > 40 and ("<string of %d bytes>"):format(#v)
        or (("%q"):format(v):gsub("\\\n", "\\n"))
    else
      out[i] = tostring(v)
    end
  end
  return table.concat(out, ", ")
end

local skipped = {}

local function call(entry)
  made = {}
  local args, n = {}, rand(entry.nargs + 1) - 1
  local first = 1
  if entry.recv then
    args[1] = entry.recv()
    first = 2
    n = n + 1
  end
  -- A wait whose timeout is left out waits for ever: always pass the timeout arguments.
  for _, pos in ipairs(entry.timeouts or {}) do
    if n < pos then n = pos end
  end
  for i = first, n do args[i] = draw(entry, i) end
  if TRACE then io.stderr:write(entry.name, "(", describe_args(args, n), ")\n") end
  local reason = pending_reason(entry, args)
  if reason then
    skipped[reason] = (skipped[reason] or 0) + 1
    close_all(made)
    drain()
    return true, nil, args, n
  end
  local ok, err = pcall(entry.fn, table.unpack(args, 1, n))
  if entry.after then entry.after() end
  close_all(made)
  drain()
  return ok, err, args, n
end

local function run_all()
  state = SEED
  local failures, count = {}, 0
  task_failures = {}
  async.onerror(record_task_error)
  local i = 0
  while count < CALLS do
    i = i % #entries + 1
    local entry = entries[i]
    do
      local ok, err, args, n = call(entry)
      count = count + 1
      local why = judge(entry, ok, err)
      if why then
        failures[#failures + 1] = ("%s(%s): %s"):format(entry.name, describe_args(args, n), why)
      end
      for _, f in ipairs(task_failures) do
        failures[#failures + 1] = ("%s(%s): %s"):format(entry.name, describe_args(args, n), f)
      end
      task_failures = {}
    end
  end
  async.onerror(nil)
  return failures
end

describe("random arguments", function()
  setup(function()
    listener = assert(socket.bind("127.0.0.1", 0))
    unix_name = "\0uvsocket-args-listener-" .. tostring(os.time()) .. "-" .. tostring({}):sub(-6)
    ulistener = unix.stream()
    assert(ulistener:bind(unix_name))
    assert(ulistener:listen())
    made = {}
    define_methods()  -- makes a sample of each receiver
    close_all(made)
    drain()
  end)
  teardown(function()
    listener:close()
    ulistener:close()
  end)

  after_each(H.assert_clean)

  for _, p in ipairs(PENDING) do
    pending(p[3])
  end

  it("never crash nor raise an internal error, in blocking mode", function()
    local failures = run_all("blocking")
    assert.are.same({}, failures)
  end)

  it("never crash nor raise an internal error, in a task", function()
    local failures = async.run(function() return run_all("task") end)
    assert.are.same({}, failures)
  end)
end)
