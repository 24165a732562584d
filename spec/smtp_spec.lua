-- smtp_spec.lua: socket.smtp against a real SMTP server on loopback (python3-aiosmtpd, see
-- support/smtpd.py, which saves each message it accepts), plus scripted uvsocket peers for
-- what aiosmtpd does not do. Deliveries run in blocking mode and as tasks.
local socket = require("socket")
local smtp = require("socket.smtp")
local ltn12 = require("ltn12")
local mime = require("mime")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")

local server

-- The saved message whose Subject is `subject`, and its envelope (as JSON text).
local function received(subject)
  local p = assert(io.popen("ls " .. server.maildir))
  local names = p:read("a")
  p:close()
  for name in names:gmatch("(%d+)%.eml") do
    local text = S.read(server.maildir .. "/" .. name .. ".eml")
    if text and text:find("\nSubject: " .. subject .. "\r\n", 1, true) then
      return text, S.read(server.maildir .. "/" .. name .. ".json")
    end
  end
end

-- The parts of a multipart message: {headers = text, body = text} for each.
local function parts(text)
  local boundary = assert(text:match('boundary="([^"]+)"'))
  local list = {}
  local marker = "\r\n--" .. boundary
  local pos = assert(text:find(marker, 1, true))
  while true do
    local start = pos + #marker
    if text:sub(start, start + 1) == "--" then break end
    local stop = assert(text:find(marker, start, true))
    local part = text:sub(start + 2, stop - 1)
    local head, body = part:match("^(.-\r\n)\r\n(.*)$")
    list[#list + 1] = { headers = head, body = body }
    pos = stop
  end
  return list
end

local function binary(size)
  local t, x = {}, 7
  for i = 1, size do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x % 256)
  end
  return table.concat(t)
end

local ATTACHMENT = binary(200000)

-- A message with a text part and a base64 attachment.
local function message_with_attachment(subject)
  return smtp.message({
    headers = {
      from = '"Sender" <sender@example.test>',
      to = "<rcpt@example.test>",
      subject = subject,
    },
    body = {
      preamble = "This is a MIME message.",
      {
        headers = { ["content-type"] = 'text/plain; charset="utf-8"' },
        body = "Hello,\r\n.a line that starts with a dot\r\n..and two\r\nbye\r\n",
      },
      {
        headers = {
          ["content-type"] = 'application/octet-stream; name="data.bin"',
          ["content-disposition"] = 'attachment; filename="data.bin"',
          ["content-transfer-encoding"] = "BASE64",
        },
        body = ltn12.source.chain(ltn12.source.string(ATTACHMENT),
          ltn12.filter.chain(mime.encode("base64"), mime.wrap())),
      },
      epilogue = "The end.",
    },
  })
end

