-- daytime_server.lua: a UDP daytime server (RFC 867 style), one task per request.
--
--   lua5.4 examples/daytime_server.lua [port] [count]
--
-- Answers every datagram with the local date and time; with `count`, stops after that many
-- requests (the examples' test uses it). Port 0 picks a free port, printed on stdout.
local socket = require("socket")
local async = socket.async

local port, count = tonumber(arg[1]) or 0, tonumber(arg[2])

async.run(function()
  local udp = assert(socket.udp())
  assert(udp:setsockname("127.0.0.1", port))
  print("daytime server on udp port " .. select(2, udp:getsockname()))
  io.stdout:flush()
  local served = 0
  while not count or served < count do
    local _, ip, from = udp:receivefrom()
    if ip then
      udp:sendto(os.date("%A, %B %d, %Y %H:%M:%S %Z") .. "\r\n", ip, from)
      served = served + 1
    end
  end
  udp:close()
end)
