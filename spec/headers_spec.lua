-- headers_spec.lua: socket.headers (lua/socket/headers.lua), the canonical spelling of header
-- field names.
local socket = require("socket")
local headers = require("socket.headers")

describe("socket.headers", function()
  it("stores itself in the socket namespace", function()
    assert.are.equal(headers, socket.headers)
    assert.is_table(headers.canonic)
  end)

  it("maps lower-case names to their canonical spelling", function()
    local canonic = headers.canonic
    assert.are.equal("Content-Type", canonic["content-type"])
    assert.are.equal("Content-Length", canonic["content-length"])
    assert.are.equal("Content-ID", canonic["content-id"])
    assert.are.equal("Content-MD5", canonic["content-md5"])
    assert.are.equal("ETag", canonic["etag"])
    assert.are.equal("TE", canonic["te"])
    assert.are.equal("MIME-Version", canonic["mime-version"])
    assert.are.equal("WWW-Authenticate", canonic["www-authenticate"])
    assert.are.equal("Message-ID", canonic["message-id"])
    assert.are.equal("Resent-Message-ID", canonic["resent-message-id"])
    assert.are.equal("DSN-Gateway", canonic["dsn-gateway"])
    assert.are.equal("SMTP-Remote-Recipient", canonic["smtp-remote-recipient"])
    assert.are.equal("Received-From-MTA", canonic["received-from-mta"])
    assert.are.equal("X-Mailer", canonic["x-mailer"])
    assert.are.equal("User-Agent", canonic["user-agent"])
    assert.is_nil(canonic["Content-Type"])
    assert.is_nil(canonic["x-unknown-field"])
  end)

  it("has LuaSocket's names, each key the lower case of its value", function()
    local n = 0
    for k, v in pairs(headers.canonic) do
      n = n + 1
      assert.is_string(v)
      assert.are.equal(k, v:lower())
    end
    assert.is_true(n >= 91)
    for _, name in ipairs({ "accept", "accept-charset", "accept-encoding", "accept-language",
      "accept-ranges", "action", "alternate-recipient", "age", "allow", "arrival-date",
      "authorization", "bcc", "cache-control", "cc", "comments", "connection",
      "content-description", "content-disposition", "content-encoding", "content-language",
      "content-location", "content-range", "content-transfer-encoding", "cookie", "date",
      "diagnostic-code", "expect", "expires", "final-log-id", "final-recipient", "from", "host",
      "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
      "in-reply-to", "keywords", "last-attempt-date", "last-modified", "location",
      "max-forwards", "original-envelope-id", "original-recipient", "pragma",
      "proxy-authenticate", "proxy-authorization", "range", "received", "references",
      "referer", "remote-mta", "reply-to", "reporting-mta", "resent-bcc", "resent-cc",
      "resent-date", "resent-from", "resent-reply-to", "resent-sender", "resent-to",
      "retry-after", "return-path", "sender", "server", "status", "subject", "to", "trailer",
      "transfer-encoding", "upgrade", "vary", "via", "warning", "will-retry-until" }) do
      assert.is_string(headers.canonic[name], name)
    end
  end)

  it("can be extended by applications", function()
    headers.canonic["x-my-header"] = "X-My-Header"
    assert.are.equal("X-My-Header", require("socket.headers").canonic["x-my-header"])
    headers.canonic["x-my-header"] = nil
  end)
end)
