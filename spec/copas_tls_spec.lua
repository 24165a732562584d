-- copas_tls_spec.lua: the TLS paths of the copas module (lua/async/copas.lua): copas.http over
-- https with sslparams, copas.wrap and copas.handler with TLS parameters (LuaSec when it is
-- installed, socket.tls otherwise), many https requests from copas threads at once.
local socket = require("socket")
local copas = require("copas")
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")
local T = require("support.tls")

local certs, nginx, peer

describe("copas over TLS", function()
  setup(function()
    certs = T.certs()
    nginx = S.nginx_tls(certs, { ["index.html"] = "<h1>copas</h1>\n" })
    peer = S.tlspeer(certs)
  end)
  teardown(function()
    nginx:stop()
    peer:stop()
    H.cleanup()
  end)
  after_each(function() H.assert_clean() end)

  local function url(path) return "https://localhost:" .. nginx.port .. path end

  it("copas.http honours sslparams: verify = \"peer\" without a CA fails", function()
    local results = {}
    copas.loop(function()
      local body, err = copas.http.request({ url = url("/index.html"),
        sslparams = { mode = "client", protocol = "any", verify = "peer" },
        sink = require("ltn12").sink.table({}) })
      results.unverified = { body, err }
      local t = {}
      local ok, code = copas.http.request({ url = url("/index.html"),
        sink = require("ltn12").sink.table(t),
        sslparams = { wrap = { mode = "client", protocol = "any", verify = "peer",
          cafile = certs.ca }, sni = { names = "localhost" } } })
      results.verified = { ok, code, table.concat(t) }
    end)
    assert.are.same({ nil, "certificate verify failed: unable to get local issuer certificate" },
      results.unverified)
    assert.are.same({ 1, 200, "<h1>copas</h1>\n" }, results.verified)
  end)

  it("runs https requests of many copas threads at once", function()
    local ok = 0
    local t0 = socket.gettime()
    copas.loop(function()
      for _ = 1, 50 do
        copas.addthread(function()
          local t = {}
          local r, code = copas.http.request({ url = "https://localhost:" .. peer.ports.slow .. "/",
            sslparams = { verify = "peer", cafile = certs.ca },
            sink = require("ltn12").sink.table(t) })
          if r == 1 and code == 200 and table.concat(t) == "hello" then ok = ok + 1 end
        end)
      end
    end)
    assert.are.equal(50, ok)
    -- one after the other they would take 25 s
    assert.is_true(socket.gettime() - t0 < 10)
  end)

  it("serves TLS with copas.handler and connects with copas.wrap", function()
    local server_params = { mode = "server", protocol = "any",
      certificate = certs.server.certificate, key = certs.server.key }
    local client_params = { wrap = { mode = "client", protocol = "any", verify = "peer",
      cafile = certs.ca }, sni = { names = "localhost" } }
    local got, served
    copas.loop(function()
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      copas.addserver(srv, copas.handler(function(c)
        local line = c:receive()
        c:send("tls " .. tostring(line) .. "\n")
        served = true
      end, server_params))
      copas.addthread(function()
        local c = copas.wrap(socket.tcp(), client_params)
        c:settimeout(5)
        assert(c:connect("127.0.0.1", port))
        c:send("hello\n")
        got = c:receive()
        c:close()
        copas.removeserver(srv)
      end)
    end)
    assert.are.equal("tls hello", got)
    assert.is_true(served)
  end)

  it("times a TLS handshake out within the copas timeout", function()
    local result
    copas.loop(function()
      local c = copas.wrap(socket.tcp(), { wrap = { mode = "client", protocol = "any",
        verify = "none" } })
      c:settimeouts(0.3, 5, 5)
      local t0 = socket.gettime()
      local ok, err = c:connect("127.0.0.1", peer.ports.stall)
      result = { ok, err, socket.gettime() - t0 }
      c:close()
    end)
    assert.is_nil(result[1])
    assert.are.equal("timeout", result[2])
    assert.is_true(result[3] < 3)
  end)
end)
