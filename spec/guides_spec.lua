-- guides_spec.lua: every ```lua block of docs/guides/*.md runs, as its own program, the way a
-- reader would paste it into a file and start it.
--
-- What a guide may write, and what is checked:
--   ```lua           a program: it must exit with status 0 within 30 s.
--   ```lua server    a line server on loopback: it must print "port N" on stdout (flushed); the
--                    spec then connects once, sends "hello", expects "hello" back (or the text
--                    of `expect=TEXT` in the info string), sends the server SIGTERM and expects
--                    it to exit by itself with status 0.
--   ```lua norun     not run (a fragment); kept to a minimum.
--   ```output        right after a lua block: what it prints on stdout;
--   ```stderr        right after a lua block: what it writes on stderr.
-- Output is compared after every number (and 0x address) is replaced by '#' on both sides (times,
-- ports, descriptors and task numbers vary from run to run) and every run of blanks by one space
-- (so column widths do not matter). Each program runs as `example.lua` in a scratch
-- directory of its own, so file names in tracebacks read "example.lua:LINE:".
local H = require("support.helpers").use(_ENV)
local socket = require("socket")

local root = os.getenv("UVSOCKET_SOURCE_DIR") or "."

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- The fenced blocks of a Markdown file: {lang =, info =, text =, line =}.
local function blocks_of(text)
  local list, cur, n = {}, nil, 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        list[#list + 1] = cur
        cur = nil
      else
        cur.text = cur.text .. line .. "\n"
      end
    else
      local lang, info = line:match("^```(%S*)%s*(.-)%s*$")
      if lang then cur = { lang = lang, info = info, text = "", line = n } end
    end
  end
  assert(cur == nil, "a fenced block is not closed")
  return list
end

local function normalise(s)
  s = s:gsub("0x%x+", "#"):gsub("%d+%.?%d*", "#"):gsub("[ \t]+", " "):gsub(" \n", "\n")
    :gsub("\n+$", "")
  return s
end

local function sh(cmd) return os.execute(cmd) end

local function scratch()
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh(("mkdir -p %q"):format(dir)))
  return dir
end

-- Runs a program to its end; returns its exit status, stdout and stderr.
local function run_program(dir)
  local ok, _, code = sh(("cd %q && timeout 30 %s example.lua >out 2>err"):format(dir, H.LUA))
  return ok and 0 or code, read(dir .. "/out") or "", read(dir .. "/err") or ""
end

local function wait_for(check, seconds)
  local t0 = socket.gettime()
  repeat
    local v = check()
    if v then return v end
    socket.sleep(0.05)
  until socket.gettime() - t0 > seconds
  return nil
end

-- Runs a server program: one client exchange, then SIGTERM. Returns its exit status, stdout,
-- stderr and the reply the client got. The SIGTERM goes to `timeout`, which passes it on; with
-- --foreground it passes it once. Without, it also signals its process group, so the program got
-- a second SIGTERM microseconds later, and one that came after the program had closed its signal
-- watchers (the default action back) ended it with status 143 after its stop line.
local function run_server(dir, expect)
  assert(sh(("sh -c 'cd %q; timeout --foreground 30 %s example.lua >out 2>err & echo $! >pid;"
    .. " wait $!; echo $? >rc' >/dev/null 2>&1 &"):format(dir, H.LUA)))
  local pid = wait_for(function() return (read(dir .. "/pid") or ""):match("%d+") end, 5)
  local port = wait_for(function() return (read(dir .. "/out") or ""):match("port (%d+)") end, 10)
  local reply, err
  if port then
    local c = socket.connect("127.0.0.1", tonumber(port))
    if c then
      c:settimeout(10)
      c:send("hello\n")
      reply, err = c:receive()
      c:close()
    end
  end
  if pid then sh("kill -TERM " .. pid .. " 2>/dev/null") end
  local rc = wait_for(function() return (read(dir .. "/rc") or ""):match("%d+") end, 15)
  return tonumber(rc), read(dir .. "/out") or "", read(dir .. "/err") or "",
    reply or ("no reply: " .. tostring(err or (port and "connect failed" or "no port printed"))),
    expect
end

local guides = {}
do
  local p = assert(io.popen(("ls %q/docs/guides/*.md"):format(root)))
  for path in p:lines() do guides[#guides + 1] = path end
  p:close()
end

describe("the guides' code", function()
  it("there are guides, each with code that runs, and hardly any fragment", function()
    assert.is_true(#guides >= 4, "docs/guides has " .. #guides .. " guides")
    local fragments = 0
    for _, path in ipairs(guides) do
      local runnable = 0
      for _, b in ipairs(blocks_of(read(path))) do
        if b.lang == "lua" then
          if b.info:match("norun") then fragments = fragments + 1 else runnable = runnable + 1 end
        end
      end
      assert.is_true(runnable > 0, path .. " has no runnable lua block")
    end
    assert.is_true(fragments <= 2, fragments .. " lua blocks marked norun in the guides")
  end)

  for _, path in ipairs(guides) do
    local name = path:match("docs/guides/.*$")
    local blocks = blocks_of(read(path))
    for i, b in ipairs(blocks) do
      if b.lang == "lua" and not b.info:match("norun") then
        local want = {}
        for j = i + 1, #blocks do
          local o = blocks[j]
          if o.lang ~= "output" and o.lang ~= "stderr" then break end
          want[o.lang] = o.text
        end
        local server = b.info:match("^server") ~= nil
        it(("%s:%d %s"):format(name, b.line, server and "(server)" or ""), function()
          local dir = scratch()
          write(dir .. "/example.lua", b.text)
          local rc, out, err, reply, expect
          if server then
            rc, out, err, reply, expect = run_server(dir, b.info:match("expect=(%S+)") or "hello")
          else
            rc, out, err = run_program(dir)
          end
          sh(("rm -rf %q"):format(dir))
          local report = ("exit %s\n--- stdout\n%s--- stderr\n%s"):format(rc, out, err)
          assert.are.equal(0, rc, report)
          if server then assert.are.equal(expect, reply, report) end
          if want.output then assert.are.equal(normalise(want.output), normalise(out), report) end
          if want.stderr then assert.are.equal(normalise(want.stderr), normalise(err), report) end
        end)
      end
    end
  end
end)