describe("socket.smtp", function()
  setup(function() server = S.smtpd() end)
  teardown(function()
    if server then server:stop() end
    H.cleanup()
  end)

  describe("module", function()
    it("has LuaSocket's fields and stores itself in the socket namespace", function()
      assert.are.equal(smtp, socket.smtp)
      assert.are.equal(60, smtp.TIMEOUT)
      assert.are.equal("localhost", smtp.SERVER)
      assert.are.equal(25, smtp.PORT)
      assert.are.equal(os.getenv("SERVER_NAME") or "localhost", smtp.DOMAIN)
      assert.are.equal("-0000", smtp.ZONE)
      for _, f in ipairs({ "send", "message", "open" }) do assert.is_function(smtp[f], f) end
      assert.has_error(function() smtp.send("x") end,
        "bad argument #1 to 'send' (table expected, got string)")
    end)
  end)

  describe("message", function()
    local function text_of(src)
      local t = {}
      assert.truthy(ltn12.pump.all(src, (ltn12.sink.table(t))))
      return table.concat(t)
    end

    it("adds Date, X-Mailer and MIME-Version, in canonical spelling", function()
      local text = text_of(smtp.message({ headers = { SUBJECT = "hi", ["x-custom"] = "1" },
        body = "text" }))
      local head, body = text:match("^(.-)\r\n\r\n(.*)$")
      assert.are.equal("text", body)
      assert.matches("\r\nSubject: hi\r\n", "\r\n" .. head .. "\r\n")
      assert.matches("Date: %a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d %-0000", head)
      assert.matches("X%-Mailer: " .. socket._VERSION:gsub("%p", "%%%0"), head)
      assert.matches("MIME%-Version: 1%.0", head)
      assert.matches('Content%-Type: text/plain; charset="iso%-8859%-1"', head)
      assert.matches("x%-custom: 1", head)
      text = text_of(smtp.message({ headers = { date = "fixed", ["mime-version"] = "9" },
        zone = "+0100", body = "" }))
      assert.matches("Date: fixed\r\n", text)
      assert.matches("MIME%-Version: 1%.0\r\n", text)
    end)

    it("lays out multipart bodies with preamble, nested parts and epilogue", function()
      local text = text_of(smtp.message({
        body = {
          preamble = "pre",
          { body = "one" },
          { headers = { ["Content-Type"] = "multipart/alternative" },
            body = { { body = "two-a" }, { body = "two-b" } } },
          epilogue = "epi",
        },
      }))
      local outer = text:match('Content%-Type: multipart/mixed; boundary="([^"]+)"')
      assert.is_string(outer)
      assert.matches("\r\n\r\npre\r\n\r\n%-%-" .. outer:gsub("%p", "%%%0") .. "\r\n", text)
      assert.matches("\r\n%-%-" .. outer:gsub("%p", "%%%0") .. "%-%-\r\n\r\nepi\r\n$", text)
      local list = parts(text)
      assert.are.equal(2, #list)
      assert.are.equal("one", list[1].body)
      assert.matches("multipart/alternative; boundary=", list[2].headers)
      local inner = parts(list[2].headers .. "\r\n" .. list[2].body)
      assert.are.equal("two-a", inner[1].body)
      assert.are.equal("two-b", inner[2].body)
    end)

    it("returns nil, err when a body source fails or raises", function()
      local src = smtp.message({ body = ltn12.source.cat(ltn12.source.string("a"),
        ltn12.source.error("broken")) })
      local chunk, err
      repeat chunk, err = src() until not chunk
      assert.are.equal("broken", err)
      src = smtp.message({ body = function() error("raised") end })
      src()
      local e
      chunk, e = src()
      assert.is_nil(chunk)
      assert.matches("raised", e)
    end)
  end)

  H.modes("delivery", function(run, mode)
    it("delivers a multipart message with an attachment intact", function()
      run(function()
        local subject = "attachment " .. mode
        local r, err = smtp.send({
          from = "<sender@example.test>",
          rcpt = { "<rcpt@example.test>", "<copy@example.test>" },
          source = message_with_attachment(subject),
          server = "127.0.0.1", port = server.port,
        })
        assert.are.equal(1, r, err)
        local text, envelope = received(subject)
        assert.is_string(text, "the server did not save the message")
        assert.matches('"from": "sender@example.test"', envelope)
        assert.matches('"to": %["rcpt@example.test", "copy@example.test"%]', envelope)
        local list = parts(text)
        assert.are.equal(2, #list)
        assert.are.equal("Hello,\r\n.a line that starts with a dot\r\n..and two\r\nbye\r\n",
          list[1].body)
        assert.matches('filename="data.bin"', list[2].headers)
        local decoded = mime.unb64((list[2].body:gsub("\r\n", "")))
        assert.is_true(decoded == ATTACHMENT, "the attachment differs")
        assert.matches("This is a MIME message.", text)
      end)
    end)

    it("authenticates with AUTH LOGIN, and reports a refused login", function()
      run(function()
        local subject = "auth " .. mode
        local r, err = smtp.send({
          from = "<a@example.test>", rcpt = "<b@example.test>",
          source = smtp.message({ headers = { subject = subject }, body = "authenticated" }),
          server = "127.0.0.1", port = server.port, user = "user", password = "secret",
        })
        assert.are.equal(1, r, err)
        local _, envelope = received(subject)
        assert.matches('"login": "user"', envelope)
        r, err = smtp.send({
          from = "<a@example.test>", rcpt = "<b@example.test>",
          source = ltn12.source.string("x"),
          server = "127.0.0.1", port = server.port, user = "user", password = "wrong",
        })
        assert.is_nil(r)
        assert.matches("^535", err)
      end)
    end)

    it("drives a session with the low-level object (AUTH PLAIN)", function()
      run(function()
        local subject = "low level " .. mode
        local s = smtp.open("127.0.0.1", server.port)
        local ok, err = socket.protect(function()
          local ext = s:greet("client.test")
          assert.matches("AUTH", ext)
          s:plain("user", "secret")
          s:mail("<low@example.test>")
          s:rcpt("<level@example.test>")
          s:data(ltn12.source.chain(
            smtp.message({ headers = { subject = subject }, body = "plain\r\n.dot\r\n" }),
            mime.stuff()))
          s:quit()
          return s:close()
        end)()
        assert.are.equal(1, ok, err)
        local text, envelope = received(subject)
        assert.matches("\r\n\r\nplain\r\n%.dot\r\n", text)
        assert.matches('"login": "user"', envelope)
      end)
    end)

    it("fails cleanly: refused connection, missing fields", function()
      run(function()
        local srv, port = H.server()
        srv:close()
        local r, err = smtp.send({ from = "<a@b>", rcpt = "<c@d>",
          source = ltn12.source.string("x"), server = "127.0.0.1", port = port })
        assert.is_nil(r)
        assert.are.equal("connection refused", err)
        r, err = smtp.send({ rcpt = "<c@d>", source = ltn12.source.string("x"),
          server = "127.0.0.1", port = server.port })
        assert.is_nil(r)
        assert.are.equal("missing from", err)
      end)
    end)

    it("falls back to HELO, and refuses to log in without a known mechanism", function()
      local p, port = H.listen_peer([[
c:send("220 old server\r\n")
assert(c:receive():match("^EHLO "))
c:send("502 what?\r\n")
assert(c:receive():match("^HELO "))
c:send("250 hello\r\n")
c:receive()
]])
      run(function()
        local r, err = smtp.send({ from = "<a@b>", rcpt = "<c@d>",
          source = ltn12.source.string("x"), server = "127.0.0.1", port = port,
          user = "u", password = "p" })
        assert.is_nil(r)
        assert.are.equal("authentication not supported", err)
      end)
      p:close()
    end)
  end)

  describe("from tasks", function()
    after_each(H.assert_clean)

    it("several tasks deliver at the same time", function()
      local results, finished = {}, 0
      async.run(function()
        for i = 1, 8 do
          async.spawn(function()
            results[i] = smtp.send({
              from = "<t@example.test>", rcpt = "<r@example.test>",
              source = message_with_attachment("task " .. i),
              server = "127.0.0.1", port = server.port,
            })
            finished = finished + 1
          end)
        end
        while finished < 8 do async.sleep(0.01) end
      end)
      for i = 1, 8 do
        assert.are.equal(1, results[i])
        local text = received("task " .. i)
        local list = parts(text)
        assert.is_true(mime.unb64((list[2].body:gsub("\r\n", ""))) == ATTACHMENT)
      end
    end)
  end)
end)
