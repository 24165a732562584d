-- http_core_spec.lua: socket.http.core (src/http/lua/http_lua.cpp), the binding over the pure
-- HTTP/1.1 and WebSocket parsers: head parser, chunked decoder, frame parser and encoder,
-- handshake key, and the argument errors.
local core = require("socket.http.core")

-- Feeds `s` to `obj` in pieces of `step` bytes and returns the first result that is not nil,
-- with the offset (in `s`) where the piece that gave it started.
local function feed_pieces(obj, s, step)
  for at = 1, #s, step do
    local r = table.pack(obj:feed(s:sub(at, at + step - 1)))
    if r[1] ~= nil or r[2] ~= nil then return r, at - 1 end
  end
  return table.pack(nil), #s
end

local GET = "GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\n"
  .. "Accept-Language: en, mi\r\n\r\n"

describe("socket.http.core", function()
  describe("parser", function()
    it("parses a request head and says where the body starts", function()
      local p = core.parser("request")
      assert.matches("^http%.parser: 0x", tostring(p))
      local head, consumed = p:feed(GET .. "body")
      assert.are.equal(#GET, consumed)
      assert.are.same({
        method = "GET", target = "/hello.txt", version = "1.1",
        headers = {
          { "User-Agent", "curl/7.64.1", "user-agent" },
          { "Host", "www.example.com", "host" },
          { "Accept-Language", "en, mi", "accept-language" },
        },
        framing = "none", keepalive = true, expect_continue = false,
      }, head)
    end)

    it("reads head after head with next: reset done, path, query and a metatable", function()
      local p = core.parser("request", nil, "map")
      local class = { __index = { kind = "exchange" } }
      local head, used = p:next("GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\n\r\nrest", class)
      assert.are.equal(#"GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\n\r\n", used)
      assert.are.equal(class, getmetatable(head))
      assert.are.equal("exchange", head.kind)
      assert.are.same({ method = "GET", target = "/a/b?x=1&y", path = "/a/b", query = "x=1&y",
        version = "1.1", headers = { host = "h" }, framing = "none", keepalive = true,
        expect_continue = false }, setmetatable(head, nil))
      -- no reset needed: the next head follows, here in pieces, and without a class
      assert.is_nil(p:next("POST http://h:8/p/q?"))
      head = p:next(" HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n")
      assert.is_nil(getmetatable(head))
      assert.are.equal("/p/q", head.path)
      assert.are.equal("", head.query)
      assert.are.equal(2, head.length)
      -- targets that are not a path stay as they are (up to "?")
      for target, path in pairs({ ["*"] = "*", ["h:443"] = "h:443", ["http://h"] = "http://h",
          ["http://h?q"] = "http://h", ["1x://h/p"] = "1x://h/p", ["ab+c.d-e://h/p?"] = "/p" }) do
        assert.are.equal(path, p:next("OPTIONS " .. target .. " HTTP/1.1\r\nHost: h\r\n\r\n").path,
          target)
      end
      -- a fault resets too: the next head parses
      assert.are.same({ nil, "bad request line", 400 }, { p:next("GET\r\n") })
      assert.are.equal("/", p:next("GET / HTTP/1.0\r\n\r\n").path)
      -- responses get no path; a class must be a table
      local r = core.parser("response")
      head = r:next("HTTP/1.1 204 No Content\r\n\r\n")
      assert.are.equal(204, head.status)
      assert.is_nil(head.path)
      assert.has_error(function() r:next("HTTP/1.1 204 No Content\r\n\r\n", 1) end)
      assert.has_error(function() p.next({}, "x") end)
    end)

    it("gives the fields as a map of lower-case names with the \"map\" form", function()
      local p = core.parser("request", nil, "map")
      local head = p:feed("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-Y: 1\r\naccept: b\r\n"
        .. "Cookie: c=1\r\nCOOKIE: d=2\r\nX-Empty:\r\n\r\n")
      assert.are.same({ host = "h", accept = "a, b", ["x-y"] = "1", cookie = "c=1; d=2",
        ["x-empty"] = "" }, head.headers)
      assert.are.equal("1.1", head.version)
      p:reset()
      head = p:feed("GET / HTTP/1.0\r\n\r\n")
      assert.are.same({}, head.headers)
      assert.are.equal("1.0", head.version)
      local r = core.parser("response", nil, "map")
      head = r:feed("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n")
      assert.are.equal("a=1, b=2", head.headers["set-cookie"])
      assert.error_matches(function() core.parser("request", nil, "tree") end,
        "bad argument #3")
    end)

    it("returns nil while it needs more, whatever the pieces", function()
      for _, step in ipairs({ 1, 2, 7, 50 }) do
        local p = core.parser("request")
        local r, at = feed_pieces(p, GET .. "xyz", step)
        assert.are.equal("GET", r[1].method)
        assert.are.equal(#GET, at + r[2], "step " .. step)
      end
    end)

    it("parses a response head with its framing", function()
      local p = core.parser("response")
      local head = p:feed("HTTP/1.1 200 OK\r\nContent-Length: 51\r\n\r\n")
      assert.are.equal(200, head.status)
      assert.are.equal("OK", head.reason)
      assert.are.equal("length", head.framing)
      assert.are.equal(51, head.length)
      assert.are.equal("integer", math.type(head.length))
      assert.is_nil(head.method)
      p:reset()
      head = p:feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
      assert.are.equal("chunked", head.framing)
      p:reset()
      head = p:feed("HTTP/1.0 200 OK\r\n\r\n")
      assert.are.equal("close", head.framing)
      assert.is_false(head.keepalive)
      assert.are.equal("1.0", head.version)
      -- A response to HEAD has no body.
      assert.are.equal(p, p:reset(true))
      head = p:feed("HTTP/1.1 200 OK\r\nContent-Length: 51\r\n\r\n")
      assert.are.equal("none", head.framing)
      assert.is_nil(head.length)
    end)

    it("tells keep-alive, 100-continue and upgrade", function()
      local p = core.parser("request")
      local head = p:feed("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
        .. "Expect: 100-continue\r\nConnection: close\r\n\r\n")
      assert.is_true(head.expect_continue)
      assert.is_false(head.keepalive)
      p:reset()
      head = p:feed("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
        .. "Connection: Upgrade\r\n\r\n")
      assert.are.equal("websocket", head.upgrade)
      assert.is_true(head.keepalive)
    end)

    it("reports faults as nil, name, status code", function()
      local cases = {
        { "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", "obs-fold", 400 },
        { "GET / HTTP/1.1\r\nHost : h\r\n\r\n", "whitespace before colon", 400 },
        { "GET / HTTP/1.1\nHost: h\r\n\r\n", "bare LF", 400 },
        { "GET / HTTP/1.1\r\nHost: h\0\r\n\r\n", "control byte", 400 },
        { "GET / HTTP/1.1\r\n\r\n", "missing host", 400 },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
          "conflicting content-length", 400 },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
          "content-length and transfer-encoding", 400 },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
          "unsupported transfer coding", 501 },
        { "GET / HTTP/2.0\r\n\r\n", "version not supported", 505 },
      }
      for _, c in ipairs(cases) do
        local p = core.parser("request")
        assert.are.same({ nil, c[2], c[3] }, { p:feed(c[1]) }, c[1])
        -- The fault sticks until reset.
        assert.are.same({ nil, c[2], c[3] }, { p:feed("GET / HTTP/1.1\r\n") })
      end
    end)

    it("keeps to its limits: the limit passes, one byte less fails", function()
      local line = "GET /0123456789 HTTP/1.1"
      local msg = line .. "\r\nHost: h\r\nA: 1\r\n\r\n"
      assert.is_table(core.parser("request", { max_start_line = #line }):feed(msg))
      assert.are.same({ nil, "uri too long", 414 },
        { core.parser("request", { max_start_line = #line - 1 }):feed(msg) })
      assert.is_table(core.parser("request", { max_header_line = 7 }):feed(msg))
      assert.are.same({ nil, "header line too long", 431 },
        { core.parser("request", { max_header_line = 6 }):feed(msg) })
      assert.is_table(core.parser("request", { max_headers = 2 }):feed(msg))
      assert.are.same({ nil, "too many headers", 431 },
        { core.parser("request", { max_headers = 1 }):feed(msg) })
      assert.is_table(core.parser("request", { max_header_bytes = 15 }):feed(msg))
      assert.are.same({ nil, "headers too large", 431 },
        { core.parser("request", { max_header_bytes = 14 }):feed(msg) })
    end)

    it("raises errors naming the argument on misuse", function()
      assert.error_matches(function() core.parser("reply") end, "bad argument #1 to 'parser'")
      assert.error_matches(function() core.parser() end, "bad argument #1")
      assert.error_matches(function() core.parser("request", 5) end,
        "bad argument #2 to 'parser' %(table expected")
      assert.error_matches(function() core.parser("request", { max_lines = 3 }) end,
        "bad argument #2 to 'parser' %(unknown limit 'max_lines'%)")
      assert.error_matches(function() core.parser("request", { max_headers = -1 }) end,
        "limit 'max_headers' must be an integer from 0 to 16777216")
      assert.error_matches(function() core.parser("request", { max_headers = 1.5 }) end,
        "bad argument #2")
      assert.error_matches(function() core.parser("request", { max_headers = 2 ^ 24 + 1 }) end,
        "bad argument #2")
      assert.error_matches(function() core.parser("request", { [1] = 2 }) end,
        "limit names must be strings")
      local p = core.parser("request")
      assert.error_matches(function() p:feed() end, "bad argument #1 to 'feed'")
      assert.error_matches(function() p:feed({}) end, "bad argument #1 to 'feed'")
      assert.error_matches(function() p.feed("x", "y") end, "http.parser expected")
    end)
  end)

  describe("chunked", function()
    local WIKI = "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n"

    it("decodes a body in one piece and stops after it", function()
      local d = core.chunked()
      assert.matches("^http%.chunked: 0x", tostring(d))
      local body, consumed, done = d:feed(WIKI .. "GET / HTTP/1.1\r\n")
      assert.are.equal("Wikipedia in\r\n\r\nchunks.", body)
      assert.are.equal(#WIKI, consumed)
      assert.is_true(done)
      assert.are.same({}, d:trailers())
    end)

    it("decodes a body in any pieces", function()
      for _, step in ipairs({ 1, 3, 10 }) do
        local d, parts, done = core.chunked(), {}, false
        for at = 1, #WIKI, step do
          local body, consumed
          body, consumed, done = d:feed(WIKI:sub(at, at + step - 1))
          assert.is_true(consumed <= step)
          parts[#parts + 1] = body
        end
        assert.is_true(done)
        assert.are.equal("Wikipedia in\r\n\r\nchunks.", table.concat(parts))
      end
    end)

    it("keeps the trailers", function()
      local d = core.chunked()
      assert.are.same({}, d:trailers())
      local body, _, done = d:feed("2\r\nhi\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n")
      assert.are.equal("hi", body)
      assert.is_true(done)
      assert.are.same({ { "Expires", "never", "expires" }, { "X-Sum", "1", "x-sum" } },
        d:trailers())
      assert.are.equal(d, d:reset())
      assert.are.same({}, d:trailers())
    end)

    it("reports faults and keeps to its limits", function()
      assert.are.same({ nil, "bad chunk size", 400 }, { core.chunked():feed("x\r\n") })
      assert.are.same({ nil, "bad chunk end", 400 }, { core.chunked():feed("1\r\nab") })
      assert.are.same({ nil, "bad chunk extension", 400 }, { core.chunked():feed("1;=\r\n") })
      assert.are.same({ nil, "chunk too large", 413 },
        { core.chunked():feed("8000000000000000\r\n") })
      assert.are.same({ "0", 4, false }, { core.chunked({ max_chunk_size = 10 }):feed("a\r\n0") })
      assert.are.same({ nil, "chunk too large", 413 },
        { core.chunked({ max_chunk_size = 9 }):feed("a\r\n0") })
      assert.are.same({ nil, "chunk line too long", 400 },
        { core.chunked({ max_chunk_line = 3 }):feed("1;ab\r\n") })
      assert.are.same({ nil, "too many headers", 431 },
        { core.chunked({ max_trailers = 0 }):feed("0\r\nA: b\r\n\r\n") })
      assert.error_matches(function() core.chunked({ max_chunk_size = -1 }) end,
        "bad argument #1 to 'chunked'")
      assert.error_matches(function() core.chunked({ bogus = 1 }) end, "unknown limit 'bogus'")
      assert.error_matches(function() core.chunked():feed(nil) end, "bad argument #1 to 'feed'")
    end)
  end)

  describe("websocket", function()
    local HELLO = "\x81\x05Hello"
    local HELLO_MASKED = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"

    it("parses the RFC 6455 examples", function()
      local c = core.ws_parser("client")
      assert.matches("^websocket%.parser: 0x", tostring(c))
      assert.are.same({ { opcode = "text", fin = true, payload = "Hello" } }, c:feed(HELLO))
      assert.are.same({ { opcode = "text", fin = false, payload = "Hel" },
        { opcode = "continuation", fin = true, payload = "lo" } },
        c:feed("\x01\x03Hel\x80\x02lo"))
      local s = core.ws_parser("server")
      assert.are.same({ { opcode = "text", fin = true, payload = "Hello" } },
        s:feed(HELLO_MASKED))
      assert.are.same({ { opcode = "pong", fin = true, payload = "Hello" } },
        s:feed("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"))
    end)

    it("keeps a partial frame across calls", function()
      local s = core.ws_parser("server")
      local data = core.ws_frame("binary", string.rep("z", 300), true, "abcd")
        .. core.ws_frame("close", string.pack(">I2", 1000) .. "bye", true, "efgh")
      local frames = {}
      for at = 1, #data, 7 do
        for _, f in ipairs(s:feed(data:sub(at, at + 6))) do frames[#frames + 1] = f end
      end
      assert.are.same({ { opcode = "binary", fin = true, payload = string.rep("z", 300) },
        { opcode = "close", fin = true, payload = "\3\232bye", code = 1000, reason = "bye" } },
        frames)
    end)

    it("reports faults with their close code", function()
      local function fault(role, data, opts)
        return { core.ws_parser(role, opts):feed(data) }
      end
      assert.are.same({ nil, "unmasked frame", 1002 }, fault("server", HELLO))
      assert.are.same({ nil, "masked frame", 1002 }, fault("client", HELLO_MASKED))
      assert.are.same({ nil, "reserved bits set", 1002 }, fault("client", "\xc1\x00"))
      assert.are.same({ nil, "reserved opcode", 1002 }, fault("client", "\x83\x00"))
      assert.are.same({ nil, "fragmented control frame", 1002 }, fault("client", "\x09\x00"))
      assert.are.same({ nil, "non-minimal length", 1002 }, fault("client", "\x82\x7e\x00\x05"))
      assert.are.same({ nil, "continuation without start", 1002 }, fault("client", "\x80\x00"))
      assert.are.same({ nil, "invalid utf-8", 1007 }, fault("client", "\x81\x01\xff"))
      assert.are.same({ nil, "bad close code", 1002 }, fault("client", "\x88\x02\x03\xed"))
      assert.are.same({ nil, "frame too big", 1009 },
        fault("client", "\x82\x0b01234567890", { max_payload = 10 }))
      assert.are.same({ { opcode = "binary", fin = true, payload = "0123456789" } },
        fault("client", "\x82\x0a0123456789", { max_payload = 10 })[1])
      assert.are.same({ nil, "message too big", 1009 },
        fault("client", "\x02\x03abc\x80\x03def", { max_message = 5 }))
      -- A fault sticks until reset.
      local c = core.ws_parser("client")
      assert.is_nil(c:feed("\x81\x01\xff"))
      assert.are.same({ nil, "invalid utf-8", 1007 }, { c:feed(HELLO) })
      c:reset()
      assert.are.same({ { opcode = "text", fin = true, payload = "Hello" } }, c:feed(HELLO))
    end)

    it("encodes frames, masked or not", function()
      assert.are.equal(HELLO, core.ws_frame("text", "Hello"))
      assert.are.equal(HELLO_MASKED, core.ws_frame("text", "Hello", true, "\x37\xfa\x21\x3d"))
      assert.are.equal("\x01\x03Hel", core.ws_frame("text", "Hel", false))
      assert.are.equal("\x82\x7e\x01\x00", core.ws_frame("binary", string.rep("x", 256)):sub(1, 4))
      assert.are.equal("\x82\x7f\0\0\0\0\0\1\0\0",
        core.ws_frame("binary", string.rep("x", 65536)):sub(1, 10))
      assert.are.equal("\x89\x00", core.ws_frame("ping", ""))
      assert.error_matches(function() core.ws_frame("data", "") end,
        "bad argument #1 to 'ws_frame'")
      assert.error_matches(function() core.ws_frame("text") end, "bad argument #2")
      assert.error_matches(function() core.ws_frame("ping", string.rep("p", 126)) end,
        "bad argument #2 to 'ws_frame' %(control frame payload over 125 bytes%)")
      assert.error_matches(function() core.ws_frame("close", "", false) end,
        "bad argument #3 to 'ws_frame' %(control frames cannot be fragmented%)")
      assert.error_matches(function() core.ws_frame("text", "", true, "abc") end,
        "bad argument #4 to 'ws_frame' %(masking key must be 4 bytes%)")
      assert.error_matches(function() core.ws_parser("peer") end, "bad argument #1 to 'ws_parser'")
      assert.error_matches(function() core.ws_parser("server", { max_payload = -1 }) end,
        "bad argument #2 to 'ws_parser'")
    end)

    it("computes and checks handshake keys", function()
      -- RFC 6455 section 1.3.
      assert.are.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", core.accept_key("dGhlIHNhbXBsZSBub25jZQ=="))
      assert.is_true(core.valid_key("dGhlIHNhbXBsZSBub25jZQ=="))
      assert.is_false(core.valid_key("dGhlIHNhbXBsZSBub25jZQ="))
      assert.is_false(core.valid_key("not a key"))
      assert.error_matches(function() core.accept_key() end, "bad argument #1 to 'accept_key'")
    end)
  end)

  it("objects hold no reference to themselves and are collected after use", function()
    -- Their storage is given back by __gc (the sanitizer build would report a double free or a
    -- use after free; a leak check was run by hand with detect_leaks=1).
    local weak = setmetatable({}, { __mode = "k" })
    for _ = 1, 50 do
      local p = core.parser("request")
      assert.is_table(p:feed(GET))
      local d = core.chunked()
      assert.is_true(select(3, d:feed("1\r\na\r\n0\r\nX: y\r\n\r\n")))
      local w = core.ws_parser("client")
      assert.are.same({}, w:feed("\x82\x7e\x01\x00" .. string.rep("x", 100)))
      weak[p], weak[d], weak[w] = true, true, true
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)
end)
