-- Regression 002: a program with nothing but sleeping tasks used a whole CPU.
--
-- After the timer was moved into a prepare handle (regression 001), nothing kept the loop
-- "alive" when only deadlines were pending: the prepare handle is unreferenced and the timer was
-- only started from inside it, so uv_run(UV_RUN_ONCE) saw a dead loop, returned at once, and the
-- scheduler spun until the deadline. The timer is now also armed before each uv_run.
local H = require("support.helpers").use(_ENV)

describe("regression 002", function()
  it("sleeping uses no CPU", function()
    local p = assert(io.popen(H.LUA .. [[ -e '
      local async = require("socket").async
      async.run(function() async.sleep(1) end)
      print("cpu", async.status().cpu)' 2>&1]]))
    local out = p:read("a")
    p:close()
    local cpu = tonumber(out:match("cpu\t(%S+)"))
    assert.is_number(cpu, out)
    assert.is_true(cpu < 0.2, out)
  end)
end)
