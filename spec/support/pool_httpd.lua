-- support/pool_httpd.lua: a keep-alive HTTP/1.1 server that counts its connections, for the
-- connection pool's specs (support/servers.lua starts it as its own process). It prints
-- "ports main=N once=N idle=N ctl=N" once it listens on 127.0.0.1.
--
--   main   keeps every connection open until the client closes it or asks for the close
--   once   answers the first request of a connection; a later request on it is read and the
--          connection closed without an answer (a server that dropped an idle connection just
--          as the request was sent)
--   idle   closes a connection that stays idle for 0.2 s
--   ctl    GET /stats answers "main=A once=B idle=C requests=D" (connections accepted on each
--          port, requests answered); GET /reset zeroes the counts
--
-- Paths on main, once and idle ([query arguments]):
--   /hello              "hello"
--   /id                 the number of the connection on its port
--   /close              "bye" with Connection: close, then the close
--   /http10             an HTTP/1.0 answer without keep-alive, then the close
--   /http10ka           an HTTP/1.0 answer with Connection: keep-alive
--   /chunked [n, size]  n chunks of size bytes
--   /big [size]         size bytes of "x"
--   /junk [late]        "junk" and bytes no request asked for (with late: 0.1 s later)
--   /slow [t]           "slow" after t seconds
--   /redirect           302 to /hello, with a short body
--   /post               "got N", N the body's length (Content-Length or chunked)
local socket = require("socket")
local async = socket.async

local counts = { main = 0, once = 0, idle = 0, requests = 0 }

local function read_request(c)
  local line, err = c:receive()
  if not line then return nil, err end
  local method, target = line:match("^(%S+) (%S+) HTTP/1%.%d$")
  if not method then return nil, "bad request line" end
  local req = { method = method, headers = {} }
  req.path, req.query = target:match("^([^?]*)%??(.*)$")
  req.args = {}
  for k, v in req.query:gmatch("([^&=]+)=([^&]*)") do req.args[k] = v end
  while true do
    local h = c:receive()
    if not h then return nil, "closed" end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.*)$")
    req.headers[name:lower()] = value
  end
  local h = req.headers
  local body = ""
  if h["transfer-encoding"] then
    local parts = {}
    while true do
      local size = tonumber(((c:receive() or "0"):gsub(";.*", "")), 16)
      if size == 0 then
        repeat local t = c:receive() until not t or t == ""
        break
      end
      parts[#parts + 1] = c:receive(size)
      c:receive()
    end
    body = table.concat(parts)
  elseif h["content-length"] then
    body = c:receive(tonumber(h["content-length"])) or ""
  end
  req.body = body
  return req
end

local function answer(c, body, extra, version, head)
  c:send(("HTTP/%s 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"):format(version or "1.1", #body,
    extra or "", head and "" or body))
end

-- Answers one request; returns false when the connection is to be closed.
local function handle(c, req, id)
  counts.requests = counts.requests + 1
  local path = req.path
  local close = (req.headers.connection or ""):lower():find("close") ~= nil
  if path == "/hello" then
    answer(c, "hello")
  elseif path == "/id" then
    answer(c, tostring(id))
  elseif path == "/close" then
    answer(c, "bye", "Connection: close\r\n")
    return false
  elseif path == "/http10" then
    answer(c, "old", nil, "1.0")
    return false
  elseif path == "/http10ka" then
    answer(c, "old", "Connection: keep-alive\r\n", "1.0")
  elseif path == "/chunked" then
    local n, size = tonumber(req.args.n or 3), tonumber(req.args.size or 100)
    local out = { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" }
    for _ = 1, n do out[#out + 1] = ("%x\r\n%s\r\n"):format(size, ("c"):rep(size)) end
    out[#out + 1] = "0\r\n\r\n"
    c:send(table.concat(out))
  elseif path == "/big" then
    answer(c, ("x"):rep(tonumber(req.args.size or 100000)), nil, nil, req.method == "HEAD")
  elseif path == "/junk" then
    if req.args.late then
      answer(c, "junk")
      async.sleep(0.1)
      c:send("UNASKED")
    else
      c:send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\njunkUNASKED")
    end
  elseif path == "/slow" then
    async.sleep(tonumber(req.args.t or 0.2))
    answer(c, "slow")
  elseif path == "/redirect" then
    c:send("HTTP/1.1 302 Found\r\nLocation: /hello\r\nContent-Length: 5\r\n\r\nmoved")
  elseif path == "/post" then
    answer(c, "got " .. #req.body)
  else
    c:send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
  end
  return not close
end

local function serve(kind)
  local server = assert(socket.bind("127.0.0.1", 0))
  async.serve(server, function(c)
    counts[kind] = counts[kind] + 1
    local id = counts[kind]
    local n = 0
    while true do
      c:settimeout(kind == "idle" and n > 0 and 0.2 or 30)
      local req = read_request(c)
      if not req then break end
      n = n + 1
      if kind == "once" and n > 1 then break end
      if not handle(c, req, id) then break end
    end
    c:close()
  end)
  local _, port = server:getsockname()
  return port
end

local function control()
  local server = assert(socket.bind("127.0.0.1", 0))
  async.serve(server, function(c)
    c:settimeout(10)
    local req = read_request(c)
    if req and req.path == "/reset" then
      counts.main, counts.once, counts.idle, counts.requests = 0, 0, 0, 0
    end
    answer(c, ("main=%d once=%d idle=%d requests=%d"):format(counts.main, counts.once,
      counts.idle, counts.requests), "Connection: close\r\n")
    c:close()
  end)
  local _, port = server:getsockname()
  return port
end

async.run(function()
  local main, once, idle, ctl = serve("main"), serve("once"), serve("idle"), control()
  print(("ports main=%d once=%d idle=%d ctl=%d"):format(main, once, idle, ctl))
  io.stdout:flush()
end)
