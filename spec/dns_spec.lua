-- dns_spec.lua: socket.dns, in both modes; in tasks lookups run on the thread pool.
local socket = require("socket")
local async = socket.async
local dns = socket.dns
local H = require("support.helpers").use(_ENV)

H.modes("socket.dns", function(run)
  it("toip resolves localhost and returns the resolved table", function()
    run(function()
      local ip, resolved = dns.toip("localhost")
      assert.are.equal("127.0.0.1", ip)
      assert.is_string(resolved.name)
      assert.is_table(resolved.alias)
      assert.are.equal("127.0.0.1", resolved.ip[1])
    end)
  end)

  it("toip of an address is the address itself", function()
    run(function()
      local ip, resolved = dns.toip("10.1.2.3")
      assert.are.equal("10.1.2.3", ip)
      assert.are.same({ name = "10.1.2.3", alias = {}, ip = { "10.1.2.3" } }, resolved)
    end)
  end)

  it("tohostname maps an address back to a name", function()
    run(function()
      local name, resolved = dns.tohostname("127.0.0.1")
      assert.is_string(name)
      assert.is_true(#name > 0)
      assert.are.equal("127.0.0.1", resolved.ip[1])
    end)
  end)

  it("reports a name that does not exist", function()
    run(function()
      local ip, err = dns.toip("no-such-host.invalid")
      assert.is_nil(ip)
      assert.are.equal("host not found", err)
      local name
      name, err = dns.tohostname("no-such-host.invalid")
      assert.is_nil(name)
      assert.are.equal("host not found", err)
      local list
      list, err = dns.getaddrinfo("no-such-host.invalid")
      assert.is_nil(list)
      assert.is_string(err)
    end)
  end)

  it("getaddrinfo lists families and numeric addresses", function()
    run(function()
      local list = assert(dns.getaddrinfo("localhost"))
      local found = false
      for _, a in ipairs(list) do
        assert.is_true(a.family == "inet" or a.family == "inet6")
        if a.addr == "127.0.0.1" then found = true end
      end
      assert.is_true(found)
      list = assert(dns.getaddrinfo("::1"))
      assert.are.same({ family = "inet6", addr = "::1" }, list[1])
    end)
  end)

  it("getnameinfo maps addresses and services to names", function()
    run(function()
      local names, service = dns.getnameinfo("127.0.0.1", "80")
      assert.is_string(names[1])
      assert.are.equal("http", service)
      names, service = dns.getnameinfo(nil, "22")
      assert.are.same({}, names)
      assert.are.equal("ssh", service)
      assert.has_error(function() dns.getnameinfo() end)
    end)
  end)

  it("gethostname names this machine", function()
    run(function()
      local name = dns.gethostname()
      assert.is_string(name)
      assert.is_true(#name > 0)
    end)
  end)

  it("raises for a missing name", function()
    run(function()
      assert.has_error(function() dns.toip() end)
      assert.has_error(function() dns.tohostname({}) end)
      assert.has_error(function() dns.getaddrinfo() end)
    end)
  end)
end)

describe("socket.dns in tasks", function()
  after_each(H.assert_clean)

  it("runs 200 lookups concurrently", function()
    local done = 0
    async.run(function()
      for i = 1, 200 do
        async.spawn(function()
          local ip = i % 2 == 0 and dns.toip("localhost") or
            assert(dns.getaddrinfo("localhost"))[1].addr
          assert.is_string(ip)
          done = done + 1
        end)
      end
    end)
    assert.are.equal(200, done)
  end)

  it("other tasks keep running while a lookup waits", function()
    local order = {}
    async.run(function()
      async.spawn(function()
        dns.tohostname("127.0.0.1")
        order[#order + 1] = "lookup"
      end)
      async.spawn(function() order[#order + 1] = "other" end)
    end)
    assert.are.same({ "other", "lookup" }, order)
  end)
end)
