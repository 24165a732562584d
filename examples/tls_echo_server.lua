-- tls_echo_server.lua: a TLS echo server, one task per client, with a certificate for localhost
-- made at start-up by the openssl command (self-signed, in a temporary directory).
--
--   lua5.4 examples/tls_echo_server.lua [port]     serve until Ctrl-C (port 0: any free port)
--   lua5.4 examples/tls_echo_server.lua --check N  serve N TLS clients started by itself, verify
--                                                  every echo, and exit
local socket = require("socket")
local tls = require("socket.tls")
local async = socket.async

local check = arg[1] == "--check" and tonumber(arg[2] or "100")
local port = check and 0 or tonumber(arg[1] or "8443")

-- A key and a self-signed certificate for localhost (and 127.0.0.1). (openssl runs without
-- the preloads a sanitizer build's tests give this program.)
local dir = io.popen("mktemp -d"):read("l")
local made = os.execute(("env -u LD_PRELOAD openssl req -x509 -newkey ec "
  .. "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/key.pem -out %s/cert.pem "
  .. "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
  .. "2>/dev/null"):format(dir, dir))
assert(made, "openssl could not make the certificate")
local cert, key = dir .. "/cert.pem", dir .. "/key.pem"

local function echo(conn)
  conn:settimeout(30)
  while true do
    local line, err = conn:receive()
    if not line then return err end
    conn:send(line .. "\n")
  end
end

-- Client `i` of the check: says three lines over a verified connection and reads them back.
local function client(i)
  local conn = assert(tls.connect("localhost", port, { cafile = cert, timeout = 10 }))
  local ok = true
  for n = 1, 3 do
    local line = ("client %d line %d"):format(i, n)
    conn:send(line .. "\n")
    ok = ok and conn:receive() == line
  end
  conn:close()
  return ok
end

async.run(function()
  local server = assert(socket.bind("127.0.0.1", port))
  port = select(2, server:getsockname())
  async.serve(server, echo, { tls = { certificate = cert, key = key }, handshake_timeout = 10 })
  if not check then
    print(("TLS echo on port %d (certificate %s); try: openssl s_client -connect "
      .. "127.0.0.1:%d -quiet"):format(port, cert, port))
    async.signal("SIGINT")
  else
    local g, good = async.group(), 0
    for i = 1, check do
      g:spawn(function() if client(i) then good = good + 1 end end)
    end
    g:wait()
    print(("%d/%d TLS clients echoed"):format(good, check))
  end
  async.shutdown(1)
end)
os.execute("rm -rf " .. dir)
