-- http_download.lua: downloads a URL with socket.http, drawing a progress bar on stderr.
--
--   lua5.4 examples/http_download.lua [url [file]]
--
-- With no URL it starts a small HTTP server as a task of the same program and downloads 8 MB
-- from it: the server task and the download task share one thread, each written as plain
-- blocking code. The body goes to `file`, or is only counted when no file is given.
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local async = socket.async

local target, outname = arg[1], arg[2]

-- A one-file HTTP server: answers every request with `size` bytes, in 64 KiB sends.
local function serve(server, size)
  while true do
    local c = server:accept()
    if not c then return end
    async.spawn(function()
      c:settimeout(10)
      repeat local line = c:receive() until not line or line == ""
      c:send(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"):format(size))
      local block = ("uvsocket "):rep(7282)  -- 65538 bytes
      local left = size
      while left > 0 do
        local n = math.min(left, #block)
        if not c:send(block, 1, n) then break end
        left = left - n
      end
      c:close()
    end)
  end
end

-- A sink that passes data on to `sink` and redraws the bar as bytes arrive.
local function progress(sink, total)
  local got, last, started = 0, -1, socket.gettime()
  return function(chunk, err)
    if chunk then
      got = got + #chunk
      local pct = total and math.floor(got * 100 / total) or nil
      if pct ~= last then
        last = pct
        local width = 40
        local done = pct and pct * width // 100 or 0
        io.stderr:write(("\r[%s%s] %s %d bytes"):format(("#"):rep(done),
          (" "):rep(width - done), pct and (pct .. "%") or "", got))
      end
    else
      local secs = socket.gettime() - started
      io.stderr:write(("\n%d bytes in %.2f s\n"):format(got, secs))
    end
    return sink(chunk, err)
  end
end

local function download(url)
  -- The size first (HEAD), so that the bar can show a percentage.
  local _, code, headers = http.request({ url = url, method = "HEAD" })
  local total = code == 200 and tonumber(headers["content-length"]) or nil
  local out = outname and assert(io.open(outname, "wb"))
  local sink = out and ltn12.sink.file(out) or ltn12.sink.null()
  local counted = 0
  local counting = function(chunk, err)
    if chunk then counted = counted + #chunk end
    return sink(chunk, err)
  end
  local ok, err = http.request({ url = url, sink = progress(counting, total) })
  if not ok then return nil, err end
  return counted, err
end

local result = async.run(function()
  local url, server = target, nil
  if not url then
    local size = 8 * 1024 * 1024
    server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    async.spawn(serve, server, size)
    url = ("http://127.0.0.1:%d/file.bin"):format(port)
  end
  local n, err = download(url)
  if server then server:close() end
  if not n then return "download failed: " .. tostring(err) end
  return ("downloaded %d bytes from %s"):format(n, url)
end)
print(result)
os.exit(result:match("^downloaded") and 0 or 1)
