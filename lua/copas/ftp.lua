-- copas/ftp.lua: `require "copas.ftp"` for programs written for copas: uvsocket's copas.ftp
-- (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").ftp
