-- websocket_spec.lua: socket.websocket client and server against each other, against raw peers
-- that send hand-made frames (fragments, pings, faults, silence), and against python3-websockets
-- as server and as client.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")
local async = socket.async
local server = require("socket.http.server")
local websocket = require("socket.websocket")
local hcore = require("socket.http.core")

local PLAIN = os.getenv("LD_PRELOAD") and "env -u LD_PRELOAD " or ""
local ROOT = os.getenv("UVSOCKET_SOURCE_DIR") or "."

-- An echo server in a task; fn(port, srv) runs beside it.
local function with_echo(options, fn, on_accept)
  return async.run(function()
    local srv = assert(server.listen{ handler = function(req, res)
      local ws = assert(websocket.upgrade(req, res, options))
      if on_accept then return on_accept(ws) end
      while true do
        local msg, kind = ws:receive()
        if not msg then break end
        ws:send(msg, kind)
      end
    end })
    local _, port = srv:getsockname()
    local r = table.pack(pcall(fn, port))
    srv:close()
    assert(r[1], r[2])
    return table.unpack(r, 2, r.n)
  end)
end

-- A raw client: the handshake by hand; returns the socket and the bytes after the head.
local function raw_client(port)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(3)
  c:send("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
  local data = ""
  while not data:find("\r\n\r\n", 1, true) do data = data .. assert(c:receiveany()) end
  assert(data:find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 1, true), data)
  return c, data:match("\r\n\r\n(.*)$")
end

local MASK = "\1\2\3\4"
local function cframe(op, payload, fin) return hcore.ws_frame(op, payload, fin, MASK) end

