-- Line echo server on uvsocket, written the way a LuaSocket user would in task mode: accept,
-- spawn a task per client, receive("*l"), send. Part of bench/ (docs/performance.md).
-- Usage: lua5.4 echo.lua PORT
local socket = require("socket")
local async = socket.async

local port = assert(tonumber(arg[1]), "usage: echo.lua PORT")

local function serve(client)
  while true do
    local line = client:receive("*l")
    if not line then break end
    client:send(line .. "\n")
  end
  client:close()
end

async.run(function()
  local server = assert(socket.bind("127.0.0.1", port))
  while true do
    local client = server:accept()
    if client then async.spawn(serve, client) end
  end
end)
