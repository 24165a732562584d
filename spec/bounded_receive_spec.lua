-- bounded_receive_spec.lua: receive(pattern, prefix, maxsize) and receiveany(max), on TCP and
-- Unix-domain streams, in blocking mode and in tasks.
local socket = require("socket")
local unix = require("socket.unix")
local H = require("support.helpers").use(_ENV)

local function unix_pair()
  local path = os.tmpname()
  os.remove(path)
  local srv = assert(unix.stream())
  assert(srv:bind(path))
  assert(srv:listen())
  local c = assert(unix.stream())
  assert(c:connect(path))
  local s = assert(srv:accept())
  srv:close()
  os.remove(path)
  return c, s
end

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

for _, kind in ipairs({ "tcp", "unix" }) do
  local pair = kind == "tcp" and H.pair or unix_pair
  H.modes("bounded receive over " .. kind, function(run)
    it("a line within maxsize is returned; a longer one is oversized, the rest kept", function()
      run(function()
        local c, s = pair()
        c:send("12345\n123456\nok\n")
        assert.are.same({ "12345", nil, nil }, { s:receive("*l", nil, 5) })
        assert.are.same({ nil, "oversized", "12345" }, { s:receive("*l", nil, 5) })
        assert.are.same({ "6", nil, nil }, { s:receive("*l", nil, 5) }, "nothing lost")
        assert.are.same({ "ok", nil, nil }, { s:receive("*l", nil, 5) })
        c:close(); s:close()
      end)
    end)

    it("maxsize counts the prefix", function()
      run(function()
        local c, s = pair()
        c:send("abcdef\n")
        assert.are.same({ nil, "oversized", "p:abc" }, { s:receive("*l", "p:", 5) })
        assert.are.same({ "def", nil, nil }, { s:receive("*l", nil, 5) })
        c:close(); s:close()
      end)
    end)

    it("*a: completion within the limit wins, past it is oversized", function()
      run(function()
        local c, s = pair()
        c:send("abcd")
        c:close()
        assert.are.same({ "abcd", nil, nil }, { s:receive("*a", nil, 4) })
        s:close()
        c, s = pair()
        c:send("abcdefgh")
        c:close()
        assert.are.same({ nil, "oversized", "abcd" }, { s:receive("*a", nil, 4) })
        assert.are.same({ "efgh", nil, nil }, { s:receive("*a", nil, 4) })
        s:close()
      end)
    end)

    it("a timeout inside the limit gives the partial, and the call can be retried", function()
      run(function()
        local c, s = pair()
        c:send("abc")
        s:settimeout(0.05)
        local r, err, part = s:receive("*l", nil, 10)
        assert.are.same({ nil, "timeout", "abc" }, { r, err, part })
        c:send("de\n")
        assert.are.same({ "abcde", nil, nil }, { s:receive("*l", part, 10) })
        c:close(); s:close()
      end)
    end)

    it("checks maxsize", function()
      run(function()
        local c, s = pair()
        assert.has_error(function() s:receive("*l", nil, 0) end)
        assert.has_error(function() s:receive("*l", "abc", 3) end)
        assert.has_error(function() s:receive(10, nil, 5) end)
        assert.has_error(function() s:receive("*l", nil, "x") end)
        c:close(); s:close()
      end)
    end)

    it("receiveany returns what is there, at most max, as soon as something is", function()
      run(function()
        local c, s = pair()
        c:send("0123456789")
        assert.are.equal("0123", s:receiveany(4))
        assert.are.equal("456789", s:receiveany(100))
        s:settimeout(0.05)
        assert.are.same({ nil, "timeout", "" }, { s:receiveany() })
        c:close()
        s:settimeout(1)
        assert.are.same({ nil, "closed", "" }, { s:receiveany() })
        assert.has_error(function() s:receiveany(0) end)
        s:close()
      end)
    end)
  end)
end

describe("bounded receive against a flood", function()
  it("a 500 MB line with a maxsize keeps the reader's memory flat", function()
    local p, port = H.listen_peer([[
local chunk = string.rep("x", 1024 * 1024)
for _ = 1, 500 do assert(c:send(chunk)) end
]], 60)
    local c = assert(socket.connect("127.0.0.1", port))
    local before = rss_kb()
    local oversized, bytes = 0, 0
    while true do
      local line, err, part = c:receive("*l", nil, 65536)
      assert.is_nil(line)
      if err == "closed" then
        bytes = bytes + #part
        break
      end
      assert.are.equal("oversized", err)
      oversized = oversized + 1
      bytes = bytes + #part
    end
    local after = rss_kb()
    c:close()
    p:close()
    assert.are.equal(500 * 1024 * 1024, bytes, "every byte was read")
    assert.is_true(oversized >= 7999, "oversized " .. oversized .. " times")
    -- The sanitizer build keeps freed memory in quarantine: RSS says nothing there.
    if not (os.getenv("LD_PRELOAD") or ""):find("asan") then
      assert.is_true(after - before < 20 * 1024, ("RSS grew by %d KB"):format(after - before))
    end
  end)
end)
