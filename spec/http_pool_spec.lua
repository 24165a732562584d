-- http_pool_spec.lua: socket.http's keep-alive pool against real servers on loopback:
-- support/pool_httpd.lua (which counts the connections it accepted, so reuse is seen from the
-- server's side, and has ports that close idle or reused connections), Debian's nginx (plain
-- and with TLS) and support/httpd.lua (which echoes the request's headers). Request cases run
-- in blocking mode and as a task; waiting for a connection needs tasks.
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")
local T = require("support.tls")

local srv, nginx, httpd, certs, nginx_tls

local function M(path) return "http://127.0.0.1:" .. srv.ports.main .. path end
local function O(path) return "http://127.0.0.1:" .. srv.ports.once .. path end
local function I(path) return "http://127.0.0.1:" .. srv.ports.idle .. path end
local function N(path) return "http://127.0.0.1:" .. nginx.port .. path end
local function NS(path) return "https://localhost:" .. nginx_tls.port .. path end

-- GET `u` through `p` (false: no pool): body, code, headers.
local function get(u, p, extra)
  local t = {}
  local req = { url = u, pool = p, sink = ltn12.sink.table(t) }
  for k, v in pairs(extra or {}) do req[k] = v end
  local ok, code, headers = http.request(req)
  if not ok then return nil, code end
  return table.concat(t), code, headers
end

-- The server's counts ({main =, once =, idle =, requests =}), asked without a pool.
local function counts()
  local body = assert(get("http://127.0.0.1:" .. srv.ports.ctl .. "/stats", false))
  local t = {}
  for k, v in body:gmatch("(%w+)=(%d+)") do t[k] = tonumber(v) end
  return t
end

local function reset()
  assert(get("http://127.0.0.1:" .. srv.ports.ctl .. "/reset", false))
end

local function pause(t)
  if async.intask() then async.sleep(t) else socket.sleep(t) end
end

describe("socket.http pool", function()
  local pools = {}
  local function pool(opts)
    local p = http.pool(opts)
    pools[#pools + 1] = p
    return p
  end

  setup(function()
    srv = S.pool_httpd()
    nginx = S.nginx({ ["index.html"] = "<h1>uvsocket</h1>\n", ["big.bin"] = ("b"):rep(300000) })
    httpd = S.httpd()
    certs = T.certs()
    nginx_tls = S.nginx_tls(certs, { ["index.html"] = "<h1>uvsocket over TLS</h1>\n" })
  end)
  teardown(function()
    for _, s in ipairs({ srv, nginx, httpd, nginx_tls }) do s:stop() end
    H.cleanup()
  end)
  before_each(reset)
  after_each(function()
    http.setpool(nil)
    for _, p in ipairs(pools) do p:close() end
    pools = {}
  end)

  describe("objects", function()
    it("http.pool checks its options", function()
      assert.has_error(function() http.pool(42) end,
        "bad argument #1 to 'pool' (table expected, got number)")
      assert.has_error(function() http.pool({ max_idel = 1 }) end,
        "unknown option 'max_idel' to 'pool'")
      assert.has_error(function() http.pool({ max_per_key = 0 }) end,
        "bad option 'max_per_key' to 'pool' (number >= 1 expected, got 0)")
      assert.has_error(function() http.setpool(42) end,
        "bad argument #1 to 'setpool' (http.pool or nil expected, got number)")
    end)

    it("a new pool is empty; setpool returns the previous default", function()
      local p = pool()
      local s = p:stats()
      for _, k in ipairs({ "created", "reused", "idle", "waiting", "open", "busy", "dropped",
        "expired", "retried", "resumed", "rejected", "timeouts", "requests" }) do
        assert.are.equal(0, s[k], k)
      end
      assert.is_nil(http.getpool())
      assert.is_nil(http.setpool(p))
      assert.are.equal(p, http.getpool())
      assert.are.equal(p, http.setpool(nil))
      assert.is_nil(http.getpool())
      assert.matches("^http.pool: 0 open, 0 idle$", tostring(p))
    end)
  end)

  H.modes("requests", function(run_mode)
    -- the case's pools are closed before the leak check of H.modes
    local function run(f)
      local ok, err = pcall(run_mode, f)
      for _, p in ipairs(pools) do p:close() end
      if not ok then error(err, 0) end
    end
    it("without a pool every request has its own connection, as before", function()
      run(function()
        for _ = 1, 3 do assert.are.equal("hello", (get(M("/hello"), false))) end
        assert.are.equal(3, counts().main)
      end)
    end)

    it("20 GETs through a pool use one connection of the server's", function()
      run(function()
        local p = pool()
        for _ = 1, 20 do assert.are.equal("1", (get(M("/id"), p))) end
        assert.are.equal(1, counts().main)
        local s = p:stats()
        assert.are.equal(1, s.created)
        assert.are.equal(19, s.reused)
        assert.are.equal(1, s.idle)
        assert.are.equal(0, s.busy)
        assert.are.equal(20, s.requests)
        assert.are.equal(1, p:close())
        assert.are.equal(0, p:stats().idle)
        assert.are.equal(0, p:stats().open)
      end)
    end)

    it("asks for keep-alive instead of the close", function()
      run(function()
        local p = pool()
        local body = assert(get("http://127.0.0.1:" .. httpd.port .. "/echo", p))
        assert.matches("\nConnection: keep%-alive, TE\n", body)
        -- httpd answers Connection: close: not kept
        assert.are.equal(0, p:stats().idle)
        body = assert(get("http://127.0.0.1:" .. httpd.port .. "/echo", false))
        assert.matches("\nConnection: close, TE\n", body)
      end)
    end)

    it("the simple form uses the default pool; pool = false opts out", function()
      run(function()
        local p = pool()
        http.setpool(p)
        for _ = 1, 5 do assert.are.equal("hello", (http.request(M("/hello")))) end
        assert.are.equal("got 3", (http.request(M("/post"), "a=b")))
        assert.are.equal(1, counts().main)
        assert.are.equal("hello", (get(M("/hello"), false)))
        assert.are.equal(2, counts().main)
        assert.are.equal(6, p:stats().reused + p:stats().created)
      end)
    end)

    it("a Connection: close response is not reused", function()
      run(function()
        local p = pool()
        assert.are.equal("bye", (get(M("/close"), p)))
        assert.are.equal("bye", (get(M("/close"), p)))
        assert.are.equal(2, counts().main)
        assert.are.equal(0, p:stats().reused)
        assert.are.equal(0, p:stats().idle)
      end)
    end)

    it("an HTTP/1.0 response without keep-alive is not reused", function()
      run(function()
        local p = pool()
        assert.are.equal("old", (get(M("/http10"), p)))
        assert.are.equal(0, p:stats().idle)
        assert.are.equal(0, p:stats().open)
      end)
    end)

    it("an HTTP/1.0 response with Connection: keep-alive is reused", function()
      run(function()
        local p = pool()
        for _ = 1, 3 do assert.are.equal("old", (get(M("/http10ka"), p))) end
        assert.are.equal(1, counts().main)
        assert.are.equal(2, p:stats().reused)
      end)
    end)

    it("a request saying Connection: close is not reused", function()
      run(function()
        local p = pool()
        assert.are.equal("hello", (get(M("/hello"), p, { headers = { connection = "close" } })))
        assert.are.equal("hello", (get(M("/hello"), p)))
        assert.are.equal(2, counts().main)
        assert.are.equal(1, p:stats().idle)
      end)
    end)

    it("chunked bodies, HEAD and redirects keep the connection", function()
      run(function()
        local p = pool()
        for _ = 1, 3 do
          assert.are.equal(("c"):rep(300), (get(M("/chunked?n=3&size=100"), p)))
        end
        local ok, code = http.request({ url = M("/big?size=1000"), method = "HEAD", pool = p })
        assert.are.equal(1, ok)
        assert.are.equal(200, code)
        assert.are.equal("hello", (get(M("/redirect"), p)))
        assert.are.equal(1, counts().main)
        assert.are.equal(5, p:stats().reused)
      end)
    end)

    it("a body the sink stopped reading is not reused", function()
      run(function()
        local p = pool()
        local n = 0
        local ok, err = http.request({ url = M("/big?size=200000"), pool = p,
          sink = function(chunk)
            n = n + 1
            if chunk and n > 1 then return nil, "enough" end
            return 1
          end })
        assert.is_nil(ok)
        assert.are.equal("enough", err)
        assert.are.equal(0, p:stats().open)
        local body = get(M("/big?size=200000"), p)
        assert.are.equal(200000, #body)
        assert.are.equal(2, counts().main)
        assert.are.equal(1, p:stats().idle)
      end)
    end)

    it("a body read to its end through a sink goes back to the pool", function()
      run(function()
        local p = pool()
        for _ = 1, 3 do
          local n = 0
          assert(http.request({ url = M("/big?size=200000"), pool = p,
            sink = function(chunk)
              if chunk then n = n + #chunk end
              return 1
            end }))
          assert.are.equal(200000, n)
        end
        assert.are.equal(1, counts().main)
      end)
    end)

    it("a connection with unasked bytes after the response is not kept", function()
      run(function()
        local p = pool()
        assert.are.equal("junk", (get(M("/junk"), p)))
        assert.are.equal(0, p:stats().idle)
        assert.are.equal("2", (get(M("/id"), p)))
        assert.are.equal(2, counts().main)
      end)
    end)

    it("an idle connection the server sent unasked bytes on is dropped when taken", function()
      run(function()
        local p = pool()
        assert.are.equal("hello", (get(M("/hello"), p)))
        -- the pool's connection is the server's only one: make it talk out of turn
        assert.are.equal("1", (get(M("/id"), p)))
        assert.are.equal("junk", (get(M("/junk?late=1"), p)))
        pause(0.3)
        assert.are.equal(1, p:stats().idle)
        assert.are.equal("2", (get(M("/id"), p)))
        assert.are.equal(1, p:stats().dropped)
      end)
    end)

    it("an idle connection the server closed is dropped at checkout, not retried", function()
      run(function()
        local p = pool()
        assert.are.equal("hello", (get(I("/hello"), p)))
        pause(0.4)   -- the server closes after 0.2 s
        assert.are.equal("hello", (get(I("/hello"), p)))
        local s = p:stats()
        assert.are.equal(1, s.dropped)
        assert.are.equal(0, s.retried)
        assert.are.equal(2, s.created)
        assert.are.equal(2, counts().idle)
      end)
    end)

    it("a GET that fails on a reused connection before any answer is sent again", function()
      run(function()
        local p = pool()
        assert.are.equal("hello", (get(O("/hello"), p)))
        assert.are.equal("hello", (get(O("/hello"), p)))
        local s = p:stats()
        assert.are.equal(1, s.retried)
        assert.are.equal(2, s.created)
        assert.are.equal(2, counts().once)
      end)
    end)

    it("a POST with a body is not sent again", function()
      run(function()
        local p = pool()
        assert.are.equal("hello", (get(O("/hello"), p)))
        local ok, err = http.request({ url = O("/post"), method = "POST", pool = p,
          source = ltn12.source.string("abc"), headers = { ["content-length"] = 3 },
          sink = ltn12.sink.null() })
        assert.is_nil(ok)
        assert.are.equal("closed", err)
        assert.are.equal(0, p:stats().retried)
        assert.are.equal(1, counts().once)
        -- a GET retried once, and only once: a new connection gets its answer
        assert.are.equal("hello", (get(O("/hello"), p)))
      end)
    end)

    it("idle connections expire after idle_timeout", function()
      run(function()
        local p = pool({ idle_timeout = 0.2 })
        assert.are.equal("hello", (get(M("/hello"), p)))
        assert.are.equal(1, p:stats().idle)
        pause(0.4)
        local s = p:stats()
        assert.are.equal(0, s.idle)
        assert.are.equal(0, s.open)
        assert.are.equal(1, s.expired)
        assert.are.equal("hello", (get(M("/hello"), p)))
        assert.are.equal(2, counts().main)
      end)
    end)

    it("max_idle bounds the idle connections of a key", function()
      run(function()
        local p = pool({ max_idle = 0 })
        assert.are.equal("hello", (get(M("/hello"), p)))
        assert.are.equal(0, p:stats().idle)
        assert.are.equal(0, p:stats().open)
      end)
    end)

    it("max_total closes an idle connection of another key to make room", function()
      run(function()
        local p = pool({ max_total = 1 })
        assert.are.equal("hello", (get(M("/hello"), p)))
        assert.are.equal("hello", (get(I("/hello"), p)))
        local s = p:stats()
        assert.are.equal(1, s.open)
        assert.are.equal(2, s.created)
      end)
    end)

    it("100 GETs to nginx over one connection", function()
      run(function()
        local p = pool()
        for _ = 1, 100 do assert.are.equal("<h1>uvsocket</h1>\n", (get(N("/index.html"), p))) end
        assert.are.equal(300000, #get(N("/big.bin"), p))
        local s = p:stats()
        assert.are.equal(1, s.created)
        assert.are.equal(100, s.reused)
      end)
    end)

    it("a proxy is part of the key", function()
      run(function()
        local p = pool()
        local proxy = "http://127.0.0.1:" .. nginx.proxy_port
        for _ = 1, 3 do
          local body, code, headers = get(N("/index.html"), p, { proxy = proxy })
          assert.are.equal("<h1>uvsocket</h1>\n", body)
          assert.are.equal(200, code)
          assert.is_table(headers)
        end
        assert(get(N("/index.html"), p))
        local s = p:stats()
        assert.are.equal(2, s.created)
        assert.are.equal(2, s.keys)
        assert.are.equal(2, s.reused)
      end)
    end)

    it("https: one connection per TLS setting, sessions resumed", function()
      run(function()
        local p = pool()
        local verified = { cafile = certs.ca }
        for _ = 1, 5 do
          assert.are.equal("<h1>uvsocket over TLS</h1>\n", (get(NS("/index.html"), p, verified)))
        end
        assert.are.equal(1, p:stats().created)
        assert.are.equal(4, p:stats().reused)
        -- another verification setting is another key
        assert(get(NS("/index.html"), p, { verify = "none" }))
        assert.are.equal(2, p:stats().created)
        assert.are.equal(2, p:stats().keys)
        -- a wrong CA is refused, not served by the verified connection
        local body, err = get(NS("/index.html"), p, { cafile = certs.dir .. "/other.pem" })
        assert.is_nil(body)
        assert.is_string(err)
        -- a new connection of the first key resumes its session
        assert.are.equal(2, p:close())
        assert(get(NS("/index.html"), p, verified))
        assert.are.equal(1, p:stats().resumed)
      end)
    end)
  end)

  describe("limits", function()
    it("in a plain script a request that would have to wait fails at once", function()
      local p = pool({ max_per_key = 1 })
      local inner
      local ok = http.request({ url = M("/hello"), pool = p, sink = function(chunk)
        if chunk then inner = { http.request({ url = M("/hello"), pool = p }) } end
        return 1
      end })
      assert.are.equal(1, ok)
      assert.is_nil(inner[1])
      assert.are.equal("connection pool full", inner[2])
      assert.are.equal(1, p:stats().rejected)
    end)

    it("the wait queue is bounded: a request finding it full fails", function()
      async.run(function()
        local p = pool({ max_per_key = 1, max_waiting = 1 })
        local results = {}
        local g = async.group()
        for i = 1, 3 do
          g:spawn(function() results[i] = { get(M("/slow?t=0.3"), p) } end)
        end
        g:wait()
        local slow, full = 0, 0
        for i = 1, 3 do
          if results[i][1] == "slow" then slow = slow + 1 end
          if results[i][2] == "connection pool queue full" then full = full + 1 end
        end
        assert.are.equal(2, slow)
        assert.are.equal(1, full)
        assert.are.equal(1, p:stats().rejected)
        assert.are.equal(1, counts().main)
      end)
    end)

    it("a request waits at most wait_timeout", function()
      async.run(function()
        local p = pool({ max_per_key = 1, wait_timeout = 0.1 })
        local results = {}
        local g = async.group()
        for i = 1, 2 do
          g:spawn(function() results[i] = { get(M("/slow?t=0.4"), p) } end)
          async.sleep(0.01)
        end
        g:wait()
        assert.are.equal("slow", results[1][1])
        assert.is_nil(results[2][1])
        assert.are.equal("connection pool wait timeout", results[2][2])
        assert.are.equal(1, p:stats().timeouts)
        assert.are.equal(0, p:stats().waiting)
      end)
    end)

    it("a waiting request is handed the connection another gives back", function()
      async.run(function()
        local p = pool({ max_per_key = 1 })
        local g = async.group()
        local bodies = {}
        for i = 1, 5 do g:spawn(function() bodies[i] = get(M("/slow?t=0.05"), p) end) end
        async.sleep(0.02)
        assert.are.equal(4, p:stats().waiting)
        g:wait()
        for i = 1, 5 do assert.are.equal("slow", bodies[i]) end
        assert.are.equal(1, p:stats().created)
        assert.are.equal(4, p:stats().reused)
      end)
    end)

    it("at max_total a connection given back is closed for a request of another key", function()
      async.run(function()
        local p = pool({ max_total = 1 })
        local g = async.group()
        local first, second
        g:spawn(function() first = get(M("/slow?t=0.1"), p) end)
        async.sleep(0.02)
        g:spawn(function() second = get(I("/hello"), p) end)
        async.sleep(0.02)
        assert.are.equal(1, p:stats().waiting)
        g:wait()
        assert.are.equal("slow", first)
        assert.are.equal("hello", second)
        local s = p:stats()
        assert.are.equal(2, s.created)
        assert.are.equal(1, s.open)
        assert.are.equal(1, s.idle)
      end)
    end)

    it("a waiting task that is cancelled leaves the queue", function()
      async.run(function()
        local p = pool({ max_per_key = 1 })
        local g = async.group()
        local waited
        g:spawn(function() get(M("/slow?t=0.1"), p) end)
        async.sleep(0.02)
        local t = g:spawn(function() waited = { get(M("/hello"), p) } end)
        async.sleep(0.02)
        assert.are.equal(1, p:stats().waiting)
        t:cancel()
        g:wait()
        assert.is_nil(waited[1])
        assert.are.equal("cancelled", waited[2])
        assert.are.equal(0, p:stats().waiting)
        assert.are.equal(1, p:stats().idle)
        assert.are.equal("hello", (get(M("/hello"), p)))
        assert.are.equal(1, p:stats().created)
      end)
    end)

    it("watch = true: a connection the server closes is dropped while it idles", function()
      async.run(function()
        local p = pool({ watch = true })
        for _ = 1, 5 do assert.are.equal("hello", (get(I("/hello"), p))) end
        assert.are.equal(1, p.nidle)
        async.sleep(0.4)   -- the server closes after 0.2 s
        assert.are.equal(0, p.nidle)   -- before any call into the pool
        local s = p:stats()
        assert.are.equal(1, s.dropped)
        assert.are.equal(0, s.open)
        assert.are.equal(4, s.reused)
      end)
    end)

    it("watch = true: idle_timeout closes a connection without a call into the pool", function()
      async.run(function()
        local p = pool({ watch = true, idle_timeout = 0.2 })
        assert.are.equal("hello", (get(M("/hello"), p)))
        async.sleep(0.05)
        assert.are.equal(1, p.nidle)
        async.sleep(0.3)
        assert.are.equal(0, p.nidle)
        assert.are.equal(1, p:stats().expired)
      end)
    end)

    it("watch = true: 10 tasks reuse watched connections; close ends the watchers", function()
      local n = 0
      async.run(function()
        local p = pool({ watch = true, max_per_key = 3 })
        local g = async.group()
        for _ = 1, 10 do
          g:spawn(function()
            for _ = 1, 5 do
              if get(M("/hello"), p) == "hello" then n = n + 1 end
              async.sleep(0.001)
            end
          end)
        end
        g:wait()
        assert.are.equal(3, p:stats().created)
        assert.are.equal(3, p:close())
      end)
      -- run returned: no watcher was left
      assert.are.equal(50, n)
      assert.are.equal(3, counts().main)
    end)

    it("watch must be a boolean", function()
      assert.has_error(function() http.pool({ watch = 1 }) end,
        "bad option 'watch' to 'pool' (boolean expected, got number)")
    end)

    it("100 tasks share a pool of 10 connections", function()
      async.run(function()
        local p = pool({ max_per_key = 10 })
        local g = async.group()
        local good = 0
        for _ = 1, 100 do
          g:spawn(function()
            for _ = 1, 5 do
              if get(M("/hello"), p) == "hello" then good = good + 1 end
            end
          end)
        end
        g:wait()
        assert.are.equal(500, good)
        local s = p:stats()
        assert.are.equal(10, s.created)
        assert.are.equal(490, s.reused)
        assert.are.equal(0, s.waiting)
        assert.are.equal(10, s.idle)
        assert.are.equal(10, counts().main)
      end)
    end)

    it("100 tasks share a pool of 10 connections to nginx over TLS", function()
      async.run(function()
        local p = pool({ max_per_key = 10 })
        local g = async.group()
        local good = 0
        for _ = 1, 100 do
          g:spawn(function()
            if get(NS("/index.html"), p, { cafile = certs.ca }) then good = good + 1 end
          end)
        end
        g:wait()
        assert.are.equal(100, good)
        assert.are.equal(10, p:stats().created)
      end)
    end)
  end)
end)
