-- ltn12.lua: sources, sinks, filters and pumps (the LTN012 model), with LuaSocket 3.1's `ltn12`
-- API. Pure Lua: it knows nothing about sockets, so a pump blocks or yields exactly when the
-- source or sink it drives does (socket.source/socket.sink inside a task yield).
--
-- The protocol every piece follows:
--   source()            -> chunk | nil (end) | nil, err
--   sink(chunk, err)    -> truthy (go on) | nil, err; sink(nil) marks the end of the data
--   filter(chunk)       -> output; after a non-empty output for a data chunk the caller asks
--                          for the rest with filter("") until it answers ""; at the end it calls
--                          filter(nil) until it answers nil.
local M = {}

local error, pcall, select, type, getmetatable = error, pcall, select, type, getmetatable
local tostring = tostring
local sub = string.sub
local unpack = table.unpack

local filter, source, sink, pump = {}, {}, {}, {}
M.filter, M.source, M.sink, M.pump = filter, source, sink, pump

-- Chunk size of the file and string sources. Read at each call, so a caller may change it.
M.BLOCKSIZE = 2048
M._VERSION = "LTN12 1.0.3 (uvsocket 0.1.0)"

-- True for functions and for values with a __call metamethod (socket.sink/socket.source return
-- callable tables).
local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

local function check_callable(v, n, fname, what)
  if not callable(v) then
    error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, what,
      v == nil and "no value" or type(v)), 3)
  end
end

-- A file for source.file and sink.file: nil or false (io.open failed; `msg` says why), or an
-- object with the method the source or sink will call (an io file, or anything like one).
local function index(v, k) return v[k] end

local function check_file(handle, method, fname)
  if not handle then return end
  local t = type(handle)
  local ok = t == "userdata" or t == "table"
  if ok then
    local found, m = pcall(index, handle, method)  -- a userdata may not be indexable at all
    ok = found and callable(m)
  end
  if not ok then
    error(("bad argument #1 to '%s' (file expected, got %s)"):format(fname, t), 3)
  end
end

-----------------------------------------------------------------------------------------------
-- Filters
-----------------------------------------------------------------------------------------------

-- filter.cycle(low [, ctx [, extra]]) -> filter
-- Turns a low-level function `out, ctx = low(ctx, chunk, extra)` into a filter that keeps the
-- context between calls (the shape of every mime.core function).
function filter.cycle(low, ctx, extra)
  check_callable(low, 1, "cycle", "function")
  return function(chunk)
    local out
    out, ctx = low(ctx, chunk, extra)
    return out
  end
end

-- Joins two filters into one that follows the same protocol. `first` and `second` are each
-- driven by the protocol: a filter that returned non-empty output is asked for the rest (with
-- "" while data flows, with nil at the end) before it is given anything new.
local function join(first, second)
  local first_more = false   -- first may still hold output for the input it was given
  local second_more = false  -- the same for second
  local first_done = false   -- first answered nil to the end marker
  local finished = false     -- second answered nil to the end marker: the pair is done

  -- Feeds one piece of first's output to second; returns second's answer.
  local function pass(piece)
    local out = second(piece)
    if out == nil then error("filter returned inappropriate nil", 3) end
    second_more = out ~= ""
    return out
  end

  return function(chunk)
    if finished then return nil end
    if chunk ~= nil and chunk ~= "" then
      -- New data: by the protocol both filters have been drained.
      local piece = first(chunk)
      if piece == nil then error("filter returned inappropriate nil", 2) end
      first_more = piece ~= ""
      if first_more then
        local out = pass(piece)
        if out ~= "" then return out end
      end
    end
    while true do
      if second_more then
        local out = second("")
        if out == nil then error("filter returned inappropriate nil", 2) end
        if out ~= "" then return out end
        second_more = false
      end
      if first_more then
        local piece = first("")
        if piece == nil then error("filter returned inappropriate nil", 2) end
        if piece == "" then
          first_more = false
        else
          local out = pass(piece)
          if out ~= "" then return out end
        end
      elseif chunk ~= nil then
        return ""   -- everything drained; wait for more input
      elseif not first_done then
        local piece = first(nil)
        if piece == nil then
          first_done = true
        elseif piece == "" then
          error('filter returned ""', 2)
        else
          local out = pass(piece)
          if out ~= "" then return out end
        end
      else
        local out = second(nil)
        if out == nil then
          finished = true
          return nil
        elseif out == "" then
          error('filter returned ""', 2)
        end
        return out
      end
    end
  end
end

