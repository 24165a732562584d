-- .luacheckrc: `luacheck lua spec examples bench` (ctest runs it as spec.luacheck).
std = "lua54"
max_line_length = 100
-- Methods that ignore their object (a wrapped UDP socket's close, flush) keep the method form
-- of the interface they implement.
self = false

-- busted's describe, it, assert, ... in the specs.
files["spec"] = { std = "+busted" }
