-- http_spec.lua: socket.http against real servers on loopback: Debian's nginx (static files,
-- WebDAV PUT, redirects, a forward proxy) and the uvsocket test server of support/httpd.lua
-- (chunked bodies, redirects of every kind, 1xx responses, slow replies, malformed answers).
-- Every request case runs in blocking mode and as a task.
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local url = require("socket.url")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")

-- A deterministic binary file of `size` bytes, every byte value present.
local function binary(size)
  local t, x = {}, 12345
  for i = 1, 65536 do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x % 256)
  end
  local block = table.concat(t)
  return (block:rep(size // #block + 1)):sub(1, size)
end

local BIG = binary(4 * 1024 * 1024 + 17)

local httpd, nginx

-- A URL on the uvsocket test server or on nginx.
local function U(path) return "http://127.0.0.1:" .. httpd.port .. path end
local function N(path) return "http://127.0.0.1:" .. nginx.port .. path end

-- The request line and headers the test server's /echo saw, and the body.
local function parse_echo(text)
  local head, body = text:match("^(.-)\n\n(.*)$")
  local lines = {}
  for l in head:gmatch("[^\n]+") do lines[#lines + 1] = l end
  local fields = {}
  for i = 2, #lines do
    local name, value = lines[i]:match("^([^:]+): (.*)$")
    fields[name] = value
  end
  return lines[1], fields, body
end

describe("socket.http", function()
  setup(function()
    httpd = S.httpd()
    nginx = S.nginx({ ["index.html"] = "<h1>uvsocket</h1>\n", ["big.bin"] = BIG })
  end)
  teardown(function()
    if httpd then httpd:stop() end
    if nginx then nginx:stop() end
    H.cleanup()
  end)

  describe("module", function()
    it("has LuaSocket's fields and stores itself in the socket namespace", function()
      assert.are.equal(http, socket.http)
      assert.are.equal(http, require("socket.http"))
      assert.are.equal(60, http.TIMEOUT)
      assert.are.equal(socket._VERSION, http.USERAGENT)
      assert.is_nil(http.PROXY)
      assert.is_function(http.request)
      assert.is_function(http.open)
      assert.is_function(http.genericform)
      assert.are.equal(80, http.schemes.http.port)
      assert.are.equal(443, http.schemes.https.port)
      assert.is_function(socket.sourcet["http-chunked"])
      assert.is_function(socket.sinkt["http-chunked"])
    end)

    it("raises for a request that is neither a string nor a table", function()
      assert.has_error(function() http.request(42) end,
        "bad argument #1 to 'request' (string or table expected, got number)")
    end)

    it("genericform builds the simple form's request", function()
      local r = http.genericform("http://h/x", "a=b")
      assert.are.equal("POST", r.method)
      assert.are.equal(3, r.headers["content-length"])
      assert.are.equal("application/x-www-form-urlencoded", r.headers["content-type"])
      assert.is_table(r.target)
      assert.is_nil(http.genericform("http://h/x").method)
    end)
  end)

  H.modes("requests", function(run, mode)
    it("GET a static file from nginx, byte for byte", function()
      run(function()
        local body, code, headers, status = http.request(N("/big.bin"))
        assert.are.equal(200, code)
        assert.are.equal("HTTP/1.1 200 OK", status)
        assert.are.equal(tostring(#BIG), headers["content-length"])
        assert.is_true(body == BIG, "the body differs")
        body, code = http.request(N("/index.html"))
        assert.are.equal("<h1>uvsocket</h1>\n", body)
        assert.are.equal(200, code)
      end)
    end)

    it("returns the error page and code of a missing file", function()
      run(function()
        local body, code, headers = http.request(N("/nothing-here"))
        assert.are.equal(404, code)
        assert.matches("404", body)
        assert.are.equal("text/html", headers["content-type"])
      end)
    end)

    it("generic form: GET into a sink returns 1, code, headers, status", function()
      run(function()
        local t = {}
        local r, code, headers, status = http.request({ url = N("/index.html"),
          sink = ltn12.sink.table(t) })
        assert.are.equal(1, r)
        assert.are.equal(200, code)
        assert.is_table(headers)
        assert.are.equal("HTTP/1.1 200 OK", status)
        assert.are.equal("<h1>uvsocket</h1>\n", table.concat(t))
      end)
    end)

    it("HEAD gets the headers and no body", function()
      run(function()
        local t = {}
        local r, code, headers = http.request({ url = N("/big.bin"), method = "HEAD",
          sink = ltn12.sink.table(t) })
        assert.are.equal(1, r)
        assert.are.equal(200, code)
        assert.are.equal(tostring(#BIG), headers["content-length"])
        assert.are.equal(0, #t)
      end)
    end)

    it("POST in the simple form sends a form body with its length", function()
      run(function()
        local body, code = http.request(U("/echo"), "a=1&b=2")
        assert.are.equal(200, code)
        local line, fields, echoed = parse_echo(body)
        assert.are.equal("POST /echo HTTP/1.1", line)
        assert.are.equal("7", fields["Content-Length"])
        assert.are.equal("application/x-www-form-urlencoded", fields["Content-Type"])
        assert.are.equal("a=1&b=2", echoed)
      end)
    end)

    it("PUT a file to nginx with a length, then reads it back", function()
      run(function()
        local name = "/dav/put-" .. mode .. ".bin"
        local r, code = http.request({ url = N(name), method = "PUT",
          source = ltn12.source.string(BIG), headers = { ["Content-Length"] = #BIG } })
        assert.are.equal(1, r)
        assert.is_true(code == 201 or code == 204, tostring(code))
        local body = http.request(N(name))
        assert.is_true(body == BIG, "the file differs")
      end)
    end)

    it("PUT with a chunked body when no length is given", function()
      run(function()
        local name = "/dav/chunked-" .. mode .. ".bin"
        local data = BIG:sub(1, 300000)
        local r, code = http.request({ url = N(name), method = "PUT",
          source = ltn12.source.string(data) })
        assert.are.equal(1, r)
        assert.is_true(code == 201 or code == 204, tostring(code))
        assert.is_true(http.request(N(name)) == data, "the file differs")
      end)
    end)

    it("uploads chunked and the server sees the chunked coding and the whole body", function()
      run(function()
        local t = {}
        local data = BIG:sub(1, 100000)
        local r, code = http.request({ url = U("/echo"), method = "POST",
          source = ltn12.source.string(data), sink = ltn12.sink.table(t) })
        assert.are.equal(1, r)
        assert.are.equal(200, code)
        local _, fields, echoed = parse_echo(table.concat(t))
        assert.are.equal("chunked", fields["Transfer-Encoding"])
        assert.is_nil(fields["Content-Length"])
        assert.is_true(echoed == data)
      end)
    end)

    it("downloads a chunked body and merges its trailer into the headers", function()
      run(function()
        local body, code, headers = http.request(U("/chunked?n=40&size=25000"))
        assert.are.equal(200, code)
        assert.are.equal(40 * 25000, #body)
        assert.are.equal(("a"):rep(25000), body:sub(1, 25000))
        assert.are.equal(("n"):rep(25000), body:sub(-25000))
        assert.are.equal("chunked", headers["transfer-encoding"])
        assert.are.equal("done", headers["x-trailer"])
      end)
    end)

    it("reads a body that ends when the server closes", function()
      run(function()
        local body, code = http.request(U("/nolength"))
        assert.are.equal(200, code)
        assert.are.equal(("z"):rep(50000), body)
      end)
    end)

    it("sends LuaSocket's default headers, the caller's over them, and no fragment", function()
      run(function()
        local t = {}
        local r = http.request({
          url = "http://alice:open%20sesame@127.0.0.1:" .. httpd.port .. "/echo;p?q=1#frag",
          sink = ltn12.sink.table(t),
          headers = { ["X-Custom"] = "yes", ["TE"] = "gzip" },
        })
        assert.are.equal(1, r)
        local line, fields = parse_echo(table.concat(t))
        assert.are.equal("GET /echo;p?q=1 HTTP/1.1", line)
        assert.are.equal(socket._VERSION, fields["User-Agent"])
        assert.are.equal("127.0.0.1:" .. httpd.port, fields["Host"])
        assert.are.equal("close, TE", fields["Connection"])
        assert.are.equal("gzip", fields["TE"])
        assert.are.equal("yes", fields["x-custom"])
        assert.are.equal("Basic " .. (require("mime").b64("alice:open sesame")),
          fields["Authorization"])
      end)
    end)

    it("follows 301, 302, 303, 307 and 308, absolute and relative", function()
      run(function()
        for _, code in ipairs({ 301, 302, 303, 307, 308 }) do
          local body, c, headers = http.request(U("/redirect?code=" .. code .. "&to=/hello"))
          assert.are.equal("hello world", body)
          assert.are.equal(200, c)
          assert.are.equal("/hello", headers.location)
        end
        local abs = url.escape(U("/hello"))
        local body, c = http.request(U("/redirect?code=302&to=" .. abs))
        assert.are.equal("hello world", body)
        assert.are.equal(200, c)
        body, c = http.request(U("/redirect?code=302&to=hello"))
        assert.are.equal("hello world", body)
        assert.are.equal(200, c)
        body, c = http.request(N("/moved"))
        assert.are.equal("<h1>uvsocket</h1>\n", body)
        assert.are.equal(200, c)
        body, c = http.request(N("/relative"))
        assert.are.equal("<h1>uvsocket</h1>\n", body)
        assert.are.equal(200, c)
      end)
    end)

    it("stops after maxredirects (5 by default) and returns the last redirect", function()
      run(function()
        local body, code, headers = http.request(U("/loop"))
        assert.are.equal("", body)
        assert.are.equal(302, code)
        assert.are.equal("/loop", headers.location)
        body, code = http.request(U("/count/5"))
        assert.are.equal("arrived", body)
        assert.are.equal(200, code)
        body, code = http.request(U("/count/6"))
        assert.are.equal("", body)
        assert.are.equal(302, code)
        local t = {}
        local r
        r, code = http.request({ url = U("/count/3"), maxredirects = 2,
          sink = ltn12.sink.table(t) })
        assert.are.equal(1, r)
        assert.are.equal(302, code)
        r, code = http.request({ url = U("/count/8"), maxredirects = false,
          sink = ltn12.sink.table(t) })
        assert.are.equal(200, code)
        assert.are.equal(1, r)
      end)
    end)

    it("does not redirect with redirect = false, nor a POST", function()
      run(function()
        local r, code, headers = http.request({ url = U("/redirect?code=301&to=/hello"),
          redirect = false })
        assert.are.equal(1, r)
        assert.are.equal(301, code)
        assert.are.equal("/hello", headers.location)
        local body
        body, code = http.request(U("/redirect?code=303&to=/hello"), "x=1")
        assert.are.equal(303, code)
        assert.are.equal("moved", body)
      end)
    end)

    it("skips interim 1xx responses", function()
      run(function()
        local body, code, headers = http.request(U("/hints"))
        assert.are.equal("after hints", body)
        assert.are.equal(200, code)
        assert.is_nil(headers.link)
        body, code = http.request(U("/continue"), "payload")
        assert.are.equal(200, code)
        local _, _, echoed = parse_echo(body)
        assert.are.equal("payload", echoed)
      end)
    end)

    it("returns headers as LuaSocket does: folded lines joined, repeats comma-separated", function()
      run(function()
        local body, code, headers = http.request(U("/fold"))
        assert.are.equal("ok", body)
        assert.are.equal(200, code)
        assert.are.equal("one  two\tthree", headers["x-folded"])
        assert.are.equal("a, b", headers["x-twice"])
      end)
    end)

    it("reads no body for 204 and 304", function()
      run(function()
        for _, c in ipairs({ 204, 304 }) do
          local body, code = http.request(U("/status?code=" .. c))
          assert.are.equal("", body)
          assert.are.equal(c, code)
        end
      end)
    end)

    it("goes through a proxy: absolute target, proxy credentials, the proxy's port", function()
      run(function()
        -- The test server as the proxy shows what the proxy receives.
        local t = {}
        local r = http.request({ url = "http://example.invalid/echo?x=1",
          proxy = "http://pu:pp@127.0.0.1:" .. httpd.port, sink = ltn12.sink.table(t) })
        assert.are.equal(1, r)
        local line, fields = parse_echo(table.concat(t))
        assert.are.equal("GET http://example.invalid:80/echo?x=1 HTTP/1.1", line)
        assert.are.equal("example.invalid", fields["Host"])
        assert.are.equal("Basic " .. (require("mime").b64("pu:pp")), fields["Proxy-Authorization"])
        -- nginx as a real forward proxy in front of the test server.
        local body, code = http.request({ url = U("/echo"), sink = ltn12.sink.table({}),
          proxy = "http://127.0.0.1:" .. nginx.proxy_port })
        assert.are.equal(1, body)
        assert.are.equal(200, code)
        http.PROXY = "http://127.0.0.1:" .. nginx.proxy_port
        local ok, text = pcall(http.request, U("/echo"))
        http.PROXY = nil
        assert.is_true(ok, text)
        local _, f = parse_echo(text)
        assert.are.equal("nginx", f["X-Via-Proxy"])
      end)
    end)

    it("uses the socket a create hook makes", function()
      run(function()
        local made = 0
        local body, code = http.request({
          url = U("/hello"),
          sink = ltn12.sink.table({}),
          create = function()
            made = made + 1
            return socket.tcp()
          end,
        })
        assert.are.equal(1, body)
        assert.are.equal(200, code)
        assert.are.equal(1, made)
        local r, err = http.request({ url = U("/hello"),
          create = function() return nil, "no socket for you" end })
        assert.is_nil(r)
        assert.are.equal("no socket for you", err)
      end)
    end)

    it("fails cleanly on refused connections and bad URLs", function()
      run(function()
        local srv, port = H.server()
        srv:close()
        local r, err = http.request("http://127.0.0.1:" .. port .. "/")
        assert.is_nil(r)
        assert.are.equal("connection refused", err)
        r, err = http.request({ scheme = "http", path = "/" })
        assert.is_nil(r)
        assert.are.equal("invalid host 'nil'", err)
        r, err = http.request("gopher://127.0.0.1/")
        assert.is_nil(r)
        assert.are.equal("unsupported scheme 'gopher'", err)
        -- https is socket.tls: a refused connection is refused before any TLS
        r, err = http.request("https://127.0.0.1:" .. port .. "/")
        assert.is_nil(r)
        assert.are.equal("connection refused", err)
        r, err = http.request({ url = U("/hello"), method = "GET /x HTTP/1.0\r\n" })
        assert.is_nil(r)
        assert.matches("invalid method", err)
        r, err = http.request({ url = U("/hello"), headers = { ["x-evil"] = "a\r\nb: c" } })
        assert.is_nil(r)
        assert.are.equal("invalid header 'x-evil'", err)
      end)
    end)

    it("reports a server that closes early as closed", function()
      run(function()
        local r, err = http.request(U("/early"))
        assert.is_nil(r)
        assert.are.equal("closed", err)
      end)
    end)

    it("rejects malformed answers with a clear error", function()
      run(function()
        local cases = {
          { "/garbage", "invalid status line" },
          { "/badstatus", "invalid status line" },
          { "/hugeheader", "header line too long" },
          { "/manyheaders", "response headers too long" },
          { "/overflow", "invalid chunk size" },
          { "/endless", "chunk size line too long" },
        }
        for _, case in ipairs(cases) do
          local r, err = http.request(U(case[1]))
          assert.is_nil(r, case[1])
          assert.are.equal(case[2], err, case[1])
        end
      end)
    end)

    it("times out on a server that never answers", function()
      run(function()
        http.TIMEOUT = 0.3
        local t, r, err = H.timed(http.request, U("/never"))
        http.TIMEOUT = 60
        assert.is_nil(r)
        assert.are.equal("timeout", err)
        assert.is_true(t >= 0.25 and t < 2, tostring(t))
      end)
    end)
  end)

  describe("the http-chunked source and sink", function()
    after_each(H.assert_clean)

    it("encode and decode each other over a socket pair", function()
      local c, s = H.pair()
      local snk = socket.sink("http-chunked", c)
      assert.truthy(snk("hello "))
      assert.truthy(snk(""))
      assert.truthy(snk("world"))
      assert.truthy(snk(nil))
      local fields = {}
      local src = socket.source("http-chunked", s, fields)
      local t = {}
      assert.truthy(ltn12.pump.all(src, (ltn12.sink.table(t))))
      assert.are.equal("hello world", table.concat(t))
      assert.is_number(snk:getfd())
      c:send("5\r\nabc")
      c:close()
      src = socket.source("http-chunked", s, fields)
      assert.are.same({ nil, "closed" }, { src() })
      s:close()
    end)
  end)

  describe("200 tasks", function()
    after_each(H.assert_clean)

    it("each with a request to a server that answers after 0.5 s finish in about 0.5 s", function()
      local done, elapsed = 0, nil
      async.run(function()
        local t0 = async.now()
        for _ = 1, 200 do
          async.spawn(function()
            local body, code = http.request(U("/slow?t=0.5"))
            if body == "slow" and code == 200 then done = done + 1 end
          end)
        end
        while done < 200 and async.now() - t0 < 20 do async.sleep(0.01) end
        elapsed = async.now() - t0
      end)
      assert.are.equal(200, done)
      print(("\n# 200 concurrent requests to a 0.5 s server took %.3f s"):format(elapsed))
      assert.is_true(elapsed < 2.5, tostring(elapsed))
    end)
  end)
end)
