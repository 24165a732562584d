-- socket/unix.lua: `require "socket.unix"`: Unix-domain stream and datagram sockets. The
-- classes live in the C core; this module hands out their constructors: stream(), dgram(), the
-- aliases tcp and udp, and calling the module itself is the same as stream().
return require("socket.core")._unix
