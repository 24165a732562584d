-- workers_spec.lua: serve{workers = N} and listen{workers = N}: worker processes that all
-- serve, restarts, graceful stop, reload under load, reuseport, and no worker outliving its
-- supervisor.
--
-- Each case starts support/workers_server.lua as a process of its own (the supervisor) and
-- ends by killing it with SIGKILL, after which every worker it had must be gone (PR_SET_PDEATHSIG).
-- Every wait is bounded.
local socket = require("socket")
local async = socket.async
local P = async._process
local H = require("support.helpers").use(_ENV)

local root = os.getenv("UVSOCKET_SOURCE_DIR") or "."
local LUA = H.LUA

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local text = f:read("a")
  f:close()
  return text
end

-- Whether process `pid` runs (a zombie does not count).
local function alive(pid)
  local status = read("/proc/" .. pid .. "/status")
  if status == "" then return false end
  return not status:match("State:%s*Z")
end

-- The live children of `pid`.
local function children(pid)
  local list = {}
  local text = read("/proc/" .. pid .. "/task/" .. pid .. "/children")
  for child in text:gmatch("%d+") do
    if alive(child) then list[#list + 1] = tonumber(child) end
  end
  table.sort(list)
  return list
end

local function wait_until(seconds, f)
  local t0 = socket.gettime()
  repeat
    local v = f()
    if v then return v end
    socket.sleep(0.02)
  until socket.gettime() - t0 > seconds
  return nil
end

local started = {}   -- the supervisors of the running case, and every worker seen

-- Starts the supervisor; returns { pid =, port =, out =, err = } once its workers serve.
local function start(mode, workers, reuseport)
  local base = os.tmpname()
  local sv = { out = base .. ".out", err = base .. ".err", workers = {}, base = base }
  local p = assert(io.popen(("%s %s/spec/support/workers_server.lua %s %d %s > %s 2> %s & echo $!")
    :format(LUA, root, mode, workers, reuseport and "reuseport" or "", sv.out, sv.err)))
  sv.pid = tonumber(p:read("l"))
  p:close()
  started[#started + 1] = sv
  sv.port = tonumber(wait_until(5, function() return read(sv.out):match("port (%d+)") end))
  assert(sv.port, "the supervisor did not bind: " .. read(sv.err))
  if mode ~= "failing" then
    assert(wait_until(5, function() return #children(sv.pid) == workers end),
      "workers did not start: " .. read(sv.err))
  end
  return sv
end

-- One request on a new connection: the answer's index and pid, or nil and the error.
local function ask(sv, path)
  local c = socket.tcp()
  c:settimeout(3)
  local ok, err = c:connect("127.0.0.1", sv.port)
  if not ok then
    c:close()
    return nil, err
  end
  local reply
  if path then
    ok, err = c:send("GET " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    if ok then reply, err = c:receive("*a") end
    if reply and not reply:match("^HTTP/1.1 200") then reply, err = nil, "bad reply " .. reply end
  else
    ok, err = c:send("hello\n")
    if ok then reply, err = c:receive() end
  end
  c:close()
  if not reply then return nil, err end
  local index, pid = reply:match("worker (%d+)/%d+ pid (%d+)")
  if not index then return nil, "no worker in " .. reply end
  sv.workers[tonumber(pid)] = true
  return tonumber(index), tonumber(pid)
end

-- Asks until every index 1..n has answered; returns index -> pid.
local function all_answer(sv, n, path)
  local pids, seen = {}, 0
  for _ = 1, 400 do
    local index, pid = ask(sv, path)
    assert(index, pid)
    if not pids[index] then seen = seen + 1 end
    pids[index] = pid
    if seen == n then return pids end
  end
  error("only " .. seen .. " of " .. n .. " workers answered")
end

-- Kills every supervisor of the case with SIGKILL; then none of their workers may be left.
local function kill_and_check()
  for _, sv in ipairs(started) do
    for _, pid in ipairs(children(sv.pid)) do sv.workers[pid] = true end
    if alive(sv.pid) then P.kill(sv.pid, "SIGKILL") end
    assert(wait_until(3, function() return not alive(sv.pid) end), "the supervisor survived")
    for pid in pairs(sv.workers) do
      assert(wait_until(3, function() return not alive(pid) end),
        "worker " .. pid .. " outlived its supervisor " .. sv.pid)
    end
    os.remove(sv.out)
    os.remove(sv.err)
    os.remove(sv.base)
  end
  started = {}
end

describe("worker processes", function()
  after_each(function()
    kill_and_check()
    H.assert_clean()
  end)

  it("two workers of the HTTP server both serve, each answering with its index", function()
    local sv = start("http", 2)
    local pids = all_answer(sv, 2, "/")
    assert.are_not.equal(pids[1], pids[2])
    local kids = children(sv.pid)
    assert.are.same({ math.min(pids[1], pids[2]), math.max(pids[1], pids[2]) }, kids)
  end)

  it("two workers of async.serve both serve", function()
    local sv = start("plain", 2)
    local pids = all_answer(sv, 2)
    assert.are_not.equal(pids[1], pids[2])
  end)

  it("a worker killed with SIGKILL is replaced under the same index", function()
    local sv = start("http", 2)
    local pids = all_answer(sv, 2, "/")
    assert(P.kill(pids[1], "SIGKILL"))
    local replaced = wait_until(5, function()
      local index, pid = ask(sv, "/")
      return index == 1 and pid ~= pids[1] and pid
    end)
    assert.is_truthy(replaced)
    assert.matches("PPid:%s*" .. sv.pid .. "\n", read("/proc/" .. replaced .. "/status"))
    assert.matches("worker 1 %(pid " .. pids[1] .. "%) ended %(signal SIGKILL%); restarting",
      read(sv.err))
    assert.are.equal(2, #children(sv.pid))
    assert.is_false(alive(pids[1]))
  end)

  it("SIGTERM drains: a slow request completes, new connections are refused", function()
    local sv = start("http", 2)
    all_answer(sv, 2, "/")
    local c = assert(socket.connect("127.0.0.1", sv.port))
    c:settimeout(6)
    assert(c:send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert(wait_until(3, function() return read(sv.out):match("slow started") end))
    local t0 = socket.gettime()
    assert(P.kill(sv.pid, "SIGTERM"))
    local refused = wait_until(1.5, function()
      local _, err = ask(sv, "/")
      return err == "connection refused"
    end)
    assert.is_true(refused, "new connections still accepted after the drain started")
    assert.is_true(socket.gettime() - t0 < 1.8, "refused only after the slow request ended")
    local reply, err = c:receive("*a")
    c:close()
    assert.is_nil(err)
    assert.matches("^HTTP/1.1 200", reply)
    assert.matches("slow done$", reply)
    assert.is_truthy(wait_until(5, function()
      return read(sv.out):match("supervisor returned true")
    end), "the supervisor did not return: " .. read(sv.err))
    assert(wait_until(3, function() return not alive(sv.pid) end))
  end)

  it("SIGHUP reloads under load without a refused or reset connection", function()
    local sv = start("http", 2)
    local first = all_answer(sv, 2, "/")
    local done, errors, pids = 0, {}, {}
    async.run(function()
      local stop = false
      local g = async.group()
      for _ = 1, 4 do
        g:spawn(function()
          while not stop do
            local index, pid = ask(sv, "/")
            if index then
              done = done + 1
              pids[pid] = true
            else
              errors[#errors + 1] = pid
            end
          end
        end)
      end
      async.sleep(0.5)
      assert(P.kill(sv.pid, "SIGHUP"))
      async.sleep(1)
      assert(P.kill(sv.pid, "SIGHUP"))
      async.sleep(1)
      stop = true
      g:wait(5)
    end)
    if os.getenv("WORKERS_VERBOSE") then
      io.stderr:write(("reload under load: %d requests, %d errors\n"):format(done, #errors))
    end
    assert.are.same({}, errors)
    assert.is_true(done >= 100, "only " .. done .. " requests")
    local gens = 0
    for _ in pairs(pids) do gens = gens + 1 end
    assert.is_true(gens >= 4, "answers from " .. gens .. " workers only")
    -- The first generation has drained and left; two workers of the last one serve.
    assert(wait_until(5, function()
      return not alive(first[1]) and not alive(first[2]) and #children(sv.pid) == 2
    end), "the old workers did not leave")
    local last = all_answer(sv, 2, "/")
    assert.are_not.equal(first[1], last[1])
    assert.are_not.equal(first[2], last[2])
  end)

  it("reuseport gives each worker a listener of its own, and every worker serves", function()
    local sv = start("http", 2, true)
    local pids = all_answer(sv, 2, "/")
    assert.are_not.equal(pids[1], pids[2])
    local plain = start("plain", 2, true)
    all_answer(plain, 2)
  end)

  it("a worker that fails at once is restarted with a back-off", function()
    local sv = start("failing", 1)
    socket.sleep(1.5)
    local _, restarts = read(sv.err):gsub("restarting", "")
    -- at once, then 0.1, 0.2, 0.4, 0.8 s: about 5 in 1.5 s (not hundreds)
    assert.is_true(restarts >= 2 and restarts <= 10, restarts .. " restarts")
    assert.matches("init_worker fails", read(sv.err))
    assert.is_true(alive(sv.pid))
  end)

  it("async.worker() is nil outside workers", function()
    assert.is_nil(async.worker())
    assert.is_false(async.exiting())
  end)

  it("serve with workers inside async.run is refused before anything forks", function()
    local srv = assert(socket.bind("127.0.0.1", 0))
    async.run(function()
      local ok, err = pcall(async.serve, srv, function() end, { workers = 2 })
      assert.is_false(ok)
      assert.matches("outside socket.async.run", err)
    end)
    srv:close()
  end)

  it("a runtime still watching a socket is not forked", function()
    local srv = assert(socket.bind("127.0.0.1", 0))
    local kept = assert(socket.bind("127.0.0.1", 0))
    async.run(function()
      kept:settimeout(0.01)
      kept:accept()          -- the loop now watches kept's descriptor
    end)
    local ok, err = pcall(async.serve, srv, function() end, { workers = 2 })
    assert.is_false(ok)
    assert.matches("cannot start workers: 1 descriptor%(s%) are watched", err)
    kept:close()
    -- once it is closed, nothing stands in the way (checked without forking)
    assert.is_true(P.forkable())
    srv:close()
  end)

  it("listen's worker options are checked, and listen with workers refuses a task", function()
    local server = require("socket.http.server")
    local h = function() end
    for _, case in ipairs({
      { { handler = h, workers = -1 }, "workers must be an integer >= 0" },
      { { handler = h, workers = 1, grace = 0 / 0 }, "grace must be a number >= 0" },
      { { handler = h, workers = 1, init_worker = "x" }, "init_worker must be a function" },
    }) do
      local ok, err = pcall(server.listen, case[1])
      assert.is_false(ok)
      assert.matches(case[2], err, 1, true)
    end
    async.run(function()
      local ok, err = pcall(server.listen, { handler = h, workers = 2 })
      assert.is_false(ok)
      assert.matches("with workers must be called outside socket.async.run", err, 1, true)
      ok, err = pcall(server.listen, { handler = h, reuseport = true })
      assert.is_false(ok)
      assert.matches("reuseport needs workers", err, 1, true)
    end)
  end)

  it("bad options raise argument errors", function()
    local srv = assert(socket.bind("127.0.0.1", 0))
    for _, case in ipairs({
      { { workers = -1 }, "workers must be an integer >= 0" },
      { { workers = 1.5 }, "workers must be an integer >= 0" },
      { { workers = 1, grace = "x" }, "grace must be a number >= 0" },
      { { workers = 1, init = 3 }, "init must be a function" },
      { { workers = 1, bogus = 1 }, "unknown option 'bogus'" },
      { { workers = 1, reuseport = true }, "with reuseport: a tcp{master} bound" },
    }) do
      local ok, err = pcall(async.serve, srv, function() end, case[1])
      assert.is_false(ok)
      assert.matches(case[2], err, 1, true)
    end
    srv:close()
  end)
end)
