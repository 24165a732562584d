-- Line echo server on cqueues (Debian's lua-cqueues), in cqueues' idiom: a controller, one
-- wrapped coroutine accepting clients and one per client iterating over its lines. Part of
-- bench/ (docs/performance.md).
-- Usage: lua5.4 echo.lua PORT
local cqueues = require("cqueues")
local socket = require("cqueues.socket")

local port = assert(tonumber(arg[1]), "usage: echo.lua PORT")

-- Report I/O errors (a client reset) as return values instead of raising them.
socket.onerror(function(_, _, why) return why end)

local cq = cqueues.new()
local server = assert(socket.listen("127.0.0.1", port))

cq:wrap(function()
  for client in server:clients() do
    cq:wrap(function()
      client:setmode("b", "bn") -- binary, no output buffering: each write goes out at once
      for line in client:lines("*L") do
        client:write(line)
      end
      client:close()
    end)
  end
end)

assert(cq:loop())
