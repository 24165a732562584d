-- send_mail.lua: sends a MIME message with a text part and an attachment to an SMTP server.
--
--   lua5.4 examples/send_mail.lua [host port]
--
-- With no server given it starts a local one (python3 -m aiosmtpd, which prints what it
-- receives) on a free loopback port, sends to it and stops it.
local socket = require("socket")
local smtp = require("socket.smtp")
local ltn12 = require("ltn12")
local mime = require("mime")

local host, port = arg[1], tonumber(arg[2])
local server_pid

-- Starts aiosmtpd on a free port of 127.0.0.1 and waits until it answers.
local function start_server()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, free = probe:getsockname()
  probe:close()
  local python = os.execute("/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null")
    and "/usr/bin/python3" or "python3"
  local p = assert(io.popen(("%s -m aiosmtpd -n -l 127.0.0.1:%d >&2 & echo $!"):format(
    python, free)))
  server_pid = tonumber(p:read("l"))
  p:close()
  for _ = 1, 100 do
    local c = socket.connect("127.0.0.1", free)
    if c then
      c:close()
      return "127.0.0.1", free
    end
    socket.sleep(0.05)
  end
  error("the local SMTP server did not start")
end

if not host then host, port = start_server() end

-- The attachment: this program's own source, base64-encoded in 76-column lines.
local source_file = assert(io.open(arg[0], "rb"))

local message = smtp.message({
  headers = {
    from = "uvsocket example <sender@example.test>",
    to = "Someone <someone@example.test>",
    subject = "A message from examples/send_mail.lua",
  },
  body = {
    preamble = "This is a MIME message with two parts.",
    {
      headers = { ["content-type"] = 'text/plain; charset="utf-8"' },
      body = "Hello!\r\n\r\nThe program that sent this message is attached.\r\n",
    },
    {
      headers = {
        ["content-type"] = 'text/plain; name="send_mail.lua"',
        ["content-disposition"] = 'attachment; filename="send_mail.lua"',
        ["content-transfer-encoding"] = "BASE64",
      },
      body = ltn12.source.chain(ltn12.source.file(source_file),
        ltn12.filter.chain(mime.encode("base64"), mime.wrap())),
    },
  },
})

local ok, err = smtp.send({
  from = "<sender@example.test>",
  rcpt = { "<someone@example.test>" },
  source = message,
  server = host,
  port = port,
})

if server_pid then
  socket.sleep(0.2)  -- let the server print the message before it goes
  os.execute("kill " .. server_pid)
end
if ok then
  print(("message accepted by %s:%d"):format(host, port))
else
  print("sending failed: " .. tostring(err))
end
os.exit(ok and 0 or 1)
