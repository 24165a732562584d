-- examples_spec.lua: every program in examples/ runs and does what it says. Each runs as its
-- own process, the way a user starts it.
local H = require("support.helpers").use(_ENV)

local function run(cmd)
  local p = assert(io.popen("cd \"${UVSOCKET_SOURCE_DIR:-.}\" && timeout 60 " .. cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local lua = H.LUA

describe("examples", function()
  local covered = {}
  local function example(name) covered[name] = true; return "examples/" .. name end

  it("echo_server.lua serves 2,000 concurrent clients in one thread", function()
    local ok, out = run(lua .. " " .. example("echo_server.lua") .. " --check 2000")
    assert.is_true(ok, out)
    assert.matches("2000/2000 clients echoed", out)
  end)

  it("echo_client.lua talks to a separate echo_server.lua process", function()
    example("echo_client.lua")
    local ok, out = run(([[sh -c '%s examples/echo_server.lua 0 > /tmp/uvs-echo.$$ & pid=$!;
      for i in 1 2 3 4 5 6 7 8 9 10; do
        port=$(sed -n "s/.*on port //p" /tmp/uvs-echo.$$); [ -n "$port" ] && break; sleep 0.2
      done
      %s examples/echo_client.lua 127.0.0.1 "$port" 500; rc=$?
      kill $pid; rm -f /tmp/uvs-echo.$$; exit $rc']]):format(lua, lua))
    assert.is_true(ok, out)
    assert.matches("500/500 clients echoed", out)
  end)

  it("daytime_client.lua gets the time from daytime_server.lua", function()
    example("daytime_server.lua")
    example("daytime_client.lua")
    local ok, out = run(([[sh -c '%s examples/daytime_server.lua 0 1 > /tmp/uvs-day.$$ & pid=$!;
      for i in 1 2 3 4 5 6 7 8 9 10; do
        port=$(sed -n "s/.*udp port //p" /tmp/uvs-day.$$); [ -n "$port" ] && break; sleep 0.2
      done
      %s examples/daytime_client.lua localhost "$port"; rc=$?
      wait $pid; rm -f /tmp/uvs-day.$$; exit $rc']]):format(lua, lua))
    assert.is_true(ok, out)
    assert.matches("%d%d:%d%d:%d%d", out)
  end)

  it("unix_echo.lua echoes over a Unix-domain socket", function()
    local ok, out = run(lua .. " " .. example("unix_echo.lua"))
    assert.is_true(ok, out)
    assert.matches("50/50 clients echoed", out)
  end)

  it("chat_server.lua relays every line to every other client", function()
    local ok, out = run(lua .. " " .. example("chat_server.lua") .. " --check 20")
    assert.is_true(ok, out)
    assert.matches("20/20 clients heard every other client", out)
  end)

  it("port_scanner.lua finds the open ports with a concurrency limit", function()
    local ok, out = run(lua .. " " .. example("port_scanner.lua") .. " --check")
    assert.is_true(ok, out)
    assert.matches("scanned %d+ ports", out)
  end)

  it("graceful_shutdown.lua finishes quick requests and cuts off slow ones on SIGTERM", function()
    local ok, out = run(lua .. " " .. example("graceful_shutdown.lua") .. " --check")
    assert.is_true(ok, out)
    assert.matches("quick request: done 2, slow request: interrupted", out)
  end)

  it("covers every file in examples/", function()
    local p = assert(io.popen("ls \"${UVSOCKET_SOURCE_DIR:-.}\"/examples"))
    for name in p:lines() do
      if name:match("%.lua$") then
        assert.is_true(covered[name] ~= nil, name .. " has no test in examples_spec.lua")
      end
    end
    p:close()
  end)
end)
