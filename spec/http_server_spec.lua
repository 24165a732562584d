-- http_server_spec.lua: socket.http.server against real peers on loopback: uvsocket clients in
-- tasks (the protocol, the limits, misbehaving peers, random input), python3's http.client
-- and wrk against a server process.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")
local async = socket.async
local server = require("socket.http.server")
local ltn12 = require("ltn12")

local PLAIN = os.getenv("LD_PRELOAD") and "env -u LD_PRELOAD " or ""
local ROOT = os.getenv("UVSOCKET_SOURCE_DIR") or "."

-- The handler of the in-process cases.
local function app(req, res)
  local p = req.path
  if p == "/hello" then
    res:header("Content-Type", "text/plain"):finish("hello " .. (req:params().n or "") .. "\n")
  elseif p == "/echo" then
    local body = req:body()
    if body then res:finish(body) end  -- else the server answers the fault (413, 408, 400)
  elseif p == "/stream" then
    ltn12.pump.all(req:source(1000), res:sink())
  elseif p == "/info" then
    res:header("X-Method", req.method):header("X-Version", req.version)
      :header("X-Query", req.query or ""):header("X-Accept", req.headers.accept or "")
      :finish()
  elseif p == "/fail" then
    error("handler failure")
  elseif p == "/failafter" then
    res:write("partial")
    error("late failure")
  elseif p == "/slow" then
    async.sleep(tonumber(req:params().t) or 0.3)
    res:finish("slow done")
  elseif p == "/big" then
    local chunk = ("x"):rep(65536)
    for _ = 1, 200 do
      local ok, err = res:write(chunk)
      if not ok then
        req._conn.srv.write_error = err
        return
      end
    end
  else
    res:status(404):finish("not found\n")
  end
end

-- Runs fn(port, srv) in a task with a server of `opts` (plus the app handler) listening.
local function with_server(opts, fn)
  opts = opts or {}
  opts.handler = opts.handler or app
  return async.run(function()
    local srv = assert(server.listen(opts))
    local _, port = srv:getsockname()
    local r = table.pack(pcall(fn, port, srv))
    srv:close()
    assert(r[1], r[2])
    return table.unpack(r, 2, r.n)
  end)
end

-- Sends `data` on a new connection and reads until the server closes it (or `wait` seconds).
local function exchange(port, data, wait)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(wait or 3)
  if data then c:send(data) end
  local got, err, partial = c:receive("*a")
  c:close()
  return got or partial, err
end

local function status_of(text)
  return tonumber(text:match("^HTTP/1%.1 (%d%d%d)"))
end

