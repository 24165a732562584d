-- smtp_starttls_spec.lua: socket.smtp's starttls option against aiosmtpd on loopback, with and
-- without STARTTLS on offer (support/smtpd.py). Deliveries run in blocking mode and as tasks.
local smtp = require("socket.smtp")
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")
local T = require("support.tls")

local secure, plain, certs

local function saved(server)
  local p = assert(io.popen("ls " .. server.maildir))
  local names = p:read("a")
  p:close()
  local out = {}
  for name in names:gmatch("(%d+)%.eml") do
    out[#out + 1] = { text = S.read(server.maildir .. "/" .. name .. ".eml"),
      envelope = S.read(server.maildir .. "/" .. name .. ".json") }
  end
  return out
end

local function mail(server, extra)
  local m = { server = "127.0.0.1", port = server.port, from = "<a@example.org>",
    rcpt = "<b@example.org>", user = "user", password = "secret",
    source = smtp.message({ headers = { subject = "over TLS" }, body = "secret body" }) }
  for k, v in pairs(extra or {}) do m[k] = v end
  return smtp.send(m)
end

describe("socket.smtp STARTTLS", function()
  setup(function()
    certs = T.certs()
    secure = S.smtpd(certs)
    plain = S.smtpd()
  end)
  teardown(function()
    secure:stop()
    plain:stop()
    H.cleanup()
  end)

  H.modes("delivery", function(run)
    it("upgrades after EHLO and authenticates over TLS", function()
      run(function()
        local before = #saved(secure)
        local ok, err = mail(secure, { starttls = { cafile = certs.ca, servername = "localhost" } })
        assert.are.equal(1, ok, err)
        local got = saved(secure)
        assert.are.equal(before + 1, #got)
        assert.matches('"login": "user"', got[#got].envelope)
        assert.matches("secret body", got[#got].text)
      end)
    end)

    it("verifies the server: a certificate it cannot trust stops before AUTH", function()
      run(function()
        local before = #saved(secure)
        local ok, err = mail(secure, { starttls = true })
        assert.is_nil(ok)
        assert.are.equal("certificate verify failed: unable to get local issuer certificate", err)
        assert.are.equal(before, #saved(secure))
      end)
    end)

    it("refuses to go on in the clear when STARTTLS is not offered", function()
      run(function()
        local before = #saved(plain)
        local ok, err = mail(plain, { starttls = { cafile = certs.ca } })
        assert.is_nil(ok)
        assert.are.equal("server does not offer STARTTLS", err)
        assert.are.equal(before, #saved(plain))
      end)
    end)
  end)
end)
