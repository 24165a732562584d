-- netns_spec.lua: peers that vanish and lookups that are slow or never answered
-- (docs/reliability.md, "Fault injection"). Loopback cannot lose a packet, so each case runs in
-- a child process in a private network namespace (`unshare -rnm`, spec/support/netns.sh): there,
-- taking the loopback down makes the peer vanish without a reset (a blackhole), and the resolver
-- asks spec/support/slowdns.py on the namespace's own 127.0.0.1. Nothing reaches a real network:
-- the namespace has no other interface. Each case runs in both modes; in a task another task
-- ticks every 50 ms meanwhile, and must go on ticking.
local H = require("support.helpers").use(_ENV)

local LUA = os.getenv("UVSOCKET_LUA") or "lua5.4"

local function can_unshare()
  local ok = os.execute("unshare -rnm sh -c 'ip link set lo up' >/dev/null 2>&1")
  return ok == true
end
local AVAILABLE = can_unshare()

local function available()
  if not AVAILABLE then pending("needs `unshare -rnm` and `ip` (a private network namespace)") end
  return AVAILABLE
end

local function probe(case, mode, dns)
  local p = assert(io.popen(("timeout 60 unshare -rnm sh spec/support/netns.sh %s %s "
    .. "spec/support/netns_probe.lua %s %s 2>&1"):format(dns and "--dns" or "", LUA, case, mode)))
  local out = p:read("a")
  p:close()
  local line = out:match("return {.*}")
  assert(line, "the probe printed no result:\n" .. out)
  return assert(load(line))(), out
end

-- The ticks a task counted while the case took `t` seconds: most of them, since none of the
-- waits may hold the loop.
local function assert_ticked(r, mode, t)
  if mode == "task" then
    assert.is_true(r.ticks >= math.floor(t / 0.05 * 0.6),
      ("%d ticks in %.2f s"):format(r.ticks, t))
  end
end

for _, mode in ipairs({ "blocking", "task" }) do
  describe("a peer that vanishes [" .. mode .. "]", function()
    it("connect: the socket's timeout ends a connect whose SYN is never answered", function()
      if not available() then return end
      local r = probe("connect", mode)
      assert.is_nil(r.r)
      assert.are.equal("timeout", r.err)
      assert.is_true(r.t >= 0.95 and r.t < 2, tostring(r.t))
      assert_ticked(r, mode, r.t)
    end)

    it("keep-alive probes end a receive from an established peer that vanished", function()
      if not available() then return end
      local r = probe("keepalive", mode)
      -- ETIMEDOUT from the kernel, which LuaSocket also reports as "timeout"; the connection
      -- is dead afterwards.
      assert.is_nil(r.r)
      assert.are.equal("timeout", r.err)
      assert.are.equal("", r.partial)
      assert.is_true(r.t >= 2 and r.t < 10, tostring(r.t))  -- 20 s was the socket's timeout
      assert.is_nil(r.send)
      assert.are.equal("closed", r.send_err)
      assert_ticked(r, mode, r.t)
    end)

    it("send: the timeout ends a send the vanished peer never acknowledges, with its count",
      function()
        if not available() then return end
        local r = probe("send", mode)
        assert.is_nil(r.r)
        assert.are.equal("timeout", r.err)
        assert.is_true(r.sent > 0 and r.sent < 16 * 1024 * 1024, tostring(r.sent))
        assert.is_true(r.t >= 0.95 and r.t < 2, tostring(r.t))
        assert_ticked(r, mode, r.t)
      end)
  end)

  describe("lookups that are slow or never answered [" .. mode .. "]", function()
    it("a late answer, no answer, a name that does not exist, a connect through a late answer",
      function()
        if not available() then return end
        local r = probe("dns", mode, true)
        -- Answered after 0.5 s.
        assert.are.equal("127.0.0.1", r.slow[1])
        assert.is_true(r.slow_t >= 0.45 and r.slow_t < 1, tostring(r.slow_t))
        assert.are.equal("127.0.0.1", r.addr[1])
        assert.is_true(r.addr_t >= 0.45 and r.addr_t < 1, tostring(r.addr_t))
        -- Never answered: the resolver's own timeout (1 s in the namespace's resolv.conf)
        -- ends it, with LuaSocket's message for h_errno TRY_AGAIN.
        assert.is_nil(r.silent[1])
        assert.are.equal("Host name lookup failure", r.silent[2])
        assert.is_true(r.silent_t >= 0.9 and r.silent_t < 3, tostring(r.silent_t))
        assert.is_nil(r.missing[1])
        assert.are.equal("host not found", r.missing[2])
        assert.is_true(r.missing_t < 0.5, tostring(r.missing_t))
        -- As in LuaSocket, the socket's timeout (0.2 s) does not bound the lookup of connect.
        assert.are.equal("1.0", r.connect[1])
        assert.is_true(r.connect_t >= 0.45 and r.connect_t < 1, tostring(r.connect_t))
        assert_ticked(r, mode, r.slow_t + r.silent_t + r.addr_t + r.connect_t)
      end)

    if mode == "task" then
      it("a task waiting in a lookup that is never answered is cancelled at once", function()
        if not available() then return end
        local r = probe("dns_cancel", mode, true)
        assert.is_nil(r.ok)
        assert.are.equal("cancelled", r.r)
        assert.is_true(r.t < 0.5, tostring(r.t))
      end)
    end
  end)
end

-- The probes are other processes; nothing of this one's runtime is left behind.
after_each(function() H.assert_clean() end)