-- filter.chain(f1, f2, ...) -> filter
-- A filter that passes its input through f1, then f2, and so on.
function filter.chain(...)
  local n = select("#", ...)
  local filters = { ... }
  if n == 0 then check_callable(nil, 1, "chain", "filter") end
  for i = 1, n do check_callable(filters[i], i, "chain", "filter") end
  local f = filters[n]
  for i = n - 1, 1, -1 do f = join(filters[i], f) end
  return f
end

-----------------------------------------------------------------------------------------------
-- Sources
-----------------------------------------------------------------------------------------------

local function no_data() return nil end

-- source.empty() -> source that ends at once.
function source.empty()
  return no_data
end

-- source.error(err) -> source that fails with `err` at every call.
function source.error(err)
  return function() return nil, err end
end

-- source.file(handle [, msg]) -> source of the file's contents, BLOCKSIZE bytes at a time; the
-- file is closed when its end is reached. A nil handle (io.open failed) gives an error source
-- with `msg`, so that `source.file(io.open(name, "rb"))` reports why the open failed.
function source.file(handle, msg)
  check_file(handle, "read", "file")
  if not handle then return source.error(msg or "unable to open file") end
  return function()
    if not handle then return nil end
    local chunk = handle:read(M.BLOCKSIZE)
    if chunk == nil then
      handle:close()
      handle = nil
    end
    return chunk
  end
end

-- source.simplify(src) -> source
-- Adapts a "fancy" source, which may return a replacement for itself after a chunk, into a
-- plain one.
function source.simplify(src)
  check_callable(src, 1, "simplify", "source")
  return function()
    local chunk, other = src()
    if chunk == nil then return nil, other end
    if other ~= nil then src = other end
    return chunk
  end
end

-- source.string(s) -> source of the bytes of `s`, BLOCKSIZE at a time (nil: empty source).
function source.string(s)
  if s == nil then return source.empty() end
  local t = type(s)
  if t ~= "string" and t ~= "number" then
    error("bad argument #1 to 'string' (string expected, got " .. t .. ")", 2)
  end
  s = tostring(s)
  local pos = 1
  return function()
    if pos > #s then return nil end
    local size = M.BLOCKSIZE
    local chunk = sub(s, pos, pos + size - 1)
    pos = pos + size
    return chunk
  end
end

