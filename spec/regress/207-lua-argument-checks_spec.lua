-- Regression 207: wrong arguments to the Lua modules failed later, as "attempt to ..." errors
-- from inside them, or were taken silently.
--
-- spec/args_spec.lua, calling every public function with random arguments, found these: the
-- methods of async.lock, semaphore, queue, event, condition and group indexed whatever `self`
-- was and did arithmetic on their timeout; async.after and every took NaN (every then fired in
-- a busy loop); socket.bind passed its host to dns.getaddrinfo unchecked; socket.choose,
-- socket.sink, socket.source, the mime filter factories and ltn12's file source and sink
-- accepted values they would fail on at the first chunk. Each now raises a standard argument
-- error at the call.
local socket = require("socket")
local ltn12 = require("ltn12")
local mime = require("mime")
local async = socket.async
local H = require("support.helpers").use(_ENV)

local function f() end

-- { description, function, expected message (a plain string) }
local CASES = {
  { "lock:lock timeout", function() async.lock():lock("x") end,
    "bad argument #1 to 'lock' (number expected, got string)" },
  { "lock self", function() async.lock().lock(42) end,
    "calling 'lock' on bad self (async.lock expected, got number)" },
  { "lock:unlock self", function() async.lock().unlock({}) end,
    "calling 'unlock' on bad self (async.lock expected, got table)" },
  { "semaphore NaN", function() async.semaphore(0 / 0) end,
    "bad argument #1 to 'semaphore' (non-negative number expected)" },
  { "semaphore:acquire timeout", function() async.semaphore():acquire({}) end,
    "bad argument #1 to 'acquire' (number expected, got table)" },
  { "semaphore:release self", function() async.semaphore().release() end,
    "calling 'release' on bad self (async.semaphore expected, got no value)" },
  { "queue NaN", function() async.queue(0 / 0) end,
    "bad argument #1 to 'queue' (non-negative number expected)" },
  { "queue:get timeout", function() async.queue():get({}) end,
    "bad argument #1 to 'get' (number expected, got table)" },
  { "queue:put timeout", function() async.queue():put(1, "soon") end,
    "bad argument #2 to 'put' (number expected, got string)" },
  { "queue:length self", function() async.queue().length(io.stdout) end,
    "calling 'length' on bad self (async.queue expected, got FILE*)" },
  { "event:wait timeout", function() async.event():wait(true) end,
    "bad argument #1 to 'wait' (number expected, got boolean)" },
  { "event:set self", function() async.event().set("x") end,
    "calling 'set' on bad self (async.event expected, got string)" },
  { "condition:wait timeout", function() async.condition():wait(f) end,
    "bad argument #1 to 'wait' (number expected, got function)" },
  { "condition:signal self", function() async.condition().signal(1) end,
    "calling 'signal' on bad self (async.condition expected, got number)" },
  { "group:wait timeout", function() async.group():wait("x") end,
    "bad argument #1 to 'wait' (number expected, got string)" },
  { "group:spawn function", function() async.group():spawn(42) end,
    "bad argument #1 to 'spawn' (function expected, got number)" },
  { "group:cancel self", function() async.group().cancel(nil) end,
    "calling 'cancel' on bad self (async.group expected, got no value)" },
  { "after NaN", function() async.after(0 / 0, f) end,
    "bad argument #1 to 'after' (number expected, got nan)" },
  { "after function", function() async.after(1, 42) end,
    "bad argument #2 to 'after' (function expected, got number)" },
  { "every NaN", function() async.every(0 / 0, f) end,
    "bad argument #1 to 'every' (positive number expected)" },
  { "socket.bind host", function() socket.bind({}, 0) end,
    "bad argument #1 to 'bind' (string expected, got table)" },
  { "socket.bind port", function() socket.bind("127.0.0.1", {}) end,
    "bad argument #2 to 'bind' (string expected, got table)" },
  { "socket.bind backlog", function() socket.bind("127.0.0.1", 0, "many") end,
    "bad argument #3 to 'bind' (number expected, got string)" },
  { "socket.choose", function() socket.choose(42) end,
    "bad argument #1 to 'choose' (table expected, got number)" },
  { "socket.sink socket", function() socket.sink("keep-open", 42) end,
    "bad argument #2 to 'sink' (socket expected, got number)" },
  { "socket.source socket", function() socket.source("until-closed", "x") end,
    "bad argument #2 to 'source' (socket expected, got string)" },
  { "socket.source length", function() socket.source("by-length", socket.tcp(), "x") end,
    "bad argument #3 to 'source' (number expected, got string)" },
  { "mime.normalize", function() mime.normalize({}) end,
    "bad argument #1 to 'normalize' (string expected, got table)" },
  { "mime.wrap", function() mime.wrap("text", {}) end,
    "bad argument #2 to 'wrap' (number expected, got table)" },
  { "mime.encode", function() mime.encode("quoted-printable", f) end,
    "bad argument #2 to 'encode' (string expected, got function)" },
  { "ltn12.source.file", function() ltn12.source.file(42) end,
    "bad argument #1 to 'file' (file expected, got number)" },
  { "ltn12.sink.file", function() ltn12.sink.file({}) end,
    "bad argument #1 to 'file' (file expected, got table)" },
  { "ltn12.source.file of a socket", function() ltn12.source.file(socket.tcp()) end,
    "bad argument #1 to 'file' (file expected, got userdata)" },
}

H.modes("regression 207", function(run)
  for _, case in ipairs(CASES) do
    it(case[1], function()
      run(function()
        local ok, err = pcall(case[2])
        assert.is_false(ok)
        assert.is_string(err)
        assert.are.equal(case[3], (err:gsub("^[^:]+:%d+: ", "")))
      end)
    end)
  end

  it("valid arguments are still taken", function()
    run(function()
      assert.is_table(async.semaphore(2))
      assert.is_table(async.queue(0))
      assert.is_function(mime.normalize("\n"))
      assert.is_function(mime.wrap("text", 60))
      assert.is_function(mime.encode("quoted-printable", "binary"))
      assert.is_function(ltn12.source.file(nil, "no file"))
      local tmp = io.tmpfile()
      assert.is_function(ltn12.source.file(tmp))
      assert.is_function(ltn12.sink.file(tmp))
      tmp:close()
      assert.is_function(socket.choose({}))
      assert.is_table(socket.sink("keep-open", socket.tcp()))
      assert.is_nil(socket.bind("127.0.0.1", "not a port"))
    end)
  end)
end)
