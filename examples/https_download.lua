-- https_download.lua: downloads a URL over https with socket.http, drawing a progress bar on
-- stderr; the server's certificate is verified.
--
--   lua5.4 examples/https_download.lua URL [file]   a real download (system CA certificates)
--   lua5.4 examples/https_download.lua [--check]    starts a local TLS server as a task of the
--                                                   same program (certificate made at start-up
--                                                   with openssl) and downloads 8 MB from it
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local async = socket.async

local target = arg[1] ~= "--check" and arg[1] or nil
local outname = arg[2]
local SIZE = 8 * 1024 * 1024

-- A local server: a self-signed certificate for localhost, and SIZE bytes for every request.
-- (openssl runs without the preloads a sanitizer build's tests give this program.)
local function local_server()
  local dir = io.popen("mktemp -d"):read("l")
  assert(os.execute(("env -u LD_PRELOAD openssl req -x509 -newkey ec "
    .. "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/key.pem -out %s/cert.pem "
    .. "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null"):format(
    dir, dir)), "openssl failed")
  local server = assert(socket.bind("127.0.0.1", 0))
  async.serve(server, function(c)
    c:settimeout(10)
    repeat local line = c:receive() until not line or line == ""
    c:send(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"):format(SIZE))
    local block = ("uvsocket "):rep(7282)
    local left = SIZE
    while left > 0 and c:send(block, 1, math.min(left, #block)) do left = left - #block end
  end, { tls = { certificate = dir .. "/cert.pem", key = dir .. "/key.pem" } })
  return "https://localhost:" .. select(2, server:getsockname()) .. "/file", dir
end

-- A sink that passes data on to `sink` and redraws the bar as bytes arrive.
local function progress(sink, total)
  local got, last, started = 0, -1, socket.gettime()
  return function(chunk, err)
    if chunk then
      got = got + #chunk
      local pct = total and math.floor(got * 100 / total) or 0
      if pct ~= last then
        last = pct
        local done = pct * 40 // 100
        io.stderr:write(("\r[%s%s] %d%% %d bytes"):format(("#"):rep(done), (" "):rep(40 - done),
          pct, got))
      end
    else
      io.stderr:write(("\n%d bytes in %.2f s\n"):format(got, socket.gettime() - started))
    end
    return sink(chunk, err)
  end
end

async.run(function()
  local url, dir = target, nil
  local params = {}
  if not url then
    url, dir = local_server()
    params.cafile = dir .. "/cert.pem"  -- trust the certificate just made, and only it
  end
  local req = { url = url, method = "HEAD", cafile = params.cafile }
  local ok, code, headers = http.request(req)
  if not ok then error("HEAD failed: " .. tostring(code)) end
  local total = tonumber(headers["content-length"] or "")
  local file = outname and assert(io.open(outname, "wb"))
  local count = 0
  local sink = file and ltn12.sink.file(file) or function(chunk)
    if chunk then count = count + #chunk end
    return 1
  end
  ok, code = http.request({ url = url, cafile = params.cafile, sink = progress(sink, total) })
  if not ok then error("download failed: " .. tostring(code)) end
  print(("status %d, %d bytes, certificate verified"):format(code, file and total or count))
  if dir then
    async.shutdown(1)
    os.execute("rm -rf " .. dir)
  end
end)
