-- support/servers.lua: real servers on loopback for the protocol specs.
--
-- Each server runs as its own process in its own session (so its whole process group can be
-- killed), in a fresh temporary directory holding its generated configuration, logs and
-- files. Each function returns once the server's port answers; server:stop() kills the group,
-- waits until no process of it is left and removes the directory. A server that is never
-- stopped is stopped when the Lua state closes, and a watchdog ends it within a second of this
-- process's death if the state never closes (a spec killed by its timeout).
--
--   httpd()  the uvsocket test server of support/httpd.lua
--   pool_httpd()  support/pool_httpd.lua, which counts its keep-alive connections;
--            srv.ports.main, .once, .idle, .ctl
--   nginx()  Debian's nginx serving www/ (static files), /dav/ (PUT and DELETE) and /proxy
--   ftpd()   python3-pyftpdlib (support/ftpd.py) with user "user"/"secret" and anonymous
--   smtpd()  python3-aiosmtpd (support/smtpd.py), each message saved as a file
--   TLS (certificates from support/tls.lua's certs()):
--   nginx_tls(certs, files)  nginx with ssl on one port (www/, /dav/, /post), one worker
--   s_server(certs, args, name)  `openssl s_server -www` with certificate `name`, extra args
--   tlspeer(certs)           support/tlspeer.py: slow and misbehaving peers, one port each
local socket = require("socket")

local M = {}

local LUA = os.getenv("UVSOCKET_LUA") or "lua5.4"

local function sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

-- In the sanitizer build the specs run with the sanitizer runtimes preloaded (for the
-- instrumented socket/core.so); other programs must not inherit that: `ps` hangs with them.
local PLAIN = os.getenv("LD_PRELOAD") and "env -u LD_PRELOAD " or ""

-- The source tree, as an absolute path: the servers run in their own directories.
local root = os.getenv("UVSOCKET_SOURCE_DIR") or sh("pwd"):gsub("%s+$", "")

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end
M.read, M.write = read, write

-- A free port on 127.0.0.1 (for servers that cannot report the one they bound).
local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- Whether `port` accepts connections.
local function answers(port)
  local c = socket.tcp()
  c:settimeout(0.5)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

-- The processes of session `sid` that have not exited yet (zombies do not count).
local function alive(sid)
  local out = sh(PLAIN .. "ps -o stat= -s " .. sid .. " 2>/dev/null")
  for stat in out:gmatch("%S+") do
    if not stat:match("^Z") then return true end
  end
  return false
end

local Server = {}
Server.__index = Server

-- Kills the server's process group (TERM, then KILL after 3 s), waits for it, and removes
-- its directory. Safe to call twice.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  if self.pid then
    -- (a negative pid names the process group; sh's kill takes no "--")
    os.execute("kill -TERM -" .. self.pid .. " 2>/dev/null")
    local t0 = socket.gettime()
    while alive(self.pid) and socket.gettime() - t0 < 3 do socket.sleep(0.05) end
    if alive(self.pid) then
      os.execute("kill -KILL -" .. self.pid .. " 2>/dev/null")
      t0 = socket.gettime()
      while alive(self.pid) and socket.gettime() - t0 < 5 do socket.sleep(0.05) end
      assert(not alive(self.pid), "server process group " .. self.pid .. " survived SIGKILL")
    end
  end
  if self.dir and not os.getenv("UVSOCKET_KEEP_SERVERS") then
    os.execute("rm -rf " .. quote(self.dir))
  end
end

function Server:log()
  return read(self.dir .. "/out.log") or ""
end

-- Starts `argv` (a shell command line) in directory `dir`, in a new session; returns the
-- server object (its pid is also the id of its process group and session).
local OWNER = sh("echo $PPID"):match("%d+")   -- this Lua process

local function spawn(dir, command)
  -- A watchdog in the server's process group ends the group when this process is gone, even
  -- if it was killed before it could stop its servers (a spec that ran out of time).
  write(dir .. "/run.sh", "echo $$ > " .. quote(dir .. "/pid") .. "\n"
    .. "( while kill -0 " .. OWNER .. " 2>/dev/null; do sleep 1; done; rm -rf "
    .. quote(dir) .. "; kill -TERM -$$ ) &\n"
    .. "cd " .. quote(dir) .. "\nexec " .. command .. "\n")
  os.execute("setsid sh " .. quote(dir .. "/run.sh") .. " > " .. quote(dir .. "/out.log")
    .. " 2>&1 < /dev/null &")
  local srv = setmetatable({ dir = dir }, Server)
  -- Stopped at the latest when the state closes, so that no process outlives the specs.
  srv.guard = setmetatable({}, { __gc = function() srv:stop() end })
  local t0 = socket.gettime()
  while not srv.pid and socket.gettime() - t0 < 10 do
    srv.pid = tonumber(read(dir .. "/pid"))
    if not srv.pid then socket.sleep(0.02) end
  end
  assert(srv.pid, "the server process did not start")
  return srv
end

-- Waits until the server's port answers (or, with `from_log`, until it printed "port N").
local function wait_ready(srv, from_log)
  local t0 = socket.gettime()
  while socket.gettime() - t0 < 15 do
    if from_log and not srv.port then
      srv.port = tonumber(srv:log():match("port (%d+)"))
    end
    if srv.port and answers(srv.port) then return srv end
    if not alive(srv.pid) then break end
    socket.sleep(0.05)
  end
  local log = srv:log()
  srv:stop()
  error("server did not start:\n" .. log, 3)
end

local function tempdir(tag)
  local dir = sh("mktemp -d /tmp/uvs-" .. tag .. "-XXXXXX"):gsub("%s+$", "")
  assert(dir ~= "", "mktemp failed")
  return dir
end

-- The Python 3 that has Debian's packages (python3-pyftpdlib, python3-aiosmtpd), even when a
-- different python3 comes first on PATH.
local function python_with(module)
  for _, py in ipairs({ "/usr/bin/python3", "python3" }) do
    if os.execute(py .. " -c 'import " .. module .. "' >/dev/null 2>&1") then return py end
  end
  error("python3 module '" .. module .. "' is missing (scripts/setup.sh installs it)", 3)
end

local function which(prog, paths)
  for _, p in ipairs(paths) do
    if os.execute("test -x " .. p) then return p end
  end
  local found = sh("command -v " .. prog .. " 2>/dev/null"):gsub("%s+$", "")
  if found ~= "" then return found end
  error(prog .. " is missing (scripts/setup.sh installs it)", 3)
end

function M.httpd()
  local dir = tempdir("httpd")
  local srv = spawn(dir, LUA .. " " .. quote(root .. "/spec/support/httpd.lua"))
  return wait_ready(srv, true)
end

-- Waits for a server that prints "ports name=N name=N ..." when it is ready; returns it with
-- srv.ports = {name = N}. Raises with its log if it does not start (called as a tail call, so
-- level 2 is the spec that asked for the server).
local function with_ports(srv, what)
  local t0 = socket.gettime()
  while socket.gettime() - t0 < 15 do
    local line = srv:log():match("ports ([^\n]+)")
    if line then
      srv.ports = {}
      for name, port in line:gmatch("(%w+)=(%d+)") do srv.ports[name] = tonumber(port) end
      return srv
    end
    if not alive(srv.pid) then break end
    socket.sleep(0.05)
  end
  local log = srv:log()
  srv:stop()
  error(what .. " did not start:\n" .. log, 2)
end

function M.pool_httpd()
  local dir = tempdir("pool-httpd")
  local srv = spawn(dir, LUA .. " " .. quote(root .. "/spec/support/pool_httpd.lua"))
  return with_ports(srv, "pool_httpd")
end

-- nginx with `files` ({name = contents}) in its document root.
function M.nginx(files)
  local nginx = which("nginx", { "/usr/sbin/nginx" })
  local dir = tempdir("nginx")
  os.execute("mkdir -p " .. quote(dir .. "/www/dav") .. " " .. quote(dir .. "/tmp"))
  for name, text in pairs(files or {}) do write(dir .. "/www/" .. name, text) end
  local port = free_port()
  local user = sh("id -u"):match("^0") and "user root root;\n" or ""
  local conf = ([[
%sdaemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %s/tmp/body;
  proxy_temp_path %s/tmp/proxy;
  fastcgi_temp_path %s/tmp/fastcgi;
  uwsgi_temp_path %s/tmp/uwsgi;
  scgi_temp_path %s/tmp/scgi;
  types { text/html html; text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:%d;
    root %s/www;
    location /dav/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
      client_max_body_size 64m;
    }
    location /moved { return 301 /index.html; }
    location /relative { return 302 index.html; }
  }
  # A forward proxy: requests in absolute form go to the host they name.
  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://$http_host$request_uri;
      proxy_set_header X-Via-Proxy "nginx";
      proxy_set_header X-Proxy-Auth $http_proxy_authorization;
    }
  }
}
]])
  local proxy_port = free_port()
  conf = conf:format(user, dir, dir, dir, dir, dir, dir, dir, port, dir, proxy_port)
  write(dir .. "/nginx.conf", conf)
  local srv = spawn(dir, PLAIN .. nginx .. " -p " .. quote(dir)
    .. " -e " .. quote(dir .. "/error.log") .. " -c " .. quote(dir .. "/nginx.conf"))
  srv.port, srv.proxy_port, srv.www = port, proxy_port, dir .. "/www"
  wait_ready(srv)
  while not answers(proxy_port) do socket.sleep(0.02) end
  return srv
