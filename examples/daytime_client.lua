-- daytime_client.lua: the introduction's UDP daytime client, unchanged but for the host and
-- port, which come from the command line.
--
--   lua5.4 examples/daytime_client.lua [host] [port]
local host, port = arg[1] or "localhost", tonumber(arg[2]) or 13
-- load namespace
local socket = require("socket")
-- convert host name to ip address
local ip = assert(socket.dns.toip(host))
-- create a new UDP object
local udp = assert(socket.udp())
-- give up after 5 s instead of waiting forever
udp:settimeout(5)
-- contact daytime host
assert(udp:sendto("anything", ip, port))
-- retrieve the answer and print results
io.write(assert(udp:receive()))