-- source.table(t) -> source of t[1], t[2], ... up to the first nil.
function source.table(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'table' (table expected, got " .. type(t) .. ")", 2)
  end
  local next_index = 1
  return function()
    local item = t[next_index]
    next_index = next_index + 1   -- moves on past a nil too, as LuaSocket's does
    return item
  end
end

-- source.rewind(src) -> source
-- A source that can be given chunks back: rewound(chunk) pushes `chunk`, the next calls
-- without argument return the pushed chunks (last pushed first) before reading src again.
function source.rewind(src)
  check_callable(src, 1, "rewind", "source")
  local stack, top = {}, 0
  return function(chunk)
    if chunk ~= nil then
      top = top + 1
      stack[top] = chunk
      return
    end
    if top > 0 then
      chunk = stack[top]
      stack[top] = nil
      top = top - 1
      return chunk
    end
    return src()
  end
end

-- source.cat(src1, src2, ...) -> source of src1's data, then src2's, and so on. An error of
-- one source is returned as is.
function source.cat(...)
  local n = select("#", ...)
  local list = { ... }
  for i = 1, n do check_callable(list[i], i, "cat", "source") end
  local i = 1
  return function()
    while i <= n do
      local chunk, err = list[i]()
      if chunk ~= nil then return chunk end
      if err then return nil, err end
      i = i + 1
    end
    return nil
  end
end

-- source.chain(src, f [, f2, ...]) -> source of src's data passed through the filter(s).
-- Calling the source again after it has returned its final nil raises "source is empty!".
function source.chain(src, f, ...)
  check_callable(src, 1, "chain", "source")
  check_callable(f, 2, "chain", "filter")
  if select("#", ...) > 0 then f = filter.chain(f, ...) end
  local more = false    -- f may hold output for what it was given: drain it first
  local ending = false  -- src has ended: f is drained with nil
  local over = false    -- f answered nil to the end marker
  return function()
    if over then error("source is empty!", 2) end
    while true do
      if ending then
        local out = f(nil)
        if out == nil then
          over = true
          return nil
        elseif out == "" then
          error('filter returned ""', 2)
        end
        return out
      elseif more then
        local out = f("")
        if out == nil then error("filter returned inappropriate nil", 2) end
        if out ~= "" then return out end
        more = false
      else
        local chunk, err = src()
        if err then return nil, err end
        if chunk == nil then
          ending = true
        elseif chunk ~= "" then
          local out = f(chunk)
          if out == nil then error("filter returned inappropriate nil", 2) end
          if out ~= "" then
            more = true
            return out
          end
        end
      end
    end
  end
end

-----------------------------------------------------------------------------------------------
-- Sinks
-----------------------------------------------------------------------------------------------

-- sink.table([t]) -> sink, t: stores each chunk in t (t[#t + 1] = chunk).
function sink.table(t)
  if t == nil then
    t = {}
  elseif type(t) ~= "table" then
    error("bad argument #1 to 'table' (table expected, got " .. type(t) .. ")", 2)
  end
  local function store(chunk)
    if chunk ~= nil then t[#t + 1] = chunk end
    return 1
  end
  return store, t
end

-- sink.simplify(snk) -> sink
-- Adapts a "fancy" sink, which may return a replacement for itself, into a plain one.
function sink.simplify(snk)
  check_callable(snk, 1, "simplify", "sink")
  return function(chunk, err)
    local ok, other = snk(chunk, err)
    if not ok then return nil, other end
    if other ~= nil then snk = other end
    return 1
  end
end

-- sink.file(handle [, msg]) -> sink writing to the file, closed at the end of the data; a nil
-- handle gives an error sink with `msg`.
function sink.file(handle, msg)
  check_file(handle, "write", "file")
  if not handle then return sink.error(msg or "unable to open file") end
  return function(chunk)
    if chunk == nil then
      handle:close()
      return 1
    end
    return handle:write(chunk)
  end
end

local function discard() return 1 end

-- sink.null() -> sink that accepts and drops everything.
function sink.null()
  return discard
end

-- sink.error(err) -> sink that refuses everything with `err`.
function sink.error(err)
  return function() return nil, err end
end

-- sink.chain(f [, f2, ...], snk) -> sink that passes its data through the filter(s) into snk.
-- Empty chunks are not handed to the filter nor to snk.
function sink.chain(f, snk, ...)
  local n = select("#", ...)
  if n > 0 then
    local args = { f, snk, ... }
    snk = args[n + 2]
    args[n + 2] = nil
    for i = 1, n + 1 do check_callable(args[i], i, "chain", "filter") end
    f = filter.chain(unpack(args, 1, n + 1))
  else
    check_callable(f, 1, "chain", "filter")
  end
  check_callable(snk, n + 2, "chain", "sink")
  return function(chunk, err)
    if chunk == "" then return 1 end
    if chunk == nil then
      while true do
        local out = f(nil)
        if out == "" then error('filter returned ""', 2) end
        local ok, serr = snk(out, err)
        if not ok then return nil, serr end
        if out == nil then return 1 end
      end
    end
    local out = f(chunk)
    while true do
      if out == nil then error("filter returned inappropriate nil", 2) end
      if out == "" then return 1 end
      local ok, serr = snk(out, err)
      if not ok then return nil, serr end
      out = f("")
    end
  end
end

-----------------------------------------------------------------------------------------------
-- Pumps
-----------------------------------------------------------------------------------------------

-- pump.step(src, snk) -> 1 | nil, err
-- Moves one chunk. At the end of the data it hands nil to the sink and returns nil (plus the
-- source's or the sink's error, if any).
function pump.step(src, snk)
  check_callable(src, 1, "step", "source")
  check_callable(snk, 2, "step", "sink")
  local chunk, source_failure = src()
  local accepted, sink_failure = snk(chunk, source_failure)
  if chunk == nil or not accepted then return nil, source_failure or sink_failure end
  return 1
end
local default_step = pump.step

-- pump.all(src, snk [, step]) -> 1 | nil, err: steps until the data ends or something fails.
function pump.all(src, snk, step)
  -- (a plain function, the common case, tested here: socket.http pumps every response body)
  if type(src) ~= "function" then check_callable(src, 1, "all", "source") end
  if type(snk) ~= "function" then check_callable(snk, 2, "all", "sink") end
  if step ~= nil then check_callable(step, 3, "all", "function") end
  local move = step or pump.step
  if move == default_step then
    -- pump.step's own loop, without its checks for every chunk: they were made above, once.
    while true do
      local chunk, source_failure = src()
      local accepted, sink_failure = snk(chunk, source_failure)
      if chunk == nil or not accepted then
        local failure = source_failure or sink_failure
        if failure then return nil, failure end
        return 1
      end
    end
  end
  local more, err
  repeat
    more, err = move(src, snk)
  until not more
  if err then return nil, err end
  return 1
end

return M
