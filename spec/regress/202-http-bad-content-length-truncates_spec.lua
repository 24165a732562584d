-- Regression 202: socket.http took a Content-Length it could not use for "no length" and
-- returned a truncated body as a success.
--
-- The body reader matched the field against "digits, at most 15 of them" and, when that failed
-- (a negative value, other characters, more than 15 digits, two different values), read until
-- the server closed: a server announcing "-5" or "10x" got its reply taken whole, however short
-- it was, with code 200. Such a value now fails the request with "invalid content-length"; a
-- valid one, with leading zeros or repeated identically, still gives exactly that many bytes.
local http = require("socket.http")
local url = require("socket.url")
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")

local httpd

-- The test server's /length answer for the given Content-Length value(s).
local function U(v, also, body)
  local q = "v=" .. url.escape(v)
  if also then q = q .. "&also=" .. url.escape(also) end
  if body then q = q .. "&body=" .. url.escape(body) end
  return "http://127.0.0.1:" .. httpd.port .. "/length?" .. q
end

local INVALID = { "-5", "-0", "+10", "abc", "10x", "1 0", "", "5.0", "0x10", "1e3",
  "1234567890123456", "99999999999999999999" }

describe("regression 202", function()
  setup(function() httpd = S.httpd() end)
  teardown(function()
    if httpd then httpd:stop() end
  end)

  H.modes("socket.http and Content-Length", function(run)
    for _, v in ipairs(INVALID) do
      it(("fails on Content-Length %q"):format(v), function()
        run(function()
          local body, err = http.request(U(v))
          assert.is_nil(body)
          assert.are.equal("invalid content-length", err)
        end)
      end)
    end

    it("fails on two different lengths", function()
      run(function()
        assert.are.same({ nil, "invalid content-length" }, { http.request(U("10", "4")) })
      end)
    end)

    it("fails in the generic form, the sink getting nothing", function()
      run(function()
        local t = {}
        local ok, err = http.request({ url = U("-1"), sink = require("ltn12").sink.table(t) })
        assert.is_nil(ok)
        assert.are.equal("invalid content-length", err)
        assert.are.equal("", table.concat(t))
      end)
    end)

    it("reads exactly the announced bytes of a valid length", function()
      run(function()
        assert.are.equal("0123456789", (http.request(U("10"))))
        assert.are.equal("01234", (http.request(U("5"))))
        assert.are.equal("", (http.request(U("0"))))
        assert.are.equal("0123456", (http.request(U("0007"))))
        assert.are.equal("012", (http.request(U("000000000000000000003"))))
        assert.are.equal("0123456789", (http.request(U("10", "10"))))
        local body, code, headers = http.request(U("10 "))
        assert.are.equal("0123456789", body)
        assert.are.equal(200, code)
        assert.are.equal("10 ", headers["content-length"])
      end)
    end)

    it("a length above the data is a closed connection, not a success", function()
      run(function()
        assert.are.same({ nil, "closed" }, { http.request(U("100")) })
      end)
    end)

    it("a HEAD request reads no body, so the length is not looked at", function()
      run(function()
        local ok, code = http.request({ url = U("-5"), method = "HEAD" })
        assert.are.equal(1, ok)
        assert.are.equal(200, code)
      end)
    end)
  end)
end)
