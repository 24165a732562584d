-- 401: socket.http's https went through LuaSec's ssl.https, whose default is verify = "none"
-- with no host name check: an expired certificate, or one for another host, was accepted
-- without a word. https is now verified unless the request says verify = "none".
local http = require("socket.http")
local ltn12 = require("ltn12")
local S = require("support.servers")
local T = require("support.tls")

describe("regression 401", function()
  it("refuses an expired certificate and one for another host", function()
    local certs = T.certs()
    local expired = S.s_server(certs, "", "expired")
    local other = S.s_server(certs, "", "other")
    local _, e1 = http.request({ url = "https://localhost:" .. expired.port .. "/",
      cafile = certs.ca, sink = ltn12.sink.table({}) })
    local _, e2 = http.request({ url = "https://localhost:" .. other.port .. "/",
      cafile = certs.ca, sink = ltn12.sink.table({}) })
    expired:stop()
    other:stop()
    assert.are.equal("certificate verify failed: certificate has expired", e1)
    assert.are.equal("certificate verify failed: hostname mismatch", e2)
  end)
end)