end

function M.ftpd()
  local py = python_with("pyftpdlib")
  local dir = tempdir("ftpd")
  os.execute("mkdir -p " .. quote(dir .. "/home/pub"))
  local srv = spawn(dir, PLAIN .. py .. " " .. quote(root .. "/spec/support/ftpd.py") .. " "
    .. quote(dir .. "/home"))
  srv.home, srv.user, srv.password = dir .. "/home", "user", "secret"
  return wait_ready(srv, true)
end

-- With `certs` (support/tls.lua) the server offers STARTTLS and AUTH only after it.
function M.smtpd(certs)
  local py = python_with("aiosmtpd")
  local dir = tempdir("smtpd")
  os.execute("mkdir -p " .. quote(dir .. "/mail"))
  local srv = spawn(dir, PLAIN .. py .. " " .. quote(root .. "/spec/support/smtpd.py") .. " "
    .. quote(dir .. "/mail") .. (certs and " " .. quote(certs.dir) or ""))
  srv.maildir = dir .. "/mail"
  return wait_ready(srv, true)
end

-- nginx with TLS (certificate and key of `certs`, see support/tls.lua) and `files` in its
-- document root: GET of files, PUT and DELETE under /dav/, POST to /post (answers "posted N",
-- N the request's content length), /hello for load tests.
function M.nginx_tls(certs, files)
  local nginx = which("nginx", { "/usr/sbin/nginx" })
  local dir = tempdir("nginx-tls")
  os.execute("mkdir -p " .. quote(dir .. "/www/dav") .. " " .. quote(dir .. "/tmp"))
  for name, text in pairs(files or {}) do write(dir .. "/www/" .. name, text) end
  local port = free_port()
  local user = sh("id -u"):match("^0") and "user root root;\n" or ""
  local conf = ([[
%sdaemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %s/tmp/body;
  proxy_temp_path %s/tmp/proxy;
  fastcgi_temp_path %s/tmp/fastcgi;
  uwsgi_temp_path %s/tmp/uwsgi;
  scgi_temp_path %s/tmp/scgi;
  types { text/html html; text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    root %s/www;
    location /dav/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
      client_max_body_size 64m;
    }
    location = /post { return 200 "posted $content_length\n"; }
    location = /hello { return 200 "hello\n"; }
    location /moved { return 301 /index.html; }
  }
}
]]):format(user, dir, dir, dir, dir, dir, dir, dir, port, certs.dir .. "/server.pem",
    certs.dir .. "/server.key", dir)
  write(dir .. "/nginx.conf", conf)
  local srv = spawn(dir, PLAIN .. nginx .. " -p " .. quote(dir)
    .. " -e " .. quote(dir .. "/error.log") .. " -c " .. quote(dir .. "/nginx.conf"))
  srv.port, srv.www = port, dir .. "/www"
  return wait_ready(srv)
end

-- `openssl s_server -www` (a status page for any GET) with certificate `name` of `certs`
-- (default "server") and the extra arguments `args` (a string).
function M.s_server(certs, args, name)
  local openssl = which("openssl", { "/usr/bin/openssl" })
  local dir = tempdir("s_server")
  local port = free_port()
  local srv = spawn(dir, PLAIN .. openssl .. " s_server -quiet -www -accept 127.0.0.1:" .. port
    .. " -cert " .. quote(certs.dir .. "/" .. (name or "server") .. ".pem") .. " -key "
    .. quote(certs.dir .. "/" .. (name or "server") .. ".key") .. " " .. (args or ""))
  srv.port = port
  return wait_ready(srv)
end

-- support/tlspeer.py; srv.ports.slow, .stall, .reset, .garbage, .truncate, .connect, .echo.
function M.tlspeer(certs)
  local dir = tempdir("tlspeer")
  local srv = spawn(dir, PLAIN .. "/usr/bin/python3 " .. quote(root .. "/spec/support/tlspeer.py")
    .. " " .. quote(certs.dir))
  return with_ports(srv, "tlspeer")
end

return M
