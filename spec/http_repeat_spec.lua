-- http_repeat_spec.lua: socket.http requests made again and again to one URL, without and with
-- a keep-alive pool. A request that names only its URL and method reuses what was prepared for
-- the same URL before; whatever a later request or the program changes in between (the
-- module's settings, the canonical header names, the socket factory of the scheme, the
-- request's own fields) must reach the wire as if nothing had been kept, and a response is
-- read the same however often its lines were seen before. Against the test server
-- (support/httpd.lua), whose /echo answers with the request it saw; every case runs in
-- blocking mode and as a task.
local socket = require("socket")
local http = require("socket.http")
local headers = require("socket.headers")
local ltn12 = require("ltn12")
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")

local httpd

local function U(path) return "http://127.0.0.1:" .. httpd.port .. path end

-- The request line and the header lines /echo saw: line, {raw header lines}, fields by name.
local function echoed(text)
  local head = assert(text:match("^(.-)\n\n"))
  local lines = {}
  for l in head:gmatch("[^\n]+") do lines[#lines + 1] = l end
  local raw, fields = {}, {}
  for i = 2, #lines do
    raw[#raw + 1] = lines[i]
    local name, value = lines[i]:match("^([^:]+): (.*)$")
    fields[name] = value
  end
  return lines[1], raw, fields
end

-- A generic GET of `u` (extra fields added): the echoed request line, raw lines, fields, code.
local function get(u, extra)
  local t = {}
  local reqt = { url = u, sink = ltn12.sink.table(t) }
  for k, v in pairs(extra or {}) do reqt[k] = v end
  local r, code = http.request(reqt)
  assert(r, code)
  if code ~= 200 then return nil, nil, nil, code end
  local line, raw, fields = echoed(table.concat(t))
  return line, raw, fields, code
end

local function each_pool(body)
  for _, pooled in ipairs({ false, true }) do
    local p = pooled and http.pool() or nil
    http.setpool(p)
    local ok, err = pcall(body, pooled)
    http.setpool(nil)
    if p then p:close() end
    assert(ok, err)
  end
end

describe("socket.http repeated requests", function()
  setup(function() httpd = S.httpd() end)
  teardown(function()
    if httpd then httpd:stop() end
    H.cleanup()
  end)

  H.modes("to one URL", function(run)
    it("send http.USERAGENT as it is at each request", function()
      run(function()
        local saved = http.USERAGENT
        each_pool(function()
          local u = U("/echo?ua")
          local _, _, fields = get(u)
          assert.are.equal(saved, fields["User-Agent"])
          http.USERAGENT = "repeat/1"
          local ok, err = pcall(function()
            _, _, fields = get(u)
            assert.are.equal("repeat/1", fields["User-Agent"])
            -- the simple form too
            local body = assert(http.request(u))
            assert.are.equal("repeat/1", select(3, echoed(body))["User-Agent"])
          end)
          http.USERAGENT = saved
          assert(ok, err)
          _, _, fields = get(u)
          assert.are.equal(saved, fields["User-Agent"])
        end)
      end)
    end)

    it("spell the headers with headers.canonic as it is at each request", function()
      run(function()
        each_pool(function()
          local u = U("/echo?canonic")
          local _, raw = get(u)
          assert.is_truthy(table.concat(raw, "\n"):find("User-Agent: ", 1, true))
          headers.canonic["user-agent"] = "USER-agent"
          local ok, err = pcall(function()
            _, raw = get(u)
            assert.is_truthy(table.concat(raw, "\n"):find("USER-agent: ", 1, true))
          end)
          headers.canonic["user-agent"] = "User-Agent"
          assert(ok, err)
          _, raw = get(u)
          assert.is_truthy(table.concat(raw, "\n"):find("User-Agent: ", 1, true))
        end)
      end)
    end)

    it("call the scheme's create at each request, the one set at the time", function()
      run(function()
        each_pool(function(pooled)
          local u = U("/echo?create")
          get(u)
          local schemes = http.schemes
          local saved = schemes.http.create
          local calls = 0
          schemes.http.create = function(r)
            calls = calls + 1
            assert.are.equal("/echo", r.path)
            return socket.tcp
          end
          local ok, err = pcall(function()
            get(u)
            get(u)
          end)
          schemes.http.create = saved
          assert(ok, err)
          assert.are.equal(2, calls)
          get(u)
          assert.are.equal(2, calls)
          -- (a pool keeps connections by where they go, not by their factory)
          assert.is_boolean(pooled)
        end)
      end)
    end)

    it("send a request's own headers, method and body, and not the next request's", function()
      run(function()
        each_pool(function()
          local u = U("/echo?own")
          local line, _, fields = get(u)
          assert.are.equal("GET /echo?own HTTP/1.1", line)
          assert.is_nil(fields["x-mine"])
          line, _, fields = get(u, { headers = { ["X-Mine"] = "yes" } })
          assert.are.equal("GET /echo?own HTTP/1.1", line)
          assert.are.equal("yes", fields["x-mine"])
          line, _, fields = get(u)
          assert.are.equal("GET /echo?own HTTP/1.1", line)
          assert.is_nil(fields["x-mine"])
          local t = {}
          local r, code, h = http.request({ url = u, method = "HEAD", sink = ltn12.sink.table(t) })
          assert.are.equal(1, r)
          assert.are.equal(200, code)
          assert.is_string(h["content-length"])
          assert.are.equal("", table.concat(t))
          local body = assert(http.request(u, "k=v"))
          line, _, fields = echoed(body)
          assert.are.equal("POST /echo?own HTTP/1.1", line)
          assert.are.equal("3", fields["Content-Length"])
          assert.are.equal("k=v", body:match("\n\n(.*)$"))
          line = get(u, { method = "PUT", source = ltn12.source.string("abc"),
            headers = { ["content-length"] = 3 } })
          assert.are.equal("PUT /echo?own HTTP/1.1", line)
          line = get(u)
          assert.are.equal("GET /echo?own HTTP/1.1", line)
        end)
      end)
    end)

    it("give each request its own sink, step and redirect settings", function()
      run(function()
        each_pool(function()
          local u = U("/redirect?code=302&to=/hello")
          local a, b = {}, {}
          local r, code, h = http.request({ url = u, sink = ltn12.sink.table(a), redirect = false })
          assert.are.equal(1, r)
          assert.are.equal(302, code)
          assert.are.equal("/hello", h.location)
          local steps = 0
          r, code = http.request({ url = u, sink = ltn12.sink.table(b),
            step = function(src, snk)
              steps = steps + 1
              return ltn12.pump.step(src, snk)
            end })
          assert.are.equal(1, r)
          assert.are.equal(200, code)
          assert.are.equal("hello world", table.concat(b))
          assert.is_true(steps >= 2)
          assert.is_false(table.concat(a) == "hello world")
          r, code = http.request({ url = u, sink = ltn12.sink.table({}), maxredirects = 0 })
          assert.are.equal(1, r)
          assert.are.equal(302, code)
          assert.are.equal("hello world", (http.request(u)))
        end)
      end)
    end)

    it("go through http.PROXY once it is set", function()
      run(function()
        each_pool(function()
          local u = "http://127.0.0.1:1/echo?proxied"
          -- first without the proxy: nothing listens on port 1
          local r, err = http.request({ url = u, sink = ltn12.sink.table({}) })
          assert.is_nil(r)
          assert.is_string(err)
          http.PROXY = "http://127.0.0.1:" .. httpd.port
          local ok, e = pcall(function()
            local line = get(u)
            assert.are.equal("GET http://127.0.0.1:1/echo?proxied HTTP/1.1", line)
          end)
          http.PROXY = nil
          assert(ok, e)
          r = http.request({ url = u, sink = ltn12.sink.table({}) })
          assert.is_nil(r)
        end)
      end)
    end)

    it("read the same header lines the same way every time: folded, repeated", function()
      run(function()
        each_pool(function()
          for _ = 1, 3 do
            local body, code, h = http.request(U("/fold"))
            assert.are.equal("ok", body)
            assert.are.equal(200, code)
            assert.are.equal("one  two\tthree", h["x-folded"])
            assert.are.equal("a, b", h["x-twice"])
            assert.are.equal("2", h["content-length"])
          end
        end)
      end)
    end)

    it("keep working over more URLs than are kept", function()
      run(function()
        each_pool(function()
          for round = 1, 2 do
            for i = 1, 80 do
              local line = get(U("/echo?n=" .. i))
              assert.are.equal("GET /echo?n=" .. i .. " HTTP/1.1", line, "round " .. round)
            end
          end
        end)
      end)
    end)
  end)
end)
