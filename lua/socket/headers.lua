-- socket/headers.lua: the canonical spelling of header field names, with the API of LuaSocket
-- 3.1's `socket.headers`. Pure Lua.
--
-- socket.http and socket.smtp look field names up here (by their lower-case form) when they
-- write headers, so that a name given as "content-type" goes out as "Content-Type". Names that
-- are not listed go out as given. Applications may add entries to `canonic`.
--
-- Like LuaSocket's modules, this one also stores itself in the socket namespace
-- (socket.headers).
local socket = require("socket")

local M = {}

local ipairs = ipairs
local lower = string.lower

-- Field names by the specification that registers them, in their canonical spelling.
local names = {
  -- HTTP semantics, caching and messaging (RFC 9110, 9111, 9112), cookies (RFC 6265), the
  -- Content-MD5 of RFC 1864, Warning of RFC 7234.
  "Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges", "Age",
  "Allow", "Authorization", "Cache-Control", "Connection", "Content-Encoding",
  "Content-Language", "Content-Length", "Content-Location", "Content-MD5", "Content-Range",
  "Content-Type", "Cookie", "Date", "ETag", "Expect", "Expires", "Host", "If-Match",
  "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive",
  "Last-Modified", "Location", "Max-Forwards", "Origin", "Pragma", "Proxy-Authenticate",
  "Proxy-Authorization", "Range", "Referer", "Retry-After", "Server", "Set-Cookie", "TE",
  "Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "Vary", "Via", "Warning",
  "WWW-Authenticate",
  -- Internet messages (RFC 5322), MIME (RFC 2045, 2183) and common mailer fields.
  "Bcc", "Cc", "Comments", "Content-Description", "Content-Disposition", "Content-ID",
  "Content-Transfer-Encoding", "From", "In-Reply-To", "Keywords", "Message-ID",
  "MIME-Version", "Received", "References", "Reply-To", "Resent-Bcc", "Resent-Cc",
  "Resent-Date", "Resent-From", "Resent-Message-ID", "Resent-Reply-To", "Resent-Sender",
  "Resent-To", "Return-Path", "Sender", "Subject", "To", "X-Mailer",
  -- Delivery status notifications (RFC 3464) and X.400 gatewaying (RFC 2156).
  "Action", "Alternate-Recipient", "Arrival-Date", "Diagnostic-Code", "DSN-Gateway",
  "Final-Log-ID", "Final-Recipient", "Last-Attempt-Date", "Original-Envelope-ID",
  "Original-Recipient", "Received-From-MTA", "Remote-MTA", "Reporting-MTA",
  "SMTP-Remote-Recipient", "Status", "Will-Retry-Until",
}

-- canonic[lower-case name] = canonical name
M.canonic = {}
for _, name in ipairs(names) do
  M.canonic[lower(name)] = name
end

socket.headers = M

return M
