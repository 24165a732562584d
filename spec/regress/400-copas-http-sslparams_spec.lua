-- 400: copas.http.request over https ignored the request's sslparams, so a request that asked
-- for verify = "peer" without any CA certificate succeeded against a server nobody could
-- verify: a request that demands verification must get it.
local copas = require("copas")
local ltn12 = require("ltn12")
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")
local T = require("support.tls")

describe("regression 400", function()
  it("copas.http honours sslparams over https", function()
    local certs = T.certs()
    local srv = S.s_server(certs, "")
    local r
    copas.loop(function()
      r = { copas.http.request({ url = "https://localhost:" .. srv.port .. "/",
        sslparams = { mode = "client", protocol = "any", verify = "peer" },
        sink = ltn12.sink.table({}) }) }
    end)
    srv:stop()
    assert.is_nil(r[1])
    assert.matches("^certificate verify failed", r[2])
    H.assert_clean()
  end)
end)
