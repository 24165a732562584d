-- mime_spec.lua: the mime namespace: the low-level functions of mime.core (src/mime) with
-- LuaSocket's calling convention, and the high-level ltn12 filters of lua/mime.lua.
local ltn12 = require("ltn12")
local mime = require("mime")

-- Deterministic pseudo-random bytes.
local function bytes(n, seed)
  local t, x = {}, seed
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x // 65536 % 256)
  end
  return table.concat(t)
end

-- Pumps the pieces of `chunks` through `filter`, as a chained source would.
local function through(filter, chunks)
  local snk, t = ltn12.sink.table()
  assert(ltn12.pump.all(ltn12.source.chain(ltn12.source.table(chunks), filter), snk))
  return table.concat(t)
end

-- The same through a chained sink, in one call per chunk.
local function into(filter, chunks)
  local snk, t = ltn12.sink.table()
  local chained = ltn12.sink.chain(filter, snk)
  for _, c in ipairs(chunks) do assert(chained(c)) end
  assert(chained(nil))
  return table.concat(t)
end

local function types(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = math.type(t[i]) or type(t[i]) end
  return table.concat(t, " ")
end

describe("mime", function()
  it("is the mime.core table with the high-level functions added", function()
    assert.are.equal(require("mime.core"), mime)
    assert.matches("^MIME 1%.0%.3", mime._VERSION)
    for _, f in ipairs({ "b64", "unb64", "qp", "unqp", "wrp", "qpwrp", "eol", "dot", "encode",
      "decode", "wrap", "normalize", "stuff" }) do
      assert.is_function(mime[f], f)
    end
    assert.is_table(mime.encodet)
    assert.is_table(mime.decodet)
    assert.is_table(mime.wrapt)
  end)

  describe("low-level base64", function()
    it("matches the RFC 4648 test vectors", function()
      for _, v in ipairs({ { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } }) do
        assert.are.same({ v[2] }, { (mime.b64(v[1])) })
        assert.are.same({ v[1] }, { (mime.unb64(v[2])) })
      end
      assert.are.equal("ZGllZ286cGFzc3dvcmQ=", (mime.b64("diego:password")))
    end)

    it("follows LuaSocket's incremental convention", function()
      assert.are.same({ "", "" }, { mime.b64("", "") })
      assert.are.same({ nil, nil }, { mime.b64(nil, "blablabla") })
      assert.are.same({ nil, nil }, { mime.b64("", nil) })
      assert.are.same({ nil, nil }, { mime.b64("") })
      assert.are.same({ "YWJj", "de" }, { mime.b64("ab", "cde") })
      assert.are.same({ "", "ab" }, { mime.b64("a", "b") })
      assert.are.same({ "YWJjZA==", nil }, { mime.b64("abcd") })
      assert.are.same({ "", "" }, { mime.unb64("", "") })
      assert.are.same({ nil, nil }, { mime.unb64(nil, "blablabla") })
      assert.are.same({ nil, nil }, { mime.unb64("", nil) })
      assert.are.same({ "abc", "ZA" }, { mime.unb64("YW", "JjZA") })
      assert.are.same({ nil, nil }, { mime.unb64("ZA") })
      assert.are.equal("string string", types(mime.b64("a", "bcd")))
    end)

    it("pads the encoding of every prefix split", function()
      local original, encoded = "abcdefghij", "YWJjZGVmZ2hpag=="
      for i = 0, #original do
        local a, rest = mime.b64(original:sub(1, i), original:sub(i + 1))
        assert.are.equal(encoded, a .. (mime.b64(rest) or ""))
      end
    end)

    it("skips bytes outside the alphabet when decoding", function()
      assert.are.equal("foobar", (mime.unb64("Zm9v\r\nYmFy")))
      assert.are.equal("foobar", (mime.unb64("Z-m9 v*Ym\0Fy!")))
      assert.is_nil((mime.unb64("!!!!")))
      local binary = "\0\68\29\20\15\244\218\17\169\120\0\20\56\80\96\206"
      assert.are.equal(binary, (mime.unb64((mime.b64(binary)))))
    end)
  end)

  describe("low-level quoted-printable", function()
    it("encodes by the RFC 2045 rules", function()
      assert.are.equal("ma=E7=E3", (mime.qp("ma\231\227")))
      assert.are.equal("a=3Db", (mime.qp("a=b")))
      assert.are.equal("line\r\nnext", (mime.qp("line\r\nnext")))
      assert.are.equal("a=0Ab=0Dc", (mime.qp("a\nb\rc")))
      assert.are.equal("a=0D=0Ab", (mime.qp("a\r\nb", nil, "=0D=0A")))
      -- Whitespace before a line break, or ending the data, is escaped.
      assert.are.equal("trail=20\r\ntab=09\r\n", (mime.qp("trail \r\ntab\t\r\n")))
      assert.are.equal("end=20=\r\n", (mime.qp("end ")))
      assert.are.equal("in the middle", (mime.qp("in the middle")))
      assert.is_nil((mime.qp("")))
    end)

    it("holds back what needs look-ahead", function()
      assert.are.same({ "a", " \r" }, { mime.qp("a", " \r") })
      assert.are.same({ "a=20\r\n", "" }, { mime.qp("a \r", "\n") })
      assert.are.same({ nil, nil }, { mime.qp(nil, "x") })
      assert.are.same({ "", "" }, { mime.qp("", "") })
    end)

    it("decodes, removing soft breaks and keeping malformed escapes", function()
      assert.are.equal("ma\231\227", (mime.unqp("ma=E7=e3")))
      assert.are.equal("softbreak", (mime.unqp("soft=\r\nbreak")))
      assert.are.equal("=ZZ=4g", (mime.unqp("=ZZ=4g")))
      assert.are.equal("a\r\nb", (mime.unqp("a\r\nb")))
      assert.are.equal("abc", (mime.unqp("a\nb\1c\255")))
      assert.are.same({ "x", "=4" }, { mime.unqp("x=", "4") })
      assert.are.same({ "x", nil }, { mime.unqp("x=4") })
      assert.are.same({ nil, nil }, { mime.unqp("") })
      assert.are.same({ "\0", nil }, { mime.unqp("=00") })
    end)
  end)

  describe("low-level wrapping, eol and dot", function()
    it("wrp breaks lines and returns the room left as a float", function()
      assert.are.same({ "abc\r\nde", 1.0 }, { mime.wrp(3, "abcde", 3) })
      assert.are.equal("string float", types(mime.wrp(76, "x")))
      assert.are.same({ "\r\n", 76.0 }, { mime.wrp(10) })
      assert.are.same({ nil, 76.0 }, { mime.wrp(76) })
      assert.are.same({ "a\r\nb", 75.0 }, { mime.wrp(76, "a\r\nb") })
      assert.are.equal("float", math.type(select(2, mime.wrp(76))))
    end)

    it("qpwrp never splits an escape", function()
      assert.are.same({ "ab=\r\n=3D", 2.0 }, { mime.qpwrp(5, "ab=3D", 5) })
      assert.are.same({ "=\r\n", 76.0 }, { mime.qpwrp(70) })
      assert.are.same({ nil, 76.0 }, { mime.qpwrp(76) })
    end)

    it("eol normalises every line break convention", function()
      assert.are.same({ "a\r\nb\r\nc\r\nd\r\ne", 0.0 }, { mime.eol(0, "a\rb\nc\r\nd\n\re") })
      assert.are.same({ "a\n\n\n", 13.0 }, { mime.eol(0, "a\n\n\r", "\n") })
      assert.are.same({ "", 0.0 }, { mime.eol(13, "\n") })
      assert.are.same({ nil, 0.0 }, { mime.eol(13) })
      assert.are.equal("string float", types(mime.eol(0, "x")))
    end)

    it("dot stuffs lines that start with a dot", function()
      for _, case in ipairs({ { "abc", "abc" }, { "", "" }, { "\r\n", "\r\n" },
        { "\r\n.", "\r\n.." }, { ".\r\n.", "..\r\n.." }, { "abcd.\r\n.", "abcd.\r\n.." } }) do
        assert.are.equal(case[2], (mime.dot(2, case[1])))
      end
      assert.are.same({ "a\r", 1.0 }, { mime.dot(0, "a\r") })
      assert.are.same({ "\n..", 0.0 }, { mime.dot(1, "\n.") })
      assert.are.same({ nil, 2.0 }, { mime.dot(0) })
    end)

    it("raises on arguments of the wrong type, naming them", function()
      assert.error_matches(function() mime.b64({}) end,
        "bad argument #1 to 'b64' %(string expected, got table%)")
      assert.error_matches(function() mime.unb64("x", {}) end, "bad argument #2 to 'unb64'")
      assert.error_matches(function() mime.qp("x", nil, {}) end, "bad argument #3 to 'qp'")
      assert.error_matches(function() mime.wrp() end,
        "bad argument #1 to 'wrp' %(number expected, got no value%)")
      assert.error_matches(function() mime.qpwrp(1, "x", "y") end, "bad argument #3 to 'qpwrp'")
      assert.error_matches(function() mime.eol(0.5) end, "bad argument #1 to 'eol'")
      assert.error_matches(function() mime.dot("x") end, "bad argument #1 to 'dot'")
    end)

    it("survive any number", function()
      for _, n in ipairs({ 0 / 0, math.huge, -math.huge, 1e300, -1e300, -5, 0.5 }) do
        assert.is_string((mime.wrp(n, "abcdef", 3)))
        assert.is_string((mime.qpwrp(n, "ab=3Dcd", n)))
        assert.is_string((mime.dot(n, "\r\n.x")))
      end
      assert.are.same({ "\r\na\r\nb", -1.0 }, { mime.wrp(0, "ab", 0) })
    end)
  end)

  describe("filters", function()
    it("encode, decode and wrap refuse unknown names", function()
      assert.error_matches(function() mime.encode("rot13") end, "unknown key %(rot13%)")
      assert.error_matches(function() mime.decode("x") end, "unknown key %(x%)")
      assert.error_matches(function() mime.wrap("x") end, "unknown key %(x%)")
      assert.error_matches(function() mime.encode() end, "unknown key %(default%)")
    end)

    it("encode and decode base64 through filters", function()
      assert.are.equal("Zm9vYmFy", through(mime.encode("base64"), { "fo", "ob", "ar" }))
      assert.are.equal("foobar", through(mime.decode("base64"), { "Zm", "9vY", "mFy" }))
    end)

    it("wrap text at a given or the default length", function()
      assert.are.equal(("x"):rep(76) .. "\r\n" .. ("x"):rep(24) .. "\r\n",
        through(mime.wrap(), { ("x"):rep(100) }))
      assert.are.equal("abcd\r\nefgh\r\nij\r\n", through(mime.wrap("text", 4), { "abcdefghij" }))
      assert.are.equal("abc\r\ndef\r\n", through(mime.wrap(3), { "ab", "cdef" }))
      assert.are.equal(through(mime.wrap(), { ("y"):rep(200) }),
        through(mime.wrap("base64"), { ("y"):rep(200) }))
    end)

    it("wrap quoted-printable at 76 with soft breaks", function()
      local coded = through(mime.encode("quoted-printable"), { ("\233"):rep(100) })
      local wrapped = through(mime.wrap("quoted-printable"), { coded })
      for line in (wrapped .. "\r\n"):gmatch("(.-)\r\n") do
        assert.is_true(#line <= 76)
        assert.is_nil(line:match("=.$"))  -- no escape is cut by a soft break
      end
      assert.are.equal(("\233"):rep(100), through(mime.decode("quoted-printable"), { wrapped }))
    end)

    it("normalize and stuff", function()
      assert.are.equal("a\r\nb\r\nc\r\n", through(mime.normalize(), { "a\r", "\nb\n", "c\r" }))
      assert.are.equal("a\nb\n", through(mime.normalize("\n"), { "a\r\n", "b\r" }))
      assert.are.equal("..a\r\n..b\r\n", through(mime.stuff(), { ".a\r", "\n.b\r\n" }))
    end)

    it("the manual's identity chain gives its input back", function()
      local data = bytes(5000, 1)
      local id = ltn12.filter.chain(mime.encode("quoted-printable"), mime.encode("base64"),
        mime.decode("base64"), mime.decode("quoted-printable"))
      assert.is_true(data == through(id, { data }))
    end)
  end)

  describe("chunking", function()
    -- Each chain, and the one-shot result it must give whatever the chunking.
    local data = bytes(300, 42)
    local text = ("a line with trailing space \r\n\ttabbed\t\r\n=equals=\r\n\233t\233 \r\n")
      :rep(4)
    local chains = {
      { "base64 encode and wrap", data, function()
        return ltn12.filter.chain(mime.encode("base64"), mime.wrap("base64"))
      end },
      { "base64 encode and decode", data, function()
        return ltn12.filter.chain(mime.encode("base64"), mime.wrap(), mime.decode("base64"))
      end },
      { "quoted-printable text encode and wrap", text, function()
        return ltn12.filter.chain(mime.normalize(), mime.encode("quoted-printable"),
          mime.wrap("quoted-printable"))
      end },
      { "quoted-printable binary round trip", data, function()
        return ltn12.filter.chain(mime.encode("quoted-printable", "binary"),
          mime.wrap("quoted-printable"), mime.decode("quoted-printable"))
      end },
      { "quoted-printable text round trip", text, function()
        return ltn12.filter.chain(mime.encode("quoted-printable"),
          mime.wrap("quoted-printable"), mime.decode("quoted-printable"))
      end },
      { "normalize and stuff", text:gsub("\r\n", "\n.") .. "\r\r\n\n\r", function()
        return ltn12.filter.chain(mime.normalize(), mime.stuff())
      end },
    }

    for _, case in ipairs(chains) do
      local name, input, make = case[1], case[2], case[3]
      it(name .. ": same result cut at every boundary", function()
        local whole = through(make(), { input })
        for i = 0, #input do
          local pieces = { input:sub(1, i), input:sub(i + 1) }
          local got = through(make(), pieces)
          if got ~= whole then
            error(("%s differs when cut at %d"):format(name, i))
          end
          got = into(make(), pieces)
          if got ~= whole then
            error(("%s (sink) differs when cut at %d"):format(name, i))
          end
        end
      end)

      it(name .. ": same result in random pieces", function()
        local whole = through(make(), { input })
        math.randomseed(7)
        for _ = 1, 50 do
          local pieces, at = {}, 1
          while at <= #input do
            local n = math.random(0, 9)
            pieces[#pieces + 1] = input:sub(at, at + n - 1)
            at = at + n
          end
          assert.is_true(whole == through(make(), pieces))
        end
      end)
    end

    it("round trips are exact for every length up to 200", function()
      for n = 0, 200 do
        local s = bytes(n, n + 1)
        local b = through(ltn12.filter.chain(mime.encode("base64"), mime.wrap()), { s })
        assert.is_true(s == through(mime.decode("base64"), { b }), "base64 " .. n)
        local q = through(ltn12.filter.chain(mime.encode("quoted-printable", "binary"),
          mime.wrap("quoted-printable")), { s })
        assert.is_true(s == through(mime.decode("quoted-printable"), { q }), "qp " .. n)
      end
    end)
  end)
end)
