-- ftp_transfer.lua: uploads files to an FTP server and downloads them back with socket.ftp,
-- first one at a time in plain blocking code (downloads in active mode), then three at once as
-- tasks (all in passive mode: pyftpdlib 1.5.7, Debian 12's, can stall a transfer when active-mode
-- sessions end while others run; spec/support/ftpd.py describes the bug).
--
--   lua5.4 examples/ftp_transfer.lua [ftp://user:password@host:port/directory]
--
-- With no URL it starts a local server (python3 -m pyftpdlib, user "demo", password "demo")
-- on a free loopback port, in a temporary directory, and stops it at the end.
local socket = require("socket")
local ftp = require("socket.ftp")
local ltn12 = require("ltn12")
local async = socket.async

local base = arg[1]
local server_pid, server_dir

local function start_server()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  server_dir = io.popen("mktemp -d"):read("l")
  local python = os.execute("/usr/bin/python3 -c 'import pyftpdlib' 2>/dev/null")
    and "/usr/bin/python3" or "python3"
  local p = assert(io.popen(("%s -m pyftpdlib -i 127.0.0.1 -p %d -w -d %s -u demo -P demo"
    .. " >/dev/null 2>&1 & echo $!"):format(python, port, server_dir)))
  server_pid = tonumber(p:read("l"))
  p:close()
  for _ = 1, 100 do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      return ("ftp://demo:demo@127.0.0.1:%d"):format(port)
    end
    socket.sleep(0.05)
  end
  error("the local FTP server did not start")
end

-- `size` bytes that differ from file to file.
local function contents(size, seed)
  local block = {}
  for i = 1, 4096 do block[i] = string.char((i * seed + i // 7) % 256) end
  block = table.concat(block)
  return block:rep(size // #block + 1):sub(1, size)
end

-- Uploads `data` as `name` (passive mode), downloads it back (active mode unless `passive`),
-- compares.
local function round_trip(name, data, passive)
  local t0 = socket.gettime()
  local sent, err = ftp.put({ url = base .. "/" .. name, type = "i",
    source = ltn12.source.string(data) })
  if not sent then return false, "upload: " .. err end
  local parts = {}
  local ok
  ok, err = ftp.get({ url = base .. "/" .. name, type = "i", passive = passive or false,
    sink = ltn12.sink.table(parts) })
  if not ok then return false, "download: " .. err end
  local same = table.concat(parts) == data
  print(("%-12s %8d bytes up and down in %.2f s: %s"):format(name, #data,
    socket.gettime() - t0, same and "identical" or "DIFFERENT"))
  return same
end

if not base then base = start_server() end
local all_ok = true

-- One at a time, blocking.
for i = 1, 2 do
  local ok, err = round_trip("blocking-" .. i .. ".bin", contents(3 * 1024 * 1024, i))
  if not ok then print(err) end
  all_ok = all_ok and ok
end

-- Three at once, each in its own task.
async.run(function()
  local done = 0
  for i = 1, 3 do
    async.spawn(function()
      local ok, err = round_trip("task-" .. i .. ".bin", contents(3 * 1024 * 1024, 10 + i),
        true)
      if not ok then print(err) end
      all_ok = all_ok and ok
      done = done + 1
    end)
  end
  while done < 3 do async.sleep(0.01) end
end)

if server_pid then
  os.execute("kill " .. server_pid)
  os.execute("rm -rf " .. server_dir)
end
print(all_ok and "all transfers identical" or "some transfers failed")
os.exit(all_ok and 0 or 1)