describe("socket.http.server", function()
  after_each(function() H.assert_clean() end)

  it("raises outside a task and on bad options", function()
    assert.has_error(function() server.listen{ handler = app } end,
      "socket.http.server.listen must be called in a task")
    async.run(function()
      assert.has_error(function() server.listen{} end)
      assert.has_error(function() server.listen{ handler = app, max_body = "x" } end)
      assert.has_error(function() server.listen{ handler = app, nonsense = 1 } end)
    end)
  end)

  it("serves keep-alive requests and gives method, path, query, headers and version", function()
    with_server(nil, function(port)
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(3)
      c:send("GET /info?a=1&b=x%20y HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\n"
        .. "accept: */*\r\n\r\n")
      local text = ""
      while not text:find("\r\n\r\n") do text = text .. assert(c:receiveany()) end
      assert.matches("X%-Method: GET\r\n", text)
      assert.matches("X%-Version: 1%.1\r\n", text)
      assert.matches("X%-Query: a=1&b=x%%20y\r\n", text)
      assert.matches("X%-Accept: text/html, %*/%*\r\n", text)
      assert.matches("Content%-Length: 0\r\n", text)
      assert.matches("Date: %a+, %d+ %a+ %d+ %d+:%d+:%d+ GMT\r\n", text)
      c:send("GET /hello?n=2 HTTP/1.1\r\nHost: h\r\n\r\n")
      text = ""
      while not text:find("hello 2\n", 1, true) do text = text .. assert(c:receiveany()) end
      c:close()
    end)
  end)

  it("answers pipelined requests in order", function()
    with_server(nil, function(port)
      local reqs = {}
      for i = 1, 20 do reqs[i] = "GET /hello?n=" .. i .. " HTTP/1.1\r\nHost: h\r\n\r\n" end
      reqs[21] = "GET /hello?n=last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
      local text = exchange(port, table.concat(reqs))
      local n = 0
      for body in text:gmatch("\r\n\r\n(hello [^\n]*)\n") do
        n = n + 1
        assert.are.equal(n <= 20 and ("hello " .. n) or "hello last", body)
      end
      assert.are.equal(21, n)
    end)
  end)

  it("answers each request with its own response, however much alike to the one before", function()
    -- Responses alike (the same status, fields and body within one second) are made once and
    -- sent again: any difference must still make a new one.
    local function handler(req, res)
      local q = req:params()
      if q.s then res:status(tonumber(q.s)) end
      if q.v then res:header("X-V", q.v) end
      if q.w then res:header("X-W", q.w) end
      res:finish(q.b or "")
    end
    with_server({ handler = handler }, function(port)
      local cases = {
        { "/?b=one", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none" },
        { "/?b=one", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none" },
        { "/?b=two", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo" },
        { "/?b=two&v=1", "HTTP/1.1 200 OK\r\nX-V: 1\r\nContent-Length: 3\r\n\r\ntwo" },
        { "/?b=two&v=2", "HTTP/1.1 200 OK\r\nX-V: 2\r\nContent-Length: 3\r\n\r\ntwo" },
        { "/?b=two&v=2&w=3",
          "HTTP/1.1 200 OK\r\nX-V: 2\r\nX-W: 3\r\nContent-Length: 3\r\n\r\ntwo" },
        { "/?b=two&v=2&w=4",
          "HTTP/1.1 200 OK\r\nX-V: 2\r\nX-W: 4\r\nContent-Length: 3\r\n\r\ntwo" },
        { "/?b=two&v=2", "HTTP/1.1 200 OK\r\nX-V: 2\r\nContent-Length: 3\r\n\r\ntwo" },
        { "/?b=two&v=2&s=201", "HTTP/1.1 201 Created\r\nX-V: 2\r\nContent-Length: 3\r\n\r\ntwo" },
        { "/?b=twos&v=2&s=201",
          "HTTP/1.1 201 Created\r\nX-V: 2\r\nContent-Length: 4\r\n\r\ntwos" },
        { "/?b=two&v=2&s=201", "HTTP/1.1 201 Created\r\nX-V: 2\r\nContent-Length: 3\r\n\r\ntwo",
          "HEAD" },
        { "/?b=two&v=2&s=201", "HTTP/1.1 201 Created\r\nX-V: 2\r\nContent-Length: 3\r\n"
          .. "Connection: keep-alive\r\n\r\ntwo", "GET", "1.0\r\nConnection: keep-alive" },
        { "/?b=two&v=2&s=201", "HTTP/1.1 201 Created\r\nX-V: 2\r\nContent-Length: 3\r\n\r\ntwo" },
      }
      -- two connections one after the other, each asked the whole list, the second with
      -- Connection: close on its last request
      for round = 1, 2 do
        local c = assert(socket.connect("127.0.0.1", port))
        c:settimeout(3)
        for i, case in ipairs(cases) do
          local last = round == 2 and i == #cases
          assert(c:send((case[3] or "GET") .. " " .. case[1] .. " HTTP/" .. (case[4] or "1.1")
            .. "\r\nHost: h\r\n" .. (last and "Connection: close\r\n" or "") .. "\r\n"))
          local want = case[2]
          if last then want = want:gsub("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1) end
          if case[3] == "HEAD" then want = want:gsub("\r\n\r\n.*$", "\r\n\r\n") end
          local text = ""
          while #text < #want + 37 do text = text .. assert(c:receiveany()) end
          -- the Date field, after the status line, is the one part that is not compared
          assert.are.equal(want, (text:gsub("\r\nDate: [^\r]*", "", 1)), case[1])
        end
        if round == 2 then
          local _, err = c:receive(1)
          assert.are.equal("closed", err)
        end
        c:close()
      end
    end)
  end)

  it("streams a chunked upload through req:source() and res:sink() back as chunks", function()
    with_server(nil, function(port)
      local parts = { ("a"):rep(3000), ("b"):rep(10), ("c"):rep(70000) }
      local body = {}
      for i, p in ipairs(parts) do body[i] = ("%x\r\n%s\r\n"):format(#p, p) end
      local text = exchange(port, "POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
        .. "\r\nConnection: close\r\n\r\n" .. table.concat(body) .. "0\r\nX-T: 1\r\n\r\n")
      assert.matches("Transfer%-Encoding: chunked\r\n", text)
      local decoded, rest = {}, text:match("\r\n\r\n(.*)$")
      while true do
        local size, tail = rest:match("^(%x+)\r\n(.*)$")
        size = tonumber(size, 16)
        if size == 0 then break end
        decoded[#decoded + 1] = tail:sub(1, size)
        rest = tail:sub(size + 3)
      end
      assert.are.equal(table.concat(parts), table.concat(decoded))
    end)
  end)

  it("sends no body for HEAD, and keeps the connection in step", function()
    with_server(nil, function(port)
      local text = exchange(port, "HEAD /hello?n=1 HTTP/1.1\r\nHost: h\r\n\r\n"
        .. "GET /hello?n=2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
      local first, second = text:match("^(.-\r\n\r\n)(HTTP.*)$")
      assert.matches("Content%-Length: 8\r\n", first)
      assert.matches("hello 2\n$", second)
    end)
  end)

  it("answers the parser's faults and the limits with their status and closes", function()
    with_server({ max_request_line = 100, max_header_line = 60, max_headers = 5,
                  max_body = 1000 }, function(port)
      local cases = {
        { "GET /" .. ("a"):rep(200) .. " HTTP/1.1\r\nHost: h\r\n\r\n", 414 },
        { "GET / HTTP/1.1\r\nHost: h\r\nX: " .. ("b"):rep(100) .. "\r\n\r\n", 431 },
        { "GET / HTTP/1.1\r\nHost: h\r\n" .. ("X: y\r\n"):rep(10) .. "\r\n", 431 },
        { "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n", 413 },
        { "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          .. "400\r\n" .. ("z"):rep(1024) .. "\r\n400\r\n" .. ("z"):rep(1024) .. "\r\n0\r\n\r\n",
          413 },
        { "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
        { "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505 },
        { "GET / HTTP/1.1\r\n\r\n", 400 },
        { "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400 },
        { "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
      }
      for _, case in ipairs(cases) do
        local text, err = exchange(port, case[1])
        assert.is_nil(err)  -- the whole stream, ended by the server
        assert.are.equal(case[2], status_of(text), case[1]:sub(1, 40))
        assert.matches("Connection: close\r\n", text)
      end
    end)
  end)

  it("gives the head a deadline as a whole: a slowloris peer gets 408 on time", function()
    with_server({ header_timeout = 0.6 }, function(port)
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(3)
      local t0 = socket.gettime()
      local head = "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " .. ("s"):rep(100)
      local got
      for i = 1, #head do
        if not c:send(head:sub(i, i)) then break end
        got = c:receiveany(1000)   -- nothing comes until the deadline; then the 408
        if got then break end
      end
      c:close()
      local took = socket.gettime() - t0
      assert.are.equal(408, status_of(got or ""))
      assert.is_true(took > 0.5 and took < 1.5, "took " .. took)
    end)
  end)

  it("closes idle kept-alive connections after idle_timeout, silently", function()
    with_server({ idle_timeout = 0.3 }, function(port)
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(3)
      c:send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")
      assert(c:receiveany())
      local t0 = socket.gettime()
      local rest, err = c:receive("*a")
      assert.is_nil(rest)
      assert.are.equal("closed", err)  -- nothing sent, no reset
      local took = socket.gettime() - t0
      assert.is_true(took > 0.2 and took < 1.5, "took " .. took)
      c:close()
    end)
  end)

  it("turns a handler error into a 500 reported through async.onerror", function()
    local reported
    local old = async.onerror(function(_, err) reported = err end)
    with_server(nil, function(port)
      local text, err = exchange(port, "GET /fail HTTP/1.1\r\nHost: h\r\n\r\n")
      assert.are.equal(500, status_of(text))
      assert.is_nil(err)
      -- After the head was sent, the connection is closed instead.
      text = exchange(port, "GET /failafter HTTP/1.1\r\nHost: h\r\n\r\n")
      assert.matches("^HTTP/1%.1 200", text)
      assert.matches("partial", text)
      assert.is_nil(text:find("0\r\n\r\n$"))
      -- The server still serves.
      assert.matches("hello \n$", exchange(port, "GET /hello HTTP/1.1\r\nHost: h\r\n"
        .. "Connection: close\r\n\r\n"))
    end)
    async.onerror(old)
    assert.matches("late failure", reported)
  end)

  it("pauses accepting at max_connections", function()
    with_server({ max_connections = 2 }, function(port)
      local a = assert(socket.connect("127.0.0.1", port))
      local b = assert(socket.connect("127.0.0.1", port))
      async.sleep(0.1)
      local c = assert(socket.connect("127.0.0.1", port))  -- queued by the kernel
      c:settimeout(0.3)
      c:send("GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
      local got, err = c:receive("*a")
      assert.is_nil(got)
      assert.are.equal("timeout", err)
      a:close()
      c:settimeout(3)
      got = c:receive("*a")
      assert.matches("hello \n$", got)
      b:close()
      c:close()
    end)
  end)

  it("shuts down gracefully: idle connections close at once, in-flight requests finish",
    function()
      local result = async.run(function()
        local srv = assert(server.listen{ handler = app })
        local _, port = srv:getsockname()
        local idle = assert(socket.connect("127.0.0.1", port))
        idle:settimeout(3)
        idle:send("GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")
        assert(idle:receiveany())
        local busy = assert(socket.connect("127.0.0.1", port))
        busy:settimeout(3)
        busy:send("GET /slow?t=0.5 HTTP/1.1\r\nHost: h\r\n\r\n")
        async.sleep(0.1)
        local t0 = socket.gettime()
        local idle_closed
        async.spawn(function()
          local _, err = idle:receive("*a")
          idle_closed = socket.gettime() - t0
          assert(err == "closed")
        end)
        local cancelled = async.shutdown(3)
        local text = busy:receive("*a")
        idle:close()
        busy:close()
        return { cancelled = cancelled, idle = idle_closed, text = text }
      end)
      assert.are.equal(0, result.cancelled)
      assert.is_true(result.idle < 0.2, "idle connection closed after " .. result.idle)
      assert.matches("Connection: close\r\n", result.text)
      assert.matches("slow done$", result.text)
    end)

  it("bounds a response write by write_timeout when the client does not read", function()
    local state
    with_server({ write_timeout = 0.3, handler = function(req, res)
      state = req._conn.srv
      return app(req, res)
    end }, function(port)
      local c = assert(socket.connect("127.0.0.1", port))
      c:setoption("tcp-nodelay", true)
      c:send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
      local t0 = socket.gettime()
      while not state or not state.write_error do
        async.sleep(0.05)
        assert(socket.gettime() - t0 < 5, "the write did not time out")
      end
      c:close()
    end)
    assert.are.equal("timeout", state.write_error)
  end)

  it("survives truncated bodies, resets and random input, and still serves", function()
    local failures = 0
    local old = async.onerror(function() failures = failures + 1 end)
    with_server({ header_timeout = 0.5, body_timeout = 0.5 }, function(port)
      -- A body cut short by the peer.
      local c = assert(socket.connect("127.0.0.1", port))
      c:send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly ten..")
      c:close()
      -- A reset in the middle of a request.
      c = assert(socket.connect("127.0.0.1", port))
      c:send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
      c:setoption("linger", { on = true, timeout = 0 })
      c:close()
      -- Random bytes and random cuts of valid requests, a few at a time.
      math.randomseed(350)
      local valid = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        .. "GET /hello HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "5\r\nhello\r\n0\r\n\r\n"
      local answered, closed = 0, 0
      local group = async.group()
      for round = 1, 60 do
        for _ = 1, 40 do
          group:spawn(function()
            local bytes = {}
            if round % 2 == 0 then
              for i = 1, math.random(1, 300) do bytes[i] = string.char(math.random(0, 255)) end
            else
              local a = math.random(1, #valid)
              local s = valid:sub(a, a + math.random(0, #valid))
              for i = 1, #s do
                bytes[i] = math.random() < 0.05 and string.char(math.random(0, 255))
                  or s:sub(i, i)
              end
            end
            local k = assert(socket.connect("127.0.0.1", port))
            k:settimeout(2)
            local data = table.concat(bytes)
            local cut = math.random(0, #data)
            k:send(data:sub(1, cut))
            k:send(data:sub(cut + 1))
            k:shutdown("send")
            local got, err, partial = k:receive("*a")
            got = got or partial
            k:close()
            if got:match("^HTTP/1%.1 %d%d%d") then answered = answered + 1 end
            if err == nil or err == "closed" then closed = closed + 1 end
          end)
        end
        group:wait()
      end
      assert.are.equal(2400, closed)  -- every connection ended: none was left hanging
      assert.is_true(answered > 1000, "answered " .. answered)
      assert.matches("hello \n$", exchange(port, "GET /hello HTTP/1.1\r\nHost: h\r\n"
        .. "Connection: close\r\n\r\n"))
    end)
    async.onerror(old)
    assert.are.equal(0, failures)
  end)

  it("raises 'TLS not available' for tls without socket.tls, and wraps with it", function()
    -- socket.tls made unavailable, whether it is installed or not
    local real = package.loaded["socket.tls"]
    package.loaded["socket.tls"] = nil
    package.preload["socket.tls"] = function() error("module 'socket.tls' not found") end
    async.run(function()
      assert.has_error(function() server.listen{ handler = app, tls = {} } end,
        "TLS not available")
    end)
    package.preload["socket.tls"] = nil
    local wrapped = 0
    package.preload["socket.tls"] = function()
      return { wrap = function(sock, params)
        assert(params.mode == "server")
        wrapped = wrapped + 1
        return sock
      end }
    end
    with_server({ tls = { mode = "server" } }, function(port)
      assert.matches("hello \n$", exchange(port, "GET /hello HTTP/1.1\r\nHost: h\r\n"
        .. "Connection: close\r\n\r\n"))
    end)
    package.preload["socket.tls"], package.loaded["socket.tls"] = nil, real
    assert.are.equal(1, wrapped)
  end)
end)

-- A server process for the external clients: the app above, ended by GET /quit.
local SERVER = [[
local server = require("socket.http.server")
local async = socket.async
local ltn12 = require("ltn12")
async.run(function()
  local srv
  srv = assert(server.listen{ max_connections = 2000, handler = function(req, res)
    local p = req.path
    if p == "/hello" then
      res:header("Content-Type", "text/plain"):finish("hello " .. (req:params().n or "") .. "\n")
    elseif p == "/echo" then
      res:finish(assert(req:body()))
    elseif p == "/chunks" then
      for i = 0, 99 do res:write("chunk " .. i .. "\n") end
    elseif p == "/quit" then
      res:finish("bye\n")
      async.spawn(function() srv:close(); async.shutdown(1) end)
    end
  end })
  local _, port = srv:getsockname()
  io.write(port, "\n")
  io.flush()
end)
]]

local function start_server()
  local p = H.peer(SERVER, 60)
  local port = assert(tonumber(p:read("l")), "server did not start")
  return p, port
end

local function stop_server(p, port)
  exchange(port, "GET /quit HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
  p:close()
end

local function run(cmd)
  local f = assert(io.popen(PLAIN .. "timeout 60 " .. cmd .. " 2>&1", "r"))
  local out = f:read("a")
  f:close()
  return out
end

describe("socket.http.server with external clients", function()
  it("passes python3 http.client's keep-alive, pipelining, chunked and 100-continue checks",
    function()
      local p, port = start_server()
      local out = run("/usr/bin/python3 " .. ROOT .. "/spec/support/http_client.py " .. port)
      stop_server(p, port)
      local oks = select(2, out:gsub("\nok ", "\n"))
      assert.is_nil(out:find("FAIL"), out)
      assert.are.equal(8, oks + (out:find("^ok ") and 1 or 0), out)
    end)

  it("serves wrk with keep-alive without errors", function()
    local p, port = start_server()
    local out = run("wrk -t1 -c50 -d1s http://127.0.0.1:" .. port .. "/hello")
    stop_server(p, port)
    local n = tonumber(out:match("(%d+) requests in"))
    assert.is_true(n and n > 1000, out)
    assert.is_nil(out:find("Socket errors"), out)
    assert.is_nil(out:find("Non%-2xx"), out)
    io.write(("\n  wrk -c50 1 s: %s requests/s\n"):format(out:match("Requests/sec:%s*([%d.]+)")))
  end)
end)

H.cleanup()
