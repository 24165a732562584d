-- copas.lua: `require "copas"` for programs written for copas 4. It is uvsocket's compatibility
-- module socket.async.copas under copas's own name (docs/async.md, "Running copas
-- applications"). Installed as share/lua/5.4/copas.lua, it shadows a real copas installed
-- later on the search path, and is shadowed by one installed earlier.
return require("socket.async.copas")._alias()
