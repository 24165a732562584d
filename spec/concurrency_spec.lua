-- concurrency_spec.lua: many connections in one thread, in task mode.
local socket = require("socket")
local async = socket.async
local H = require("support.helpers").use(_ENV)

describe("task mode at scale", function()
  after_each(H.assert_clean)

  it("one server task serves 2,000 concurrent clients in one thread", function()
    if socket._SETSIZE < 4200 then
      pending("needs `ulimit -n` of at least 4200, have " .. socket._SETSIZE)
      return
    end
    local clients, served, replies = 2000, 0, 0
    local max_open = 0
    async.run(function()
      local srv, port = H.server()
      local open = 0
      async.spawn(function()
        for _ = 1, clients do
          local c = assert(srv:accept())
          open = open + 1
          if open > max_open then max_open = open end
          async.spawn(function()
            c:settimeout(10)
            while true do
              local line = c:receive()
              if not line then break end
              assert(c:send(line .. "\n"))
            end
            c:close()
            open = open - 1
            served = served + 1
          end)
        end
        srv:close()
      end)
      local ready, go = 0, false
      for i = 1, clients do
        async.spawn(function()
          local c = assert(socket.connect("127.0.0.1", port))
          c:settimeout(10)
          ready = ready + 1
          -- hold every connection open until all are up, so they are truly concurrent
          while not go do async.sleep(0.01) end
          for j = 1, 3 do
            assert(c:send(("client %d line %d\n"):format(i, j)))
            assert.are.equal(("client %d line %d"):format(i, j), c:receive())
            replies = replies + 1
          end
          c:close()
        end)
      end
      -- go once every connection is accepted too: the accepting task shares the loop with the
      -- others (it pauses every few dozen accepts), so "connected" is not yet "served at once"
      while ready < clients or open < clients do async.sleep(0.01) end
      go = true
    end)
    assert.are.equal(clients, served)
    assert.are.equal(clients * 3, replies)
    assert.are.equal(clients, max_open)  -- all 2,000 were connected at the same time
  end)

  it("10,000 sleeping tasks wake in deadline order", function()
    local woke = {}
    async.run(function()
      for i = 1, 10000 do
        async.spawn(function()
          local d = (i * 7919) % 50 / 1000
          local due = async.now() + d
          async.sleep(d)
          assert.is_true(async.now() >= due - 1e-6)  -- never early
          woke[#woke + 1] = due
        end)
      end
    end)
    assert.are.equal(10000, #woke)
    for i = 2, #woke do
      -- The scheduler orders by the deadline it computes a moment after the task read the
      -- clock here; on a loaded machine the process can be descheduled in between, so allow
      -- for that jitter. (Exact order, ties included, is the deadline heap's unit test.)
      assert.is_true(woke[i - 1] <= woke[i] + 0.02, "out of order at " .. i)
    end
  end)

  it("a task that errors is reported and the others go on", function()
    local finished = 0
    async.run(function()
      for i = 1, 10 do
        async.spawn(function()
          async.sleep(0.001 * i)
          if i == 5 then error("task five fails") end
          finished = finished + 1
        end)
      end
    end)
    assert.are.equal(9, finished)
  end)

  it("run returns main's results and raises main's error", function()
    assert.are.same({ 1, "two", nil, 4 },
      { async.run(function(a, b) return a, b, nil, 4 end, 1, "two") })
    local ok, err = pcall(async.run, function() error("main fails") end)
    assert.is_false(ok)
    assert.matches("main fails", err)
    assert.matches("stack traceback", err)  -- the task's own traceback comes with it
    ok, err = pcall(async.run, function() error({ code = 7 }) end)
    assert.is_false(ok)
    assert.are.same({ code = 7 }, err)
  end)

  it("run refuses to nest", function()
    local ok, err
    async.run(function() ok, err = pcall(async.run, function() end) end)
    assert.is_false(ok)
    assert.matches("already running", err)
  end)

  it("a plain coroutine.yield in a task lets the other tasks run", function()
    local log = {}
    async.run(function()
      async.spawn(function() log[#log + 1] = "other" end)
      coroutine.yield()
      log[#log + 1] = "main"
    end)
    assert.are.same({ "other", "main" }, log)
  end)
end)
