-- tls_spec.lua: socket.tls and https in socket.http against real TLS peers on loopback: nginx
-- with ssl, `openssl s_server`, and support/tlspeer.py for slow and misbehaving peers; the
-- certificates are made for the run (support/tls.lua). Request cases run in blocking mode and
-- as a task; cases with both ends in this process run as tasks.
local socket = require("socket")
local http = require("socket.http")
local tls = require("socket.tls")
local ltn12 = require("ltn12")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")
local T = require("support.tls")

local certs, nginx, peer, plain_httpd

local function NS(path) return "https://localhost:" .. nginx.port .. path end

local BIG = ("0123456789abcdef"):rep(65536) .. "tail"  -- 1 MiB and a bit

-- A client connection to `port` wrapped and handshaken with `params` (cafile = the test CA
-- unless given).
local function connect(port, params)
  local p = { cafile = certs.ca, servername = "localhost" }
  for k, v in pairs(params or {}) do p[k] = v end
  local c = assert(socket.connect("127.0.0.1", port))
  if p.timeout then c:settimeout(p.timeout) end
  local conn, err = tls.wrap(c, p)
  if not conn then
    c:close()
    return nil, err
  end
  local ok
  ok, err = conn:dohandshake()
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

describe("socket.tls", function()
  setup(function()
    certs = T.certs()
    nginx = S.nginx_tls(certs, { ["index.html"] = "<h1>uvsocket over TLS</h1>\n",
      ["big.bin"] = BIG })
    peer = S.tlspeer(certs)
    plain_httpd = S.httpd()
  end)
  teardown(function()
    for _, srv in ipairs({ nginx, peer, plain_httpd }) do srv:stop() end
    H.cleanup()
  end)

  describe("arguments", function()
    it("wrap wants a connected tcp client and a parameter table or context", function()
      assert.has_error(function() tls.wrap(socket.tcp(), {}) end,
        "bad argument #1 to 'wrap' (tcp{client} expected)")
      local c, s = H.pair()
      assert.has_error(function() tls.wrap(c, 42) end)
      assert.has_error(function() tls.wrap(c, { verify = "sometimes" }) end,
        "TLS parameter 'verify': unknown flag 'sometimes'")
      assert.has_error(function() tls.wrap(c, { protocol = "sslv2" }) end,
        "TLS parameter 'protocol': unknown protocol 'sslv2'")
      assert.has_error(function() tls.wrap(c, { options = { "no_such" } }) end,
        "TLS parameter 'options': unknown option 'no_such'")
      c:close()
      s:close()
    end)

    it("reports files that cannot be loaded as nil and a message", function()
      local ctx, err = tls.newcontext({ mode = "server", certificate = "/nonexistent.pem",
        key = "/nonexistent.key" })
      assert.is_nil(ctx)
      assert.matches("^error loading certificate: ", err)
      ctx, err = tls.newcontext({ mode = "server", certificate = certs.server.certificate,
        key = certs.other.key })
      assert.is_nil(ctx)
      assert.matches("^error loading private key: key values mismatch", err)
    end)

    it("makes contexts that are collected", function()
      local ctx = assert(tls.newcontext({ cafile = certs.ca }))
      assert.matches("^tls{context}: ", tostring(ctx))
      local weak = setmetatable({ ctx }, { __mode = "v" })
      ctx = nil -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert.is_nil(weak[1])
    end)
  end)

  H.modes("https with socket.http", function(run)
    it("GETs a verified page in the simple form", function()
      run(function()
        local body, code, headers = http.request({ url = NS("/index.html"), cafile = certs.ca,
          sink = nil })
        assert.are.equal(1, body)
        assert.are.equal(200, code)
        assert.is_table(headers)
        local t = {}
        assert(http.request({ url = NS("/big.bin"), cafile = certs.ca,
          sink = ltn12.sink.table(t) }))
        assert.are.equal(BIG, table.concat(t))
      end)
    end)

    it("verifies against the system store by default (SSL_CERT_FILE decides it)", function()
      run(function()
        local body, err = http.request(NS("/index.html"))
        assert.is_nil(body)
        assert.are.equal("certificate verify failed: unable to get local issuer certificate", err)
      end)
    end)

    it("POSTs in the simple form and PUTs then GETs a body in the generic form", function()
      run(function()
        -- the simple form verifies too: trust the test CA through the generic form's fields
        local t = {}
        local ok, code = http.request({ url = NS("/post"), method = "POST", cafile = certs.ca,
          source = ltn12.source.string("a=1&b=2"), sink = ltn12.sink.table(t),
          headers = { ["content-length"] = 7,
            ["content-type"] = "application/x-www-form-urlencoded" } })
        assert.are.equal(1, ok)
        assert.are.equal(200, code)
        assert.are.equal("posted 7\n", table.concat(t))
        ok, code = http.request({ url = NS("/dav/up.bin"), method = "PUT", cafile = certs.ca,
          source = ltn12.source.string(BIG), headers = { ["content-length"] = #BIG } })
        assert.are.equal(1, ok)
        assert.is_true(code == 201 or code == 204)
        t = {}
        assert(http.request({ url = NS("/dav/up.bin"), cafile = certs.ca,
          sink = ltn12.sink.table(t) }))
        assert.are.equal(BIG, table.concat(t))
      end)
    end)

    it("names each verification failure; verify = \"none\" opts out", function()
      run(function()
        local expired = S.s_server(certs, "", "expired")
        local other = S.s_server(certs, "", "other")
        local _, err = http.request({ url = "https://localhost:" .. expired.port .. "/",
          cafile = certs.ca })
        assert.are.equal("certificate verify failed: certificate has expired", err)
        _, err = http.request({ url = "https://localhost:" .. other.port .. "/",
          cafile = certs.ca })
        assert.are.equal("certificate verify failed: hostname mismatch", err)
        local body, code = http.request({ url = "https://localhost:" .. expired.port .. "/",
          verify = "none" })
        assert.are.equal(1, body)
        assert.are.equal(200, code)
        expired:stop()
        other:stop()
      end)
    end)

    it("follows https redirects and http -> https, never https -> http", function()
      run(function()
        local t = {}
        local ok, code = http.request({ url = NS("/moved"), cafile = certs.ca,
          sink = ltn12.sink.table(t) })
        assert.are.equal(1, ok)
        assert.are.equal(200, code)
        assert.matches("uvsocket over TLS", table.concat(t))
        -- http -> https: the TLS parameters of the request carry over (cafile)
        local plain = "http://127.0.0.1:" .. plain_httpd.port .. "/redirect?to="
          .. NS("/index.html")
        local body
        body, code = http.request({ url = plain, cafile = certs.ca,
          sink = ltn12.sink.table({}) })
        assert.are.equal(1, body)
        assert.are.equal(200, code)
      end)
    end)

    it("goes through a proxy with CONNECT", function()
      run(function()
        local t = {}
        local ok, code = http.request({ url = NS("/index.html"), cafile = certs.ca,
          proxy = "http://u:p@127.0.0.1:" .. peer.ports.connect, sink = ltn12.sink.table(t) })
        assert.are.equal(1, ok)
        assert.are.equal(200, code)
        assert.matches("uvsocket over TLS", table.concat(t))
      end)
    end)

    it("reports a peer that resets mid-record, garbage, and a truncated response", function()
      run(function()
        local p = { cafile = certs.ca }
        local function get(port)
          p.url = "https://localhost:" .. port .. "/"
          p.sink = ltn12.sink.table({})
          return http.request(p)
        end
        local ok, err = get(peer.ports.reset)
        assert.is_nil(ok)
        assert.are.equal("closed", err)
        ok, err = get(peer.ports.garbage)
        assert.is_nil(ok)
        assert.is_string(err)
        assert.are_not.equal("timeout", err)
        assert.are_not.equal("closed", err)
        ok, err = get(peer.ports.truncate)
        assert.is_nil(ok)
        assert.are.equal("closed", err)
      end)
    end)
  end)

  H.modes("tls{client}", function(run, mode)
    it("receives every pattern, with prefix and maxsize, and sends ranges", function()
      run(function()
        local c = assert(connect(peer.ports.echo))
        assert.matches("^tls{client}: ", tostring(c))
        assert.are.equal(31, c:send("xxline one\r\nline two\nabcdefghij", 3))
        assert.are.equal("line one", c:receive())
        assert.are.equal(">line two", c:receive("*l", ">"))
        assert.are.equal("abcd", c:receive(4))
        assert.are.equal("..efg", c:receive(5, "..")) -- the count includes the prefix
        local data, err, partial = c:receive("*l", nil, 2)
        assert.is_nil(data)
        assert.are.equal("oversized", err)
        assert.are.equal("hi", partial)
        assert.are.equal("j", c:receiveany(10))
        assert.are.equal(5, c:send("<<abc>>", 3, 5))
        assert.are.equal("abc", c:receive(3))
        assert.are.equal(#BIG, c:send(BIG))
        assert.are.equal(BIG, c:receive(#BIG))
        assert.is_false(c:dirty())
        assert.is_number(c:getfd())
        assert.are.equal("127.0.0.1", (c:getpeername()))
        assert.are.equal("127.0.0.1", (c:getsockname()))
        assert.are.equal(1, c:shutdown("send"))
        -- the echo server closes after our shutdown, with close_notify
        assert.are.same({ nil, "closed", "" }, { c:receive("*a") })
        c:close()
        assert.are.same({ nil, "closed", 0 }, { c:send("x") })
      end)
    end)

    it("gives the peer certificate, the verification, info and a session to resume", function()
      run(function()
        local srv = S.s_server(certs, "")
        local c = assert(connect(srv.port))
        local cert = assert(c:getpeercertificate())
        assert.are.equal("/CN=localhost", cert.subject)
        assert.are.equal("/CN=uvsocket-test-CA", cert.issuer)
        assert.are.same({ "DNS:localhost", "IP:127.0.0.1" }, cert.altnames)
        assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n", cert.pem)
        assert.is_true(cert.notafter_time > os.time())
        assert.is_true(c:getpeerverification())
        local info = c:info()
        assert.are.equal("TLSv1.3", info.protocol)
        assert.is_string(info.cipher)
        assert.is_false(info.resumed)
        assert.are.equal("TLSv1.3", c:info("protocol"))
        assert(c:send("GET / HTTP/1.0\r\n\r\n"))
        assert(c:receive("*l"))
        local session = assert(c:getsession())
        c:close()
        local again = assert(connect(srv.port, { session = session }))
        assert.is_true(again:info("resumed"))
        again:close()
        srv:stop()
      end)
    end)

    it("times out a handshake that never completes, per settimeout", function()
      run(function()
        local ticks = 0
        if mode == "task" then
          async.spawn(function()
            for _ = 1, 5 do
              async.sleep(0.05)
              ticks = ticks + 1
            end
          end)
        end
        local elapsed, c, err = H.timed(connect, peer.ports.stall, { timeout = 0.4 })
        assert.is_nil(c)
        assert.are.equal("timeout", err)
        assert.is_true(elapsed >= 0.35 and elapsed < 3, "elapsed " .. elapsed)
        if mode == "task" then assert.are.equal(5, ticks) end
      end)
    end)

    it("refuses a receive before the handshake; a send makes it", function()
      run(function()
        local c = assert(socket.connect("127.0.0.1", peer.ports.echo))
        c = assert(tls.wrap(c, { cafile = certs.ca, servername = "localhost" }))
        assert.are.same({ nil, "handshake not done", "" }, { c:receive() })
        assert.are.same({ nil, "handshake not done", "ab" }, { c:receive(3, "ab") })
        assert.are.equal(1, c:send("x"))
        assert.is_true(c:dohandshake())
        assert.are.equal("x", c:receive(1))
        assert.is_true(c:dohandshake())
        assert.are.equal(1, c:close())
        assert.are.same({ nil, "closed" }, { c:dohandshake() })
      end)
    end)
  end)

  describe("in tasks", function()
    after_each(function() H.assert_clean() end)

    it("wakes a handshake with \"closed\" when its socket is closed", function()
      async.run(function()
        local c = assert(socket.connect("127.0.0.1", peer.ports.stall))
        c = assert(tls.wrap(c, { cafile = certs.ca, servername = "localhost" }))
        local t = async.spawn(function() return c:dohandshake() end)
        async.sleep(0.1)
        c:close()
        assert.are.same({ nil, "closed" }, { t:join() })
      end)
    end)

    it("runs 200 https requests to a server that answers after 0.5 s at once", function()
      local elapsed = H.timed(async.run, function()
        local g = async.group()
        local ok = 0
        for _ = 1, 200 do
          g:spawn(function()
            local t = {}
            local r, code = http.request({ url = "https://localhost:" .. peer.ports.slow .. "/",
              cafile = certs.ca, sink = ltn12.sink.table(t) })
            if r == 1 and code == 200 and table.concat(t) == "hello" then ok = ok + 1 end
          end)
        end
        g:wait()
        assert.are.equal(200, ok)
      end)
      -- one after the other they would take 100 s
      assert.is_true(elapsed < 10, "200 requests took " .. elapsed .. " s")
    end)

    local function server_side(params, client_params, check)
      async.run(function()
        local srv, port = H.server()
        local ctx = assert(tls.newcontext(params))
        local served = async.spawn(function()
          local c = assert(srv:accept())
          c:settimeout(5)
          c = assert(tls.wrap(c, ctx))
          local ok, err = c:dohandshake()
          local peer_cert = ok and c:getpeercertificate()
          if ok then
            local line = c:receive()
            c:send("echo " .. tostring(line) .. "\n")
          end
          c:close()
          return ok, err, peer_cert
        end)
        local p = { cafile = certs.ca, servername = "localhost", timeout = 5 }
        for k, v in pairs(client_params or {}) do p[k] = v end
        local c, err = connect(port, p)
        local got
        if c then
          c:send("hello\n")
          got = c:receive()
          c:close()
        end
        check(c and got, err, served:join())
        srv:close()
      end)
    end

    it("serves TLS with a certificate and key", function()
      server_side({ mode = "server", certificate = certs.server.certificate,
        key = certs.server.key }, nil, function(got, err, ok)
        assert.are.equal("echo hello", got, err)
        assert.is_true(ok)
      end)
    end)

    it("verifies client certificates when asked to", function()
      local params = { mode = "server", certificate = certs.server.certificate,
        key = certs.server.key, cafile = certs.ca, verify = { "peer", "fail_if_no_peer_cert" } }
      server_side(params, nil, function(got, _, ok, err)
        assert.is_nil(got)
        assert.is_nil(ok)
        assert.matches("certificate", err)
      end)
      server_side(params, { certificate = certs.client.certificate, key = certs.client.key },
        function(got, _, ok, _, cert)
          assert.are.equal("echo hello", got)
          assert.is_true(ok)
          assert.are.equal("/CN=test client", cert.subject)
        end)
    end)

    it("picks the certificate by server name (sni)", function()
      local params = { mode = "server", certificate = certs.server.certificate,
        key = certs.server.key, sni = { ["other.example"] = {
          certificate = certs.other.certificate, key = certs.other.key } } }
      server_side(params, { servername = "other.example" }, function(got, err)
        assert.are.equal("echo hello", got, err)
      end)
      server_side(params, { servername = "localhost" }, function(got, err)
        assert.are.equal("echo hello", got, err)
      end)
    end)

    it("hands bytes read before wrap to TLS (STARTTLS with pipelining)", function()
      async.run(function()
        local srv, port = H.server()
        local served = async.spawn(function()
          local c = assert(srv:accept())
          c:settimeout(5)
          async.sleep(0.2) -- the command and the ClientHello arrive together
          assert.are.equal("STARTTLS", c:receive())
          assert.is_true(c:dirty()) -- the ClientHello is in the buffer already
          c = assert(tls.wrap(c, { mode = "server", certificate = certs.server.certificate,
            key = certs.server.key }))
          assert(c:dohandshake())
          local line = c:receive()
          c:send(line .. "!\n")
          c:close()
        end)
        local c = assert(socket.connect("127.0.0.1", port))
        c:settimeout(5)
        c:send("STARTTLS\r\n")
        c = assert(tls.wrap(c, { cafile = certs.ca, servername = "localhost" }))
        assert(c:dohandshake())
        c:send("secret\n")
        assert.are.equal("secret!", c:receive())
        c:close()
        served:join()
        srv:close()
      end)
    end)

    it("queues a second sender behind the handshake and a busy direction", function()
      async.run(function()
        local c = assert(socket.connect("127.0.0.1", peer.ports.echo))
        c:settimeout(5)
        c = assert(tls.wrap(c, { cafile = certs.ca, servername = "localhost" }))
        local hs = async.spawn(function() return c:dohandshake() end)
        local sender = async.spawn(function() return c:send(BIG) end)
        assert.is_true(hs:join())
        assert.are.equal(#BIG, (sender:join()))
        assert.are.equal(BIG, c:receive(#BIG))
        c:close()
      end)
    end)
  end)

  it("never dies of SIGPIPE writing to a peer that left", function()
    local p = H.peer(([[
      local tls = require("socket.tls")
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = assert(socket.connect("127.0.0.1", port))
      local s = assert(srv:accept())
      c = assert(tls.wrap(c, { verify = "none" }))
      s = assert(tls.wrap(s, { mode = "server", certificate = %q, key = %q }))
      c:settimeout(0.05); s:settimeout(0.05)
      for _ = 1, 50 do c:dohandshake(); s:dohandshake() end
      s:close()
      local err
      for _ = 1, 100 do
        local ok, e = c:send(("x"):rep(65536))
        if not ok then err = e; break end
      end
      print("alive", err)
    ]]):format(certs.server.certificate, certs.server.key))
    local out = p:read("a")
    p:close()
    assert.matches("^alive\tclosed", out)
  end)
end)
