-- idle_collect_spec.lua: the full collection an idle loop makes after a burst of work
-- (docs/async.md, async.run): once the loop has had nothing to do for 100 ms, the garbage the
-- burst left is collected, once, and the loop is then left asleep.
local H = require("support.helpers").use(_ENV)
local socket = require("socket")
local async = socket.async

-- About `mb` MiB of garbage, whose finalizer records when it was collected in `seen.at`.
local function burst(mb, seen)
  local junk = {}
  for i = 1, mb * 1024 do junk[i] = string.rep("x", 1000) .. i end
  setmetatable(junk, { __gc = function() seen.at = async.now() end })
end

-- Runs `f` with a collector that starts no cycle of its own meanwhile (a pause of 1000 %, from
-- a full collection), so that only the idle collection can collect the burst.
local function quiet_collector(f)
  local pause = collectgarbage("setpause", 1000)
  collectgarbage()
  local ok, err = pcall(f)
  collectgarbage("setpause", pause)
  assert(ok, err)
end

describe("idle collection", function()
  after_each(H.assert_clean)

  it("collects what a burst left behind once the loop is idle, once", function()
    local seen = {}
    quiet_collector(function()
      async.run(function()
        local before = async._debug().idle_collections
        burst(3, seen)
        local t0 = async.now()
        async.sleep(0.6)
        assert.is_not_nil(seen.at, "the burst was not collected")
        assert.is_true(seen.at - t0 < 0.4, ("collected after %.3f s"):format(seen.at - t0))
        assert.are.equal(before + 1, async._debug().idle_collections)
        async.sleep(0.4)  -- nothing new to collect: the loop is left alone
        assert.are.equal(before + 1, async._debug().idle_collections)
      end)
    end)
  end)

  it("leaves the heap alone while collectgarbage('stop') is in force", function()
    local seen = {}
    quiet_collector(function()
      collectgarbage("stop")
      local ok, err = pcall(async.run, function()
        local before = async._debug().idle_collections
        burst(3, seen)
        async.sleep(0.4)
        assert.is_nil(seen.at)
        assert.are.equal(before, async._debug().idle_collections)
      end)
      collectgarbage("restart")
      assert(ok, err)
    end)
  end)

  it("needs a burst: a loop that allocated little makes no collection", function()
    quiet_collector(function()
      async.run(function()
        async.sleep(0.3)  -- the first idle period of a run may still find a burst before it
        local before = async._debug().idle_collections
        for _ = 1, 5 do
          local _ = { string.rep("y", 1000) }
          async.sleep(0.15)
        end
        assert.are.equal(before, async._debug().idle_collections)
      end)
    end)
  end)
end)
