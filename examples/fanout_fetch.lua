-- fanout_fetch.lua: fetches many URLs at once with socket.http, each request in its own task,
-- all of them under one deadline: what has not arrived when it passes is reported as a timeout,
-- and the program ends on time. socket.http knows nothing of tasks or deadlines.
--
--   lua5.4 examples/fanout_fetch.lua deadline url...
--   lua5.4 examples/fanout_fetch.lua --check   against a local server with fast and slow pages
local socket = require("socket")
local http = require("socket.http")
local async = socket.async

-- Fetches every url; returns {url = {code = ..., bytes = ...} or {err = ...}} and the time taken.
local function fetch_all(urls, deadline)
  local results = {}
  local t0 = async.now()
  local g = async.group()
  async.timeout(deadline, function()
    -- the tasks spawned here inherit the deadline: their requests end with "timeout" when it
    -- passes, whatever they are doing
    for _, url in ipairs(urls) do
      g:spawn(function()
        local body, code = http.request(url)
        results[url] = body and { code = code, bytes = #body } or { err = code }
      end)
    end
    g:wait()
  end)
  g:wait()  -- they have all ended by now, or end at once: collect the last results
  return results, async.now() - t0
end

local function report(urls, results, took)
  for _, url in ipairs(urls) do
    local r = results[url]
    if r.err then
      print(("%-40s %s"):format(url, r.err))
    else
      print(("%-40s %d, %d bytes"):format(url, r.code, r.bytes))
    end
  end
  print(("%d requests in %.2f s"):format(#urls, took))
end

-- A tiny HTTP server for the self-check: /delay/N answers after N tenths of a second.
local function serve_pages(server)
  async.serve(server, function(client)
    client:settimeout(5)
    local request = client:receive()
    repeat local line = client:receive() until not line or line == ""
    local tenths = tonumber((request or ""):match("^GET /delay/(%d+)")) or 0
    async.sleep(tenths / 10)
    local body = ("waited %d ms\n"):format(tenths * 100)
    client:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body ..
      "\r\nConnection: close\r\n\r\n" .. body)
  end)
end

if arg[1] == "--check" then
  local ok = async.run(function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    serve_pages(server)
    local urls = {}
    for i = 1, 20 do urls[#urls + 1] = ("http://127.0.0.1:%d/delay/%d"):format(port, i % 4) end
    urls[#urls + 1] = ("http://127.0.0.1:%d/delay/30"):format(port)  -- 3 s: too slow
    local results, took = fetch_all(urls, 1)
    report(urls, results, took)
    async.shutdown(0)
    local fast = 0
    for i = 1, 20 do if results[urls[i]].code == 200 then fast = fast + 1 end end
    return fast == 20 and results[urls[21]].err == "timeout" and took < 2
  end)
  os.exit(ok and 0 or 1)
end

local deadline = tonumber(arg[1])
if not deadline or not arg[2] then
  io.stderr:write("usage: fanout_fetch.lua deadline url...\n")
  os.exit(2)
end
local urls = { table.unpack(arg, 2) }
async.run(function() report(urls, fetch_all(urls, deadline)) end)
