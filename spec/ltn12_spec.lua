-- ltn12_spec.lua: sources, sinks, filters and pumps (lua/ltn12.lua), alone and pumping through
-- real loopback sockets with socket.source/socket.sink, in blocking mode and in tasks.
local socket = require("socket")
local ltn12 = require("ltn12")
local mime = require("mime")
local async = socket.async
local H = require("support.helpers").use(_ENV)

teardown(H.cleanup)

-- Drains a source into a string.
local function drain(src)
  local snk, t = ltn12.sink.table()
  assert(ltn12.pump.all(src, snk))
  return table.concat(t)
end

-- A filter that follows the LTN012 protocol strictly and checks that its caller does too: it
-- hands out its input `size` bytes at a time, so the caller has to ask for the rest with "".
-- filter(nil, "done") tells whether it has been driven to the end.
local function splitter(size)
  local buffer, last_in, last_out = "", "", ""
  local function out(chunk)
    local part = buffer:sub(1, size)
    buffer = buffer:sub(size + 1)
    if part == "" and chunk == nil then part = nil end
    last_in, last_out = chunk, part
    return part
  end
  return function(chunk, done)
    if done then return last_in == nil and last_out == nil end
    if chunk == nil then
      assert(last_out ~= nil, "called again after it answered nil")
      assert(last_in == nil or last_in == "" or last_out == "", "end while output was pending")
    elseif chunk == "" then
      assert(last_out ~= "", "asked for more after it answered \"\"")
      assert(last_in ~= nil and last_out ~= nil, "\"\" after the end")
    else
      assert(last_in ~= nil, "data after the end")
      assert(last_in == "" or last_out == "", "new data while output was pending")
      buffer = chunk
    end
    return out(chunk)
  end
end

-- A filter that gathers input until it has `size` bytes (or the end), also checking the
-- protocol.
local function gatherer(size)
  local buffer, last_in, last_out = "", "", ""
  return function(chunk, done)
    if done then return last_in == nil and last_out == nil end
    if chunk == nil then
      assert(last_out ~= nil, "called again after it answered nil")
    elseif chunk == "" then
      assert(last_out ~= "", "asked for more after it answered \"\"")
    else
      assert(last_in ~= nil, "data after the end")
      assert(last_in == "" or last_out == "", "new data while output was pending")
      buffer = buffer .. chunk
    end
    local part = ""
    if #buffer >= size or chunk == nil then
      part, buffer = buffer, ""
    end
    if part == "" and chunk == nil then part = nil end
    last_in, last_out = chunk, part
    return part
  end
end

local function doubler(chunk)
  return chunk and chunk:gsub(".", "%0%0")
end

local function upper(chunk)
  return chunk and chunk:upper()
end