-- Reads frames from a raw client socket until `n` frames came.
local function read_frames(c, n, pending)
  local p = hcore.ws_parser("client")
  local got = {}
  local data = pending or ""
  while true do
    if data ~= "" then
      for _, f in ipairs(assert(p:feed(data))) do got[#got + 1] = f end
    end
    if #got >= n then return got end
    local err
    data, err = c:receiveany()
    if not data then return got, err end
  end
end

describe("socket.websocket", function()
  after_each(function() H.assert_clean() end)

  it("echoes text and binary, large messages and messages sent from many tasks", function()
    with_echo(nil, function(port)
      local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
      assert(ws:send("héllo"))
      assert.are.same({ "héllo", "text" }, { ws:receive() })
      assert(ws:send("\0\255", "binary"))
      assert.are.same({ "\0\255", "binary" }, { ws:receive() })
      local big = ("x"):rep(500000)
      assert(ws:send(big, "binary"))
      local m = ws:receive()
      assert.are.equal(big, m)
      -- Ten tasks send at once while this one receives: every frame arrives whole.
      local g = async.group()
      for t = 1, 10 do
        g:spawn(function()
          for i = 1, 20 do assert(ws:send(("t%d-%d-"):format(t, i) .. ("y"):rep(i * 50))) end
        end)
      end
      local seen = 0
      for _ = 1, 200 do
        local msg = assert(ws:receive(5))
        assert.matches("^t%d+%-%d+%-y+$", msg)
        seen = seen + 1
      end
      g:wait()
      assert.are.equal(200, seen)
      assert.is_true(ws:close(4001, "bye"))
      assert.are.equal("closed", ws:status())
    end)
  end)

  it("reassembles fragments, answers pings between them and completes the close handshake",
    function()
      with_echo(nil, function(port)
        local c, rest = raw_client(port)
        c:send(cframe("text", "frag", false) .. cframe("ping", "p1")
          .. cframe("continuation", "ment", false) .. cframe("continuation", "ed", true))
        local frames = read_frames(c, 2, rest)
        assert.are.equal("pong", frames[1].opcode)
        assert.are.equal("p1", frames[1].payload)
        assert.are.equal("text", frames[2].opcode)
        assert.are.equal("fragmented", frames[2].payload)
        c:send(cframe("close", string.pack(">I2", 4002) .. "done"))
        frames = read_frames(c, 1)
        assert.are.equal("close", frames[1].opcode)
        assert.are.equal(4002, frames[1].code)
        local _, err = c:receive("*a")
        assert.are.equal("closed", err)  -- and the server closed the connection
        c:close()
      end)
    end)

  it("keeps a partial frame across a receive timeout", function()
    local got = {}
    with_echo(nil, function(port)
      local c, rest = raw_client(port)
      local f = cframe("text", "in two pieces")
      c:send(f:sub(1, 5))
      async.sleep(0.3)    -- the server's receive(0.1) times out meanwhile
      c:send(f:sub(6))
      local frames = read_frames(c, 1, rest)
      got.echo = frames[1].payload
      c:close()
    end, function(ws)
      got.first = { ws:receive(0.1) }
      got.second = { ws:receive(3) }
      ws:send(got.second[1])
    end)
    assert.are.same({ nil, "timeout" }, got.first)
    assert.are.same({ "in two pieces", "text" }, got.second)
  end)

  it("fails the connection on protocol faults with their close codes", function()
    local cases = {
      { hcore.ws_frame("text", "unmasked"), 1002, "unmasked frame" },
      { cframe("text", "\255\254"), 1007, "invalid utf-8" },
      { cframe("binary", ("z"):rep(900)), 1009, "frame too big" },
      { cframe("binary", ("z"):rep(600), false) .. cframe("continuation", ("z"):rep(600)), 1009,
        "message too big" },
      { cframe("continuation", "x"), 1002, "continuation without start" },
    }
    for _, case in ipairs(cases) do
      local seen
      with_echo({ max_message = 1000, max_frame = 800 }, function(port)
        local c, rest = raw_client(port)
        c:send(case[1])
        local frames = read_frames(c, 1, rest)
        assert.are.equal("close", frames[1].opcode)
        assert.are.equal(case[2], frames[1].code)
        c:close()
      end, function(ws)
        seen = { ws:receive(3) }
      end)
      assert.are.equal(case[3], seen[2])
    end
  end)

  it("bounds the send queue: error, close or wait when a peer does not read", function()
    for _, policy in ipairs({ "error", "close", "wait" }) do
      local result
      with_echo({ queue_size = 65536, on_full = policy, send_timeout = 0.3 }, function(port)
        local c = raw_client(port)   -- never reads
        while not result do async.sleep(0.05) end
        c:close()
      end, function(ws)
        local chunk = ("q"):rep(16384)
        local sent = 0
        for _ = 1, 2000 do
          local ok, err = ws:send(chunk, "binary")
          if not ok then
            result = { err = err, sent = sent, queued = ws:queuedbytes(), state = ws:status() }
            return
          end
          sent = sent + 1
        end
        result = { sent = sent }
      end)
      assert.is_truthy(result.err, policy)
      assert.is_true(result.queued <= 65536 + 16384, "queued " .. result.queued)
      assert.are.equal(({ error = "queue full", close = "queue full", wait = "timeout" })[policy],
        result.err)
      if policy == "close" then assert.are.equal("closed", result.state) end
    end
  end)

  it("closes a peer that does not answer keep-alive pings", function()
    local seen
    with_echo({ ping_interval = 0.2, ping_timeout = 0.3 }, function(port)
      local c = raw_client(port)   -- reads nothing, answers nothing
      local t0 = socket.gettime()
      while not seen do async.sleep(0.05) end
      seen.took = socket.gettime() - t0
      c:close()
    end, function(ws)
      seen = { ws:receive(5) }
    end)
    assert.are.equal("timeout", seen[2])
    assert.is_true(seen.took < 2, "took " .. seen.took)
  end)

  it("answers keep-alive pings of its own with a live peer", function()
    with_echo({ ping_interval = 0.1 }, function(port)
      local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/"))
      for i = 1, 5 do
        async.sleep(0.1)
        assert(ws:send("m" .. i))
        assert.are.equal("m" .. i, ws:receive(3))
      end
      ws:close()
    end)
  end)

  it("refuses bad handshakes and bad URLs", function()
    async.run(function()
      local srv = assert(server.listen{ handler = function(req, res)
        if req.path == "/refuse" then return res:status(403):finish() end
        assert.is_nil(websocket.upgrade(req, res))
      end })
      local _, port = srv:getsockname()
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(3)
      c:send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
      assert.matches("^HTTP/1%.1 400", c:receive("*a"))
      c:close()
      local ws, err = websocket.connect("http://127.0.0.1:" .. port .. "/")
      assert.is_nil(ws)
      assert.are.equal("not a ws:// or wss:// URL", err)
      ws, err = websocket.connect("ws://127.0.0.1:" .. port .. "/refuse")
      assert.is_nil(ws)
      assert.matches("^handshake refused: 403", err)
      -- wss:// to a plain server: a TLS error, or no TLS at all without socket.tls
      ws, err = websocket.connect("wss://127.0.0.1:" .. port .. "/")
      assert.is_nil(ws)
      if pcall(require, "socket.tls") then
        assert.is_string(err)
        assert.is_nil(err:find("TLS not available", 1, true))
      else
        assert.matches("TLS not available", err)
      end
      srv:close()
    end)
  end)
end)

local function popen_lines(cmd)
  return assert(io.popen(PLAIN .. "timeout 60 " .. cmd .. " 2>&1", "r"))
end

describe("socket.websocket with python3-websockets", function()
  it("talks to a python3-websockets server", function()
    local py = popen_lines("/usr/bin/python3 " .. ROOT .. "/spec/support/ws_peer.py server")
    local port, pid = (py:read("l") or ""):match("port (%d+) pid (%d+)")
    assert(port, "the python server did not start")
    async.run(function()
      local ws = assert(websocket.connect("ws://127.0.0.1:" .. port .. "/",
        { max_message = 1 << 22 }))
      assert(ws:send("é"))
      assert.are.same({ "é", "text" }, { ws:receive(5) })
      local big = ("b"):rep(200000)
      assert(ws:send(big, "binary"))
      assert.are.equal(big, ws:receive(5))
      assert(ws:ping("x"))
      assert(ws:send("after ping"))
      assert.are.equal("after ping", ws:receive(5))
      ws:close(1000)
    end)
    -- The python process would end by itself after 60 s; end it now, by its pid.
    os.execute("kill " .. pid)
    py:close()
  end)

  it("serves a python3-websockets client", function()
    local out
    async.run(function()
      local srv = assert(server.listen{ handler = function(req, res)
        local ws = assert(websocket.upgrade(req, res, { max_message = 1 << 22 }))
        while true do
          local msg, kind = ws:receive(10)
          if not msg then break end
          ws:send(msg, kind)
        end
      end })
      local _, port = srv:getsockname()
      -- The client runs as its own process, in the background; its output file is polled.
      local file = os.tmpname()
      os.execute("(" .. PLAIN .. "timeout 30 /usr/bin/python3 " .. ROOT
        .. "/spec/support/ws_peer.py client ws://127.0.0.1:" .. port .. "/ > " .. file
        .. " 2>&1; echo END >> " .. file .. ") &")
      local t0 = socket.gettime()
      repeat
        async.sleep(0.1)
        out = require("support.servers").read(file) or ""
      until out:find("END") or socket.gettime() - t0 > 40
      os.remove(file)
      srv:close()
    end)
    assert.is_nil(out:find("FAIL"), out)
    local oks = select(2, out:gsub("ok %a+", ""))
    assert.are.equal(7, oks, out)
  end)
end)

H.cleanup()
