-- HTTP/1.1 keep-alive "hello" server on socket.http.server (the server module, with its
-- limits, Date field and keep-alive handling). Part of bench/ (docs/performance.md).
-- Usage: lua5.4 http_server.lua PORT [WORKERS]   (WORKERS: listen{workers = N}, 0 for one
-- per core; the calling process then supervises the workers)
local socket = require("socket")
local server = require("socket.http.server")

local port = assert(tonumber(arg[1]), "usage: http_server.lua PORT [WORKERS]")
local workers = tonumber(arg[2])

local options = { host = "127.0.0.1", port = port, max_connections = 10000, workers = workers,
  handler = function(_, res)
    res:header("Content-Type", "text/plain")
    res:finish("Hello, World!")
  end }

if workers then
  assert(server.listen(options))
else
  socket.async.run(function() assert(server.listen(options)) end)
end
