-- luasec_spec.lua: an unchanged LuaSec (Debian's lua-sec) through uvsocket's bridge
-- (socket/luasec.lua), against real TLS peers on loopback. Pending when LuaSec is not installed.
-- Cases run in blocking mode and as a task: in tasks LuaSec's waits yield, outside they are
-- LuaSec's own.
local socket = require("socket")
local ltn12 = require("ltn12")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")
local T = require("support.tls")

local ssl = T.luasec()
local certs, nginx, peer

local function client_params(extra)
  local p = { mode = "client", protocol = "any", verify = "peer", cafile = certs and certs.ca,
    options = "all" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- A LuaSec connection to `port`, its handshake done (or nil, err).
local function connect(port, extra, timeout)
  local tcp = assert(socket.connect("127.0.0.1", port))
  local conn = assert(ssl.wrap(tcp, client_params(extra)))
  conn:sni("localhost")
  if timeout then conn:settimeout(timeout) end
  local ok, err = conn:dohandshake()
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

-- Runs `code` in a new interpreter (with the spec's paths); returns its output.
local function child(code)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen("timeout 30 " .. H.LUA .. " " .. file .. " 2>&1", "r"))
  local out = p:read("a")
  p:close()
  os.remove(file)
  return out
end

describe("LuaSec through uvsocket", function()
  if not ssl then
    it("needs LuaSec (lua-sec)", function() pending("LuaSec is not installed") end)
    return
  end
  local https = require("ssl.https")

  setup(function()
    certs = T.certs()
    nginx = S.nginx_tls(certs, { ["index.html"] = "<h1>LuaSec</h1>\n" })
    peer = S.tlspeer(certs)
  end)
  teardown(function()
    nginx:stop()
    peer:stop()
    H.cleanup()
  end)

  it("keeps LuaSec's objects: tostring, the methods table, info", function()
    local conn = assert(connect(peer.ports.echo))
    assert.matches("^SSL connection: ", tostring(conn))
    assert.are.equal(getmetatable(conn).__index, debug.getregistry()["SSL:Connection"].__index)
    assert.is_table(conn:info())
    conn:close()
  end)

  H.modes("ssl connection", function(run, mode)
    it("does handshake, receive patterns with prefix, send ranges, certificate, close", function()
      run(function()
        local conn = assert(connect(peer.ports.echo))
        assert.are.equal(31, conn:send("xxline one\r\nline two\nabcdefghij", 3))
        assert.are.equal("line one", conn:receive())
        assert.are.equal(">line two", conn:receive("*l", ">"))
        assert.are.equal("abcd", conn:receive(4))
        assert.are.equal("..efghij", conn:receive(8, ".."))
        assert.are.equal(5, conn:send("<<abc>>", 3, 5))
        assert.are.equal("abc", conn:receive(3))
        local cert = conn:getpeercertificate()
        assert.is_truthy(tostring(cert:subject()[1].value):find("localhost"))
        assert.is_true(conn:getpeerverification())
        conn:close()
        assert.are.same({ nil, "closed", "" }, { conn:receive() })
      end)
    end)

    it("runs ssl.https.request in both forms", function()
      run(function()
        local body, code = https.request("https://127.0.0.1:" .. nginx.port .. "/index.html")
        assert.are.equal("<h1>LuaSec</h1>\n", body)
        assert.are.equal(200, code)
        local t = {}
        local ok
        ok, code = https.request({ url = "https://localhost:" .. nginx.port .. "/post",
          method = "POST", verify = "peer", cafile = certs.ca, sink = ltn12.sink.table(t),
          source = ltn12.source.string("x=1"), headers = { ["content-length"] = 3 } })
        assert.are.equal(1, ok)
        assert.are.equal(200, code)
        assert.are.equal("posted 3\n", table.concat(t))
      end)
    end)

    it("fails a verification with LuaSec's message", function()
      run(function()
        local srv = S.s_server(certs, "", "expired")
        local conn, err = connect(srv.port)
        assert.is_nil(conn)
        assert.matches("certificate verify failed", err)
        srv:stop()
      end)
    end)

    it("times a handshake out: \"timeout\" in a task, LuaSec's own \"wantread\" outside", function()
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
        local elapsed, conn, err = H.timed(connect, peer.ports.stall, nil, 0.4)
        assert.is_nil(conn)
        assert.is_true(elapsed >= 0.35 and elapsed < 3, "elapsed " .. elapsed)
        if mode == "task" then
          assert.are.equal("timeout", err)
          assert.are.equal(5, ticks)
        else
          assert.are.equal("wantread", err)
        end
      end)
    end)

    it("answers \"wantread\" at once with timeout 0 (a hand-written select loop works)", function()
      run(function()
        local stalled = assert(ssl.wrap(assert(socket.connect("127.0.0.1", peer.ports.stall)),
          client_params()))
        stalled:settimeout(0)
        local elapsed, ok, why = H.timed(stalled.dohandshake, stalled)
        assert.are.same({ false, "wantread" }, { ok, why }) -- LuaSec's own answer
        assert.is_true(elapsed < 0.2)
        stalled:close()
        local tcp = assert(socket.connect("127.0.0.1", peer.ports.echo))
        local conn = assert(ssl.wrap(tcp, client_params()))
        conn:settimeout(0)
        while true do
          local done, err = conn:dohandshake()
          if done then break end
          assert.is_true(err == "wantread" or err == "wantwrite", err)
          if err == "wantread" then
            socket.select({ conn }, nil, 5)
          else
            socket.select(nil, { conn }, 5)
          end
        end
        conn:send("ping\n")
        local line, err
        repeat
          line, err = conn:receive()
          if not line then
            assert.are.equal("wantread", err)
            socket.select({ conn }, nil, 5)
          end
        until line
        assert.are.equal("ping", line)
        conn:close()
      end)
    end)

    it("picks the server's certificate by name (sni)", function()
      run(function()
        local srv = S.s_server(certs, "-servername other.example -cert2 "
          .. certs.other.certificate .. " -key2 " .. certs.other.key)
        local tcp = assert(socket.connect("127.0.0.1", srv.port))
        local conn = assert(ssl.wrap(tcp, client_params({ verify = "none" })))
        conn:sni("other.example")
        conn:settimeout(5)
        assert.is_true(conn:dohandshake())
        local cert = conn:getpeercertificate()
        assert.are.equal("other.example", cert:subject()[1].value)
        conn:close()
        srv:stop()
      end)
    end)
  end)

  describe("in tasks", function()
    after_each(function() H.assert_clean() end)

    it("wakes a waiting handshake with \"closed\" when another task closes it", function()
      async.run(function()
        local tcp = assert(socket.connect("127.0.0.1", peer.ports.stall))
        local conn = assert(ssl.wrap(tcp, client_params()))
        conn:settimeout(5)
        local t = async.spawn(function() return conn:dohandshake() end)
        async.sleep(0.1)
        conn:close()
        assert.are.same({ nil, "closed" }, { t:join() })
      end)
    end)

    it("lets one task read at a time: the second waits its turn", function()
      async.run(function()
        local conn = assert(connect(peer.ports.echo, nil, 5))
        local a = async.spawn(function() return conn:receive() end)
        local b = async.spawn(function() return conn:receive() end)
        async.sleep(0.1)
        conn:send("first\nsecond\n")
        assert.are.equal("first", a:join())
        assert.are.equal("second", b:join())
        conn:close()
      end)
    end)

    it("runs 200 ssl.https requests to a server that answers after 0.5 s at once", function()
      local elapsed = H.timed(async.run, function()
        local g = async.group()
        local ok = 0
        for _ = 1, 200 do
          g:spawn(function()
            local body, code = https.request("https://127.0.0.1:" .. peer.ports.slow .. "/")
            if body == "hello" and code == 200 then ok = ok + 1 end
          end)
        end
        g:wait()
        assert.are.equal(200, ok)
      end)
      assert.is_true(elapsed < 10, "200 requests took " .. elapsed .. " s")
    end)
  end)

  it("yields when ssl was loaded before socket", function()
    local out = child(([[
      local ssl = require("ssl")
      local socket = require("socket")
      local async = socket.async
      async.run(function()
        local ticks = 0
        async.spawn(function() for _ = 1, 4 do async.sleep(0.05); ticks = ticks + 1 end end)
        local tcp = assert(socket.connect("127.0.0.1", %d))
        local conn = assert(ssl.wrap(tcp, { mode = "client", protocol = "any", verify = "none" }))
        conn:settimeout(0.4)
        print(conn:dohandshake())
        print("ticks", ticks)
      end)
    ]]):format(peer.ports.stall))
    assert.matches("nil\ttimeout\nticks\t4\n", out)
  end)

  it("never dies of SIGPIPE when LuaSec writes to a peer that left, in both modes", function()
    local out = child(([[
      local socket = require("socket")
      local ssl = require("ssl")
      local function go()
        local tcp = assert(socket.connect("127.0.0.1", %d))
        local conn = assert(ssl.wrap(tcp, { mode = "client", protocol = "any", verify = "none" }))
        conn:settimeout(5)
        assert(conn:dohandshake())
        assert(conn:send("GET / HTTP/1.0\r\n\r\n"))
        conn:receive("*a")  -- the server answered and closed (close_notify, then FIN)
        local err
        for _ = 1, 50 do
          local ok, e = conn:send(("x"):rep(16384))
          if not ok then err = e; break end
          socket.sleep(0.01)
        end
        conn:close()
        return err
      end
      print("blocking", go())
      socket.async.run(function() print("task", go()) end)
      print("alive")
    ]]):format(peer.ports.slow))
    assert.matches("^blocking\tclosed\ntask\tclosed\nalive\n$", out)
  end)
end)
