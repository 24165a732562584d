-- http_head_spec.lua: socket.http takes a response's header block in one call when it is all
-- buffered and plain (sock:_headers, src/socket/fields_scan.hpp), and reads it line by line
-- otherwise. Either way the fields must be exactly what the line reader makes of the same
-- bytes: each canned response below is fetched through uvsocket's socket, and again through a
-- wrapper that hides the socket from socket.http (which then reads a byte at a time, the path
-- for any foreign socket object), and the two results must agree, in blocking mode and in a
-- task, with and without a keep-alive pool.
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local async = socket.async
local H = require("support.helpers").use(_ENV)

-- path -> the response's head (its blank line included); every body is "body!" with its length.
local heads = {
  ["/plain"] = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\n"
    .. "Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
  ["/case"] = "HTTP/1.1 200 OK\r\nCONTENT-length: 5\r\nX-MiXed:   \t spaced value  \r\n"
    .. "x-empty:\r\n\r\n",
  ["/lf"] = "HTTP/1.1 200 OK\nContent-Length: 5\nX-A: 1\n\n",
  ["/repeated"] = "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 5\r\n"
    .. "set-cookie: b=2\r\n\r\n",
  ["/folded"] = "HTTP/1.1 200 OK\r\nX-Folded: one\r\n  two\r\n\tthree\r\nContent-Length: 5\r\n\r\n",
  ["/cr"] = "HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\nContent-Length: 5\r\r\n\r\n",
  ["/colons"] = "HTTP/1.1 200 OK\r\nX-Url: http://h:1/p\r\nContent-Length: 5\r\n\r\n",
  ["/longname"] = "HTTP/1.1 200 OK\r\n" .. ("N"):rep(100) .. ": long\r\nContent-Length: 5\r\n\r\n",
  ["/none"] = "HTTP/1.1 200 OK\r\n\r\n",  -- no length: the body ends with the connection
}
do
  local many = { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" }
  for i = 1, 40 do many[#many + 1] = ("X-Field-%d: value %d\r\n"):format(i, i) end
  heads["/many"] = table.concat(many) .. "\r\n"
end
-- /split sends /plain's head in two pieces 0.2 s apart: the block is not all buffered when
-- the status line is read.

local peer, port

-- The peer: serves any number of connections at once, each until it closes, a task each;
-- GET /quit ends it.
local PEER = [[
local heads = load(%q)()
local async = socket.async
local srv = assert(socket.bind("127.0.0.1", 0))
io.write(select(2, srv:getsockname()), "\n")
io.flush()
local function serve(c)
  c:settimeout(10)
  while true do
    local line = c:receive("*l")
    if not line then break end
    repeat local h = c:receive("*l") until not h or h == ""
    local path = line:match("^%%u+ (%%S+)")
    if path == "/quit" then os.exit(0) end
    if path == "/split" then
      local head = heads["/plain"]
      c:send(head:sub(1, 40))
      async.sleep(0.2)
      c:send(head:sub(41) .. "body!")
    else
      c:send(heads[path] .. "body!")
      if path == "/none" then break end
    end
  end
  c:close()
end
async.run(function()
  while true do
    local c = assert(srv:accept())
    async.spawn(serve, c)
  end
end)
]]

local function serialize(t)
  local out = { "return {" }
  for k, v in pairs(t) do out[#out + 1] = ("[%q] = %q,"):format(k, v) end
  out[#out + 1] = "}"
  return table.concat(out, "\n")
end

-- A socket object socket.http does not know as uvsocket's: every method forwards to the real
-- one, and its metatable has neither __name nor __bounded.
local function foreign_tcp()
  local s = assert(socket.tcp())
  return setmetatable({}, { __index = function(_, k)
    local m = s[k]
    if type(m) ~= "function" then return m end
    return function(_, ...) return m(s, ...) end
  end })
end

local function fetch(path, options)
  local t = {}
  local reqt = { url = "http://127.0.0.1:" .. port .. path, sink = ltn12.sink.table(t) }
  for k, v in pairs(options or {}) do reqt[k] = v end
  local r, code, fields = http.request(reqt)
  return r and table.concat(t), code, fields
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

describe("socket.http response header blocks", function()
  setup(function()
    peer = H.peer(PEER:format(serialize(heads)), 120)
    port = assert(tonumber(peer:read("l")), "peer did not start")
  end)
  teardown(function()
    if peer then
      local c = socket.connect("127.0.0.1", port)
      if c then
        c:send("GET /quit HTTP/1.1\r\n\r\n")
        c:close()
      end
      peer:close()  -- waits for it to end
    end
    H.cleanup()
  end)

  H.modes("read whole or line by line", function(run)
    local paths = sorted_keys(heads)
    paths[#paths + 1] = "/split"
    for _, pooled in ipairs({ false, true }) do
      local how = pooled and " (pooled)" or ""
      it("give the line reader's fields for every head" .. how, function()
        run(function()
          local pool = pooled and http.pool() or nil
          for _, path in ipairs(paths) do
            local body, code, fields = fetch(path, { pool = pool })
            local rbody, rcode, rfields = fetch(path, { create = foreign_tcp })
            assert.are.equal("body!", body, path)
            assert.are.equal(200, code, path)
            assert.are.same(rfields, fields, path)
            assert.are.equal(rbody, body, path)
            assert.are.equal(rcode, code, path)
          end
          if pool then
            local st = pool:stats()
            assert.is_true(st.reused > 0, "the pool reused no connection")
            pool:close()
          end
        end)
      end)
    end

    it("are taken in one call when plain and buffered, line by line otherwise", function()
      run(function()
        local a, b = H.pair()
        local methods = getmetatable(a).__index  -- tcp{client}'s
        a:close()
        b:close()
        local real = methods._headers
        local took, left = 0, 0
        methods._headers = function(...)
          local f = real(...)
          if f then took = took + 1 else left = left + 1 end
          return f
        end
        local ok, err = pcall(function()
          for _, path in ipairs({ "/plain", "/case", "/lf", "/colons", "/none" }) do
            assert.are.equal(200, select(2, fetch(path)), path)
          end
          assert.are.equal(5, took)
          assert.are.equal(0, left)
          for _, path in ipairs({ "/repeated", "/folded", "/cr", "/many", "/longname",
                                  "/split" }) do
            assert.are.equal(200, select(2, fetch(path)), path)
          end
          assert.are.equal(5, took)
          assert.are.equal(6, left)
        end)
        methods._headers = real
        assert(ok, err)
      end)
    end)

    it("give the fields LuaSocket gives", function()
      run(function()
        local _, _, f = fetch("/case")
        assert.are.same({ ["content-length"] = "5", ["x-mixed"] = "spaced value  ",
          ["x-empty"] = "" }, f)
        _, _, f = fetch("/repeated")
        assert.are.equal("a=1, b=2", f["set-cookie"])
        _, _, f = fetch("/folded")
        assert.are.equal("one  two\tthree", f["x-folded"])
        _, _, f = fetch("/cr")
        assert.are.equal("ab", f["x-cr"])
        _, _, f = fetch("/colons")
        assert.are.equal("http://h:1/p", f["x-url"])
        _, _, f = fetch("/many")
        assert.are.equal("value 40", f["x-field-40"])
        assert.are.equal(41, #sorted_keys(f))
        _, _, f = fetch("/longname")
        assert.are.equal("long", f[("n"):rep(100)])
      end)
    end)
  end)

  H.modes("sock:_headers", function(run)
    it("takes a plain block that is all there, and only it", function()
      run(function()
        local a, b = H.pair()
        assert(b:send("S\r\nA: 1\r\nB-Two: 2\r\n\r\nrest\n"))
        socket.sleep(0.05)
        -- (only what a receive has read is buffered: the block comes with the first line)
        assert.is_false(a:_headers(100, 1000))
        assert.are.equal("S", a:receive())
        local f = a:_headers(100, 1000)
        assert.are.same({ a = "1", ["b-two"] = "2" }, f)
        assert.are.equal(21, (a:getstats()))
        assert.are.equal("rest", a:receive())
        a:close()
        b:close()
      end)
    end)

    it("leaves what is not all there, or not plain, or over the limits", function()
      run(function()
        local a, b = H.pair()
        assert(b:send("A: 1\r\nB: 2\r\n"))
        socket.sleep(0.05)
        a:settimeout(1)
        assert.are.equal("A: 1", a:receive())  -- the rest is buffered with it
        assert.is_false(a:_headers(100, 1000))
        assert(b:send("\r\n"))
        assert.are.equal("B: 2", a:receive())
        assert.are.equal("", a:receive())
        assert(b:send("S\r\nC: 3\r\n d\r\n\r\nX: 12345\r\n\r\n"))
        socket.sleep(0.05)
        assert.are.equal("S", a:receive())
        assert.is_false(a:_headers(100, 1000))  -- a folded line
        assert.are.equal("C: 3", a:receive())
        assert.are.equal(" d", a:receive())
        assert.are.equal("", a:receive())
        assert.is_false(a:_headers(7, 1000))    -- "X: 12345" is 8 bytes
        assert.is_false(a:_headers(100, 7))
        assert.are.same({ x = "12345" }, a:_headers(8, 8))
        a:close()
        assert.is_false(a:_headers(100, 1000))
        b:close()
      end)
    end)

    it("checks its arguments", function()
      run(function()
        local a, b = H.pair()
        assert.has_error(function() a:_headers() end)
        assert.has_error(function() a:_headers(1, "x") end)
        a:close()
        b:close()
      end)
    end)
  end)

  describe("sock:_headers [task]", function()
    it("leaves the buffer to a receive in progress", function()
      async.run(function()
        local a, b = H.pair()
        assert(b:send("S\r\nA: 1\r\n\r\n"))
        async.sleep(0.05)
        assert.are.equal("S", a:receive())
        local got
        local t = async.spawn(function() got = a:receive(100) end)  -- waits for 100 bytes
        async.sleep(0.05)
        assert.is_false(a:_headers(100, 1000))
        b:close()
        t:join()
        assert.are.equal(nil, got)
        a:close()
      end)
    end)
  end)
end)