describe("ltn12", function()
  it("has LuaSocket's constants", function()
    assert.are.equal(2048, ltn12.BLOCKSIZE)
    assert.are.equal("integer", math.type(ltn12.BLOCKSIZE))
    assert.matches("^LTN12 1%.0%.3", ltn12._VERSION)
    assert.is_nil(rawget(_G, "ltn12"))
  end)

  describe("sources", function()
    it("empty ends at once, error fails every time", function()
      assert.is_nil(ltn12.source.empty()())
      local src = ltn12.source.error("broken")
      assert.are.same({ nil, "broken" }, { src() })
      assert.are.same({ nil, "broken" }, { src() })
    end)

    it("string gives BLOCKSIZE chunks, and nothing for nil", function()
      local s = ("0123456789"):rep(500)
      local src = ltn12.source.string(s)
      local a, b, c = src(), src(), src()
      assert.are.equal(2048, #a)
      assert.are.equal(2048, #b)
      assert.are.equal(904, #c)
      assert.are.equal(s, a .. b .. c)
      assert.is_nil(src())
      assert.is_nil(src())
      assert.is_nil(ltn12.source.string(nil)())
      assert.is_nil(ltn12.source.string("")())
      assert.are.equal("42", ltn12.source.string(42)())
    end)

    it("string follows a changed BLOCKSIZE", function()
      local saved = ltn12.BLOCKSIZE
      ltn12.BLOCKSIZE = 3
      local ok, err = pcall(function()
        local src = ltn12.source.string("abcdefg")
        assert.are.same({ "abc", "def", "g" }, { src(), src(), src() })
      end)
      ltn12.BLOCKSIZE = saved
      assert(ok, err)
    end)

    it("table gives the array items", function()
      local src = ltn12.source.table({ "a", "b", "c" })
      assert.are.same({ "a", "b", "c" }, { src(), src(), src() })
      assert.is_nil(src())
    end)

    it("file reads the file and closes it at the end", function()
      local name = os.tmpname()
      local data = ("x"):rep(5000)
      local f = assert(io.open(name, "wb"))
      f:write(data)
      f:close()
      local h = assert(io.open(name, "rb"))
      local src = ltn12.source.file(h)
      assert.are.equal(data, drain(src))
      assert.are.equal("closed file", io.type(h))
      assert.is_nil(src())
      os.remove(name)
    end)

    it("file reports why the open failed", function()
      local src = ltn12.source.file(io.open("/nonexistent/dir/file"))
      local chunk, err = src()
      assert.is_nil(chunk)
      assert.matches("No such file", err)
      assert.are.same({ nil, "unable to open file" }, { ltn12.source.file(nil)() })
    end)

    it("simplify follows a fancy source's replacement", function()
      local second = ltn12.source.string("tail")
      local first = function() return "head", second end
      assert.are.equal("headtail", drain(ltn12.source.simplify(first)))
      local failing = ltn12.source.simplify(ltn12.source.error("oops"))
      assert.are.same({ nil, "oops" }, { failing() })
    end)

    it("rewind gives pushed chunks back, last pushed first", function()
      local src = ltn12.source.rewind(ltn12.source.table({ "1", "2" }))
      assert.are.equal("1", src())
      src("a")
      src("b")
      assert.are.equal("b", src())
      assert.are.equal("a", src())
      assert.are.equal("2", src())
      assert.is_nil(src())
    end)

    it("cat concatenates sources and stops at an error", function()
      local src = ltn12.source.cat(ltn12.source.string("ab"), ltn12.source.empty(),
        ltn12.source.table({ "c", "d" }))
      assert.are.equal("abcd", drain(src))
      src = ltn12.source.cat(ltn12.source.string("x"), ltn12.source.error("bad"),
        ltn12.source.string("never"))
      assert.are.equal("x", src())
      assert.are.same({ nil, "bad" }, { src() })
      assert.is_nil(ltn12.source.cat()())
    end)

    it("chain passes the data through one or several filters", function()
      local s = ("abc"):rep(3000)
      assert.are.equal(s:upper(), drain(ltn12.source.chain(ltn12.source.string(s), upper)))
      local src = ltn12.source.chain(ltn12.source.string(s), doubler, upper, doubler)
      assert.are.equal(doubler(upper(doubler(s))), drain(src))
    end)

    it("chain drives a filter by the protocol", function()
      local s = ("0123456789"):rep(700)
      local f = splitter(7)
      assert.are.equal(s, drain(ltn12.source.chain(ltn12.source.string(s), f)))
      assert.is_true(f(nil, "done"))
      local g = gatherer(5000)
      assert.are.equal(s, drain(ltn12.source.chain(ltn12.source.string(s), g)))
      assert.is_true(g(nil, "done"))
    end)

    it("chain skips empty chunks of the source", function()
      local f = splitter(2)
      local src = ltn12.source.chain(ltn12.source.table({ "", "abc", "", "", "de" }), f)
      assert.are.equal("abcde", drain(src))
      assert.is_true(f(nil, "done"))
    end)

    it("chain returns the source's error and raises on misuse", function()
      local src = ltn12.source.chain(ltn12.source.error("gone"), upper)
      assert.are.same({ nil, "gone" }, { src() })
      src = ltn12.source.chain(ltn12.source.string("x"), upper)
      assert.are.equal("X", src())
      assert.is_nil(src())
      assert.has_error(function() src() end, "source is empty!")
      src = ltn12.source.chain(ltn12.source.string("x"), function() return nil end)
      assert.error_matches(function() src() end, "filter returned inappropriate nil")
      src = ltn12.source.chain(ltn12.source.string("x"), function(c) return c or "" end)
      assert.error_matches(function() drain(src) end, 'filter returned ""')
    end)
  end)

  describe("sinks", function()
    it("table stores the chunks and returns its table", function()
      local snk, t = ltn12.sink.table()
      assert.are.equal(1, snk("a"))
      assert.are.equal(1, snk("b"))
      assert.are.equal(1, snk(nil))
      assert.are.same({ "a", "b" }, t)
      local mine = { "x" }
      local snk2, t2 = ltn12.sink.table(mine)
      snk2("y")
      assert.are.equal(mine, t2)
      assert.are.same({ "x", "y" }, mine)
    end)

    it("null accepts everything, error refuses everything", function()
      local null = ltn12.sink.null()
      assert.are.equal(1, null("data"))
      assert.are.equal(1, null(nil))
      assert.are.same({ nil, "full" }, { ltn12.sink.error("full")("data") })
    end)

    it("file writes the data and closes the file at the end", function()
      local name = os.tmpname()
      local h = assert(io.open(name, "wb"))
      local snk = ltn12.sink.file(h)
      assert.truthy(ltn12.pump.all(ltn12.source.string(("z"):rep(9000)), snk))
      assert.are.equal("closed file", io.type(h))
      local f = assert(io.open(name, "rb"))
      assert.are.equal(("z"):rep(9000), f:read("a"))
      f:close()
      os.remove(name)
      assert.are.same({ nil, "unable to open file" }, { ltn12.sink.file(nil)("x") })
      assert.are.same({ nil, "why" }, { ltn12.sink.file(nil, "why")("x") })
    end)

    it("simplify follows a fancy sink's replacement", function()
      local snk, t = ltn12.sink.table()
      local fancy = function() return 1, snk end
      local simple = ltn12.sink.simplify(fancy)
      assert.are.equal(1, simple("lost"))
      assert.are.equal(1, simple("kept"))
      assert.are.same({ "kept" }, t)
      assert.are.same({ nil, "no" }, { ltn12.sink.simplify(ltn12.sink.error("no"))("x") })
    end)

    it("chain passes the data through filters before the sink", function()
      local s = ("abc"):rep(1000)
      local snk, t = ltn12.sink.table()
      assert.truthy(ltn12.pump.all(ltn12.source.string(s), ltn12.sink.chain(upper, snk)))
      assert.are.equal(s:upper(), table.concat(t))
      snk, t = ltn12.sink.table()
      local chained = ltn12.sink.chain(doubler, upper, doubler, snk)
      assert.truthy(ltn12.pump.all(ltn12.source.string(s), chained))
      assert.are.equal(doubler(upper(doubler(s))), table.concat(t))
    end)

    it("chain drives a filter by the protocol and never hands empty chunks on", function()
      local seen = {}
      local snk = function(chunk)
        seen[#seen + 1] = chunk == nil and "nil" or chunk
        return 1
      end
      local f = splitter(4)
      local chained = ltn12.sink.chain(f, snk)
      assert.are.equal(1, chained("abcdefghij"))
      assert.are.equal(1, chained(""))
      assert.are.equal(1, chained("k"))
      assert.are.equal(1, chained(nil))
      assert.are.same({ "abcd", "efgh", "ij", "k", "nil" }, seen)
      assert.is_true(f(nil, "done"))
      local g = gatherer(6)
      local snk2, t = ltn12.sink.table()
      chained = ltn12.sink.chain(g, snk2)
      for _ = 1, 10 do chained("abc") end
      chained(nil)
      assert.are.same({ "abcabc", "abcabc", "abcabc", "abcabc", "abcabc" }, t)
      assert.is_true(g(nil, "done"))
    end)

    it("chain returns the sink's error", function()
      local chained = ltn12.sink.chain(upper, ltn12.sink.error("disk full"))
      assert.are.same({ nil, "disk full" }, { chained("x") })
      assert.are.same({ nil, "disk full" }, { chained(nil) })
    end)
  end)

  describe("filters", function()
    it("cycle keeps the context between calls and passes the extra argument", function()
      local calls = {}
      local low = function(ctx, chunk, extra)
        calls[#calls + 1] = { ctx, chunk, extra }
        return chunk and chunk .. ctx, ctx + 1
      end
      local f = ltn12.filter.cycle(low, 1, "x")
      assert.are.equal("a1", f("a"))
      assert.are.equal("b2", f("b"))
      assert.is_nil(f(nil))
      assert.are.same({ { 1, "a", "x" }, { 2, "b", "x" }, { 3, nil, "x" } }, calls)
    end)

    it("chain of one filter is that filter", function()
      assert.are.equal(upper, ltn12.filter.chain(upper))
    end)

    it("chain composes simple filters", function()
      local f = ltn12.filter.chain(doubler, upper)
      assert.are.equal("AABB", f("ab"))
      assert.are.equal("", f(""))
      assert.is_nil(f(nil))
    end)

    for _, case in ipairs({
      { "split then gather", function() return { splitter(5), gatherer(13) } end },
      { "a bunch", function()
        return { splitter(5), gatherer(13), splitter(7), gatherer(11), splitter(10) }
      end },
      { "gathers first", function() return { gatherer(100), splitter(3), gatherer(2) } end },
    }) do
      it("chain drives protocol filters (" .. case[1] .. ") in sources and sinks", function()
        local s = ("123"):rep(30) .. ("4321"):rep(30)
        local filters = case[2]()
        assert.are.equal(s, drain(ltn12.source.chain(ltn12.source.string(s),
          ltn12.filter.chain(table.unpack(filters)))))
        for _, f in ipairs(filters) do assert.is_true(f(nil, "done")) end
        filters = case[2]()
        local snk, t = ltn12.sink.table()
        local chained = ltn12.sink.chain(ltn12.filter.chain(table.unpack(filters)), snk)
        for i = 1, #s, 17 do assert.truthy(chained(s:sub(i, i + 16))) end
        assert.truthy(chained(nil))
        assert.are.equal(s, table.concat(t))
        for _, f in ipairs(filters) do assert.is_true(f(nil, "done")) end
      end)
    end

    it("chain raises on a filter that breaks the protocol", function()
      local f = ltn12.filter.chain(upper, function(c) return c and nil end)
      assert.error_matches(function() f("x") end, "filter returned inappropriate nil")
      f = ltn12.filter.chain(function(c) return c or "" end, upper)
      assert.error_matches(function() f(nil) end, 'filter returned ""')
    end)
  end)

  describe("pumps", function()
    it("step moves one chunk and reports the end", function()
      local src = ltn12.source.table({ "a" })
      local snk, t = ltn12.sink.table()
      assert.are.equal(1, ltn12.pump.step(src, snk))
      assert.are.same({ nil, nil }, { ltn12.pump.step(src, snk) })
      assert.are.same({ "a" }, t)
    end)

    it("step reports the source's error to the sink and to the caller", function()
      local got
      local snk = function(chunk, err)
        got = { chunk, err }
        return 1
      end
      assert.are.same({ nil, "src" }, { ltn12.pump.step(ltn12.source.error("src"), snk) })
      assert.are.same({ nil, "src" }, got)
      assert.are.same({ nil, "snk" },
        { ltn12.pump.step(ltn12.source.string("x"), ltn12.sink.error("snk")) })
    end)

    it("all pumps to the end, or to the first error", function()
      local snk, t = ltn12.sink.table()
      assert.are.equal(1, ltn12.pump.all(ltn12.source.string(("q"):rep(10000)), snk))
      assert.are.equal(("q"):rep(10000), table.concat(t))
      assert.are.same({ nil, "no" },
        { ltn12.pump.all(ltn12.source.error("no"), ltn12.sink.null()) })
      assert.are.same({ nil, "full" },
        { ltn12.pump.all(ltn12.source.string("x"), ltn12.sink.error("full")) })
    end)

    it("all uses a given step function", function()
      local steps = 0
      local function step(src, snk)
        steps = steps + 1
        return ltn12.pump.step(src, snk)
      end
      assert.are.equal(1, ltn12.pump.all(ltn12.source.table({ "a", "b" }), ltn12.sink.null(), step))
      assert.are.equal(3, steps)
    end)
  end)

  it("raises on arguments of the wrong type, naming them", function()
    assert.error_matches(function() ltn12.filter.cycle(nil) end,
      "bad argument #1 to 'cycle' %(function expected, got no value%)")
    assert.error_matches(function() ltn12.filter.chain(upper, 3) end,
      "bad argument #2 to 'chain' %(filter expected, got number%)")
    assert.error_matches(function() ltn12.filter.chain() end, "bad argument #1 to 'chain'")
    assert.error_matches(function() ltn12.source.chain(nil, upper) end,
      "bad argument #1 to 'chain' %(source expected")
    assert.error_matches(function() ltn12.source.string({}) end,
      "bad argument #1 to 'string' %(string expected, got table%)")
    assert.error_matches(function() ltn12.source.table("x") end,
      "bad argument #1 to 'table' %(table expected, got string%)")
    assert.error_matches(function() ltn12.sink.chain(upper, "x") end,
      "bad argument #2 to 'chain' %(sink expected, got string%)")
    assert.error_matches(function() ltn12.pump.all(ltn12.source.empty()) end,
      "bad argument #2 to 'all' %(sink expected, got no value%)")
    -- Callable tables count as functions.
    local callable = setmetatable({}, { __call = function(_, c) return c end })
    assert.are.equal("abc", drain(ltn12.source.chain(ltn12.source.string("abc"), callable)))
  end)
end)

-----------------------------------------------------------------------------------------------
-- Through sockets
-----------------------------------------------------------------------------------------------

-- Deterministic bytes shared with the peer processes (an LCG, the same in both).
local PAYLOAD = [[
local function payload(n, seed)
  local t, x = {}, seed
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x % 256)
  end
  return table.concat(t)
end
]]
local payload = load(PAYLOAD .. "return payload")()

local function read_file(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

H.modes("ltn12 over sockets", function(run, mode)
  it("pumps a socket source through a decoding chain", function()
    run(function()
      local p, port = H.listen_peer(PAYLOAD .. [[
        local ltn12, mime = require("ltn12"), require("mime")
        local src = ltn12.source.chain(ltn12.source.string(payload(150000, 7)),
          ltn12.filter.chain(mime.encode("base64"), mime.wrap("base64")))
        assert(ltn12.pump.all(src, socket.sink("keep-open", c)))
      ]])
      local c = assert(socket.connect("127.0.0.1", port))
      local src = ltn12.source.chain(socket.source("until-closed", c), mime.decode("base64"))
      local snk, t = ltn12.sink.table()
      assert.are.equal(1, ltn12.pump.all(src, snk))
      assert.are.equal(payload(150000, 7), table.concat(t))
      p:close()
    end)
  end)

  it("pumps through an encoding chain into a socket sink", function()
    run(function()
      local out = os.tmpname()
      local p, port = H.listen_peer(([[
        local ltn12, mime = require("ltn12"), require("mime")
        local f = assert(io.open(%q, "wb"))
        local src = ltn12.source.chain(socket.source("until-closed", c),
          ltn12.filter.chain(mime.decode("quoted-printable")))
        assert(ltn12.pump.all(src, ltn12.sink.file(f)))
      ]]):format(out))
      local c = assert(socket.connect("127.0.0.1", port))
      local data = payload(100000, 3)
      local encode = ltn12.filter.chain(mime.encode("quoted-printable", "binary"),
        mime.wrap("quoted-printable"))
      local snk = ltn12.sink.chain(encode, socket.sink("close-when-done", c))
      assert.are.equal(1, ltn12.pump.all(ltn12.source.string(data), snk))
      p:close()
      assert.are.equal(data, read_file(out))
      os.remove(out)
    end)
  end)

  it("reads a length-delimited body and leaves the rest on the socket", function()
    run(function()
      local p, port = H.listen_peer([[
        c:send("HEADER\n" .. ("b"):rep(5000) .. "TRAILER\n")
        c:receive()
      ]])
      local c = assert(socket.connect("127.0.0.1", port))
      assert.are.equal("HEADER", c:receive())
      local body = drain(socket.source("by-length", c, 5000))
      assert.are.equal(("b"):rep(5000), body)
      assert.are.equal("TRAILER", c:receive())
      c:send("bye\n")
      c:close()
      p:close()
    end)
  end)

  it("returns the socket's error from a pump", function()
    run(function()
      local c, s = H.pair()
      c:close()
      assert.are.same({ nil, "closed" },
        { ltn12.pump.all(ltn12.source.string("data"), socket.sink("keep-open", c)) })
      s:close()
    end)
  end)

  if mode == "task" then
    it("pumps a megabyte between two tasks, both ways chained", function()
      local data = payload(1000000, 11)
      local got
      async.run(function()
        local c, s = H.pair()
        async.spawn(function()
          local src = ltn12.source.chain(ltn12.source.string(data),
            ltn12.filter.chain(mime.encode("base64"), mime.wrap()))
          assert(ltn12.pump.all(src, socket.sink("close-when-done", c)))
        end)
        local snk, t = ltn12.sink.table()
        assert(ltn12.pump.all(socket.source("until-closed", s),
          ltn12.sink.chain(mime.decode("base64"), snk)))
        got = table.concat(t)
      end)
      assert.are.equal(#data, #got)
      assert.is_true(data == got)
    end)
  end
end)
