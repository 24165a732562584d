-- copas/http.lua: `require "copas.http"` for programs written for copas: uvsocket's copas.http
-- (socket.async.copas, docs/async.md "Running copas applications").
return require("socket.async.copas").http
