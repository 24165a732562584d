-- socket/async.lua: the `socket.async` namespace: the scheduler's C functions (run, spawn,
-- sleep, now, intask) plus the helpers written in Lua.
local core = require("socket.core")

local M = core.async

return M
