-- Regression 001: a sleeping task never woke while other tasks waited on sockets.
--
-- The deadline timer was armed before uv_run(UV_RUN_ONCE). libuv runs due timers at the start of
-- uv_run, before it computes how long to poll: when the timer fired there (the coarse loop clock
-- had already passed it), the poll that followed had no timer left to bound it and blocked
-- forever in epoll_wait(-1), with sleeping tasks overdue. The fix re-arms the timer from a
-- prepare handle, which runs after the timer phase and before the poll timeout is computed.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("regression 001", function()
  after_each(H.assert_clean)

  it("sleepers keep waking while many tasks wait on idle sockets", function()
    async.run(function()
      local srv, port = H.server()
      local socks = {}
      for i = 1, 200 do
        socks[i] = assert(socket.connect("127.0.0.1", port))
        local s = assert(srv:accept())
        socks[#socks + 1] = s
        async.spawn(function() s:receive() end)  -- waits forever on an idle socket
      end
      -- hundreds of short sleeps: each one must end on time although no socket ever fires
      for _ = 1, 300 do
        local t0 = async.now()
        async.sleep(0.001)
        assert.is_true(async.now() - t0 < 1)
      end
      for _, s in ipairs(socks) do s:close() end
      srv:close()
    end)
  end)
end)
