-- copas/smtp.lua: `require "copas.smtp"` for programs written for copas: uvsocket's copas.smtp
-- (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").smtp
