-- Regression 251: where a WebSocket text frame's bad UTF-8 was found depended on the cuts.
--
-- The message checker took a whole payload slice before saying the text was bad, without
-- saying which byte was; found by fuzz/websocket_frame_fuzz.cpp. It now reports how much of the
-- slice it accepted. Seen from Lua: the feed that brings the bad byte fails the connection,
-- before the frame is complete, however the frame is cut.
local core = require("socket.http.core")

describe("regression 251", function()
  it("the feed that brings a bad byte reports it, for every cut", function()
    local frame = "\x81\x0a" .. "ab\xe2\x32" .. "zzzzzz"  -- byte 5 (0x32) breaks "\xe2"
    for cut = 1, #frame - 1 do
      local p = core.ws_parser("client")
      local first = { p:feed(frame:sub(1, cut)) }
      if cut < 6 then
        assert.are.same({ {} }, first, "cut " .. cut)
        assert.are.same({ nil, "invalid utf-8", 1007 }, { p:feed(frame:sub(cut + 1)) })
      else
        assert.are.same({ nil, "invalid utf-8", 1007 }, first, "cut " .. cut)
      end
    end
  end)
end)
