-- bench/pool_bench.lua: socket.http's keep-alive pool against nginx (one worker, a "hello"
-- location), two scenarios:
--
--   sequential  N GETs one after another in a plain script, through a pool (http.setpool) and
--               with a connection per request (LuaSocket's way); the ratio of their req/s
--   tasks       100 tasks sharing one pool of 100 connections for D seconds, against wrk with
--               100 connections (-t1) for D seconds on the same nginx; the ratio of req/s
--
-- Where taskset is there and the machine has two CPUs or more, nginx runs on CPU 0; the
-- sequential client runs on CPU 0 too (a request and its answer then cost two context switches,
-- not two wake-ups of another CPU, which in a virtual machine can cost more than the request);
-- the tasks and wrk run where the system puts them.
--
--   lua5.4 bench/pool_bench.lua [--quick] [--requests N] [--duration D] [--out FILE]
--
-- bench/run runs it (after `. scripts/env.sh build-bench`) and puts FILE, a Markdown section,
-- into docs/performance.md. It prints one line per measurement and the ratios.
local socket = require("socket")
local http = require("socket.http")
local async = socket.async

local requests, duration, out = 10000, 5, nil
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--quick" then
    requests, duration = 2000, 2
  elseif a == "--requests" then
    i = i + 1
    requests = assert(tonumber(arg[i]), "--requests N")
  elseif a == "--duration" then
    i = i + 1
    duration = assert(tonumber(arg[i]), "--duration D")
  elseif a == "--out" then
    i = i + 1
    out = assert(arg[i], "--out FILE")
  else
    io.stderr:write("usage: pool_bench.lua [--quick] [--requests N] [--duration D] [--out FILE]\n")
    os.exit(2)
  end
  i = i + 1
end

local function sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local text = p:read("a")
  p:close()
  return text
end

local function nproc()
  return tonumber(sh("nproc 2>/dev/null")) or 1
end
local PIN = nproc() >= 2 and os.execute("command -v taskset >/dev/null 2>&1")

-- Moves this process to `cpu` (a taskset CPU list; when pinning).
local function pin_self(cpu)
  if not PIN then return end
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  os.execute(("taskset -pc %s %d >/dev/null"):format(cpu, pid))
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- nginx in a directory of its own; returns its pid, port and directory.
local function start_nginx()
  local dir = sh("mktemp -d /tmp/uvs-poolbench-XXXXXX"):gsub("%s+$", "")
  local port = free_port()
  local user = sh("id -u"):match("^0") and "user root root;\n" or ""
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(([[
%sdaemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  server {
    listen 127.0.0.1:%d;
    location = /hello { return 200 "hello\n"; }
  }
}
]]):format(user, dir, dir, dir, dir, dir, dir, dir, port))
  f:close()
  -- (taskset execs nginx: $! is nginx's pid either way)
  local pid = tonumber(sh((PIN and "taskset -c 0 " or "") .. "nginx -p " .. dir .. " -e " .. dir
    .. "/error.log -c " .. dir .. "/nginx.conf > " .. dir .. "/out.log 2>&1 & echo $!"))
  for _ = 1, 100 do
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return pid, port, dir end
    socket.sleep(0.05)
  end
  error("nginx did not start: " .. sh("cat " .. dir .. "/error.log " .. dir .. "/out.log"))
end

local pid, port, dir = start_nginx()
local URL = ("http://127.0.0.1:%d/hello"):format(port)
local lines, results = {}, {}

local function say(fmt, ...)
  local line = fmt:format(...)
  print(line)
  io.stdout:flush()
  lines[#lines + 1] = line
end

-- n sequential GETs in this (plain) script; req/s and the client's CPU microseconds per
-- request (a ping-pong on loopback also waits for two wake-ups per request, which depend on
-- the machine more than on the client).
local function sequential(n)
  for _ = 1, 100 do assert(http.request(URL)) end   -- warm-up
  local t0, c0 = socket.gettime(), os.clock()
  for _ = 1, n do
    local body, code = http.request(URL)
    assert(body == "hello\n" and code == 200, code)
  end
  return n / (socket.gettime() - t0), (os.clock() - c0) / n * 1e6
end

local ok, err = pcall(function()
  pin_self("0")
  local p = http.pool()
  http.setpool(p)
  results.pooled, results.pooled_cpu = sequential(requests)
  local s = p:stats()
  http.setpool(nil)
  p:close()
  say("sequential, pooled:                 %8.0f req/s, %5.1f us CPU each (%d requests, %d "
    .. "connections)", results.pooled, results.pooled_cpu, requests, s.created)
  results.unpooled, results.unpooled_cpu = sequential(requests)
  say("sequential, a connection each:      %8.0f req/s, %5.1f us CPU each (%d requests)",
    results.unpooled, results.unpooled_cpu, requests)

  pin_self("0-" .. (nproc() - 1))
  results.tasks = async.run(function()
    local pool = http.pool({ max_per_key = 100, max_total = 100, max_idle = 100 })
    local count, failed = 0, 0
    local g = async.group()
    local stop = async.now() + 0.5
    local function worker()
      while async.now() < stop do
        local body = http.request({ url = URL, pool = pool })
        if body then count = count + 1 else failed = failed + 1 end
      end
    end
    for _ = 1, 100 do g:spawn(worker) end  -- warm-up: the connections are made
    g:wait()
    count, failed = 0, 0
    local t0 = async.now()
    stop = t0 + duration
    for _ = 1, 100 do g:spawn(worker) end
    g:wait()
    local took = async.now() - t0
    local st = pool:stats()
    pool:close()
    assert(failed == 0, failed .. " requests failed")
    say("100 tasks, one pool:                %8.0f req/s (%.1f s, %d connections)",
      count / took, took, st.created)
    return count / took
  end)

  local w = sh(("wrk -t1 -c100 -d%ds --timeout 5s %s 2>&1"):format(math.ceil(duration), URL))
  results.wrk = tonumber(w:match("Requests/sec:%s*([%d.]+)"))
  assert(results.wrk, "wrk failed: " .. w)
  say("wrk -t1 -c100:                      %8.0f req/s (%d s)", results.wrk, math.ceil(duration))
  say("pooled / a connection each: %.2fx req/s (goal >= 3x), %.2fx less client CPU",
    results.pooled / results.unpooled, results.unpooled_cpu / results.pooled_cpu)
  say("100 tasks / wrk: %.2fx (goal >= 0.8x)", results.tasks / results.wrk)
end)

os.execute("kill " .. pid .. " 2>/dev/null")
for _ = 1, 60 do
  if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
  socket.sleep(0.05)
end
os.execute("rm -rf " .. dir)
if not ok then
  io.stderr:write("pool_bench: " .. tostring(err) .. "\n")
  os.exit(1)
end

if out then
  local f = assert(io.open(out, "w"))
  f:write("### socket.http keep-alive pool against nginx (bench/pool_bench.lua)\n\n",
    PIN and "nginx on CPU 0; the sequential client on CPU 0 too, the tasks and wrk anywhere.\n\n"
      or "Not pinned to CPUs (no taskset, or one CPU).\n\n",
    "| scenario | req/s | client CPU per request |\n|---|---|---|\n",
    ("| %d sequential GETs, pooled | %.0f | %.1f us |\n"):format(requests, results.pooled,
      results.pooled_cpu),
    ("| %d sequential GETs, a connection each | %.0f | %.1f us |\n"):format(requests,
      results.unpooled, results.unpooled_cpu),
    ("| 100 tasks sharing one pool, %g s | %.0f | |\n"):format(duration, results.tasks),
    ("| wrk -t1 -c100, %d s | %.0f | |\n"):format(math.ceil(duration), results.wrk),
    "\n", ("Pooled against a connection per request: **%.2fx** the requests per second "
    .. "(goal 3x), **%.2fx** less client CPU per request. 100 tasks against wrk: **%.2fx** "
    .. "(goal 0.8x).\n"):format(results.pooled / results.unpooled,
    results.unpooled_cpu / results.pooled_cpu, results.tasks / results.wrk))
  f:close()
end
