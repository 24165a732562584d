-- ftp_spec.lua: socket.ftp against a real FTP server on loopback (python3-pyftpdlib, see
-- support/ftpd.py): uploads and downloads in passive and active mode, in blocking mode and as
-- tasks, the URL and table forms, ftp.command, the low-level session, and the errors.
local socket = require("socket")
local ftp = require("socket.ftp")
local ltn12 = require("ltn12")
local async = socket.async
local H = require("support.helpers").use(_ENV)
local S = require("support.servers")

-- A deterministic binary string of `size` bytes, every byte value present.
local function binary(size, seed)
  local t, x = {}, seed or 99
  for i = 1, 65536 do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x % 256)
  end
  local block = table.concat(t)
  return (block:rep(size // #block + 1)):sub(1, size)
end

local TEN_MB = binary(10 * 1024 * 1024)

local server

local function base(user)
  return "ftp://" .. (user or "user:secret@") .. "127.0.0.1:" .. server.port
end

describe("socket.ftp", function()
  setup(function() server = S.ftpd() end)
  teardown(function()
    if server then server:stop() end
    H.cleanup()
  end)

  describe("module", function()
    it("has LuaSocket's fields and stores itself in the socket namespace", function()
      assert.are.equal(ftp, socket.ftp)
      assert.are.equal(60, ftp.TIMEOUT)
      assert.are.equal("ftp", ftp.USER)
      assert.are.equal("anonymous@anonymous.org", ftp.PASSWORD)
      for _, f in ipairs({ "get", "put", "command", "open", "genericform" }) do
        assert.is_function(ftp[f], f)
      end
    end)

    it("parses ftp URLs like LuaSocket, and rejects the wrong ones", function()
      local t = ftp.genericform("ftp://a%40b:p%3aw@host:2121/dir/file%20x;type=i")
      assert.are.equal("host", t.host)
      assert.are.equal("2121", t.port)
      assert.are.equal("a@b", t.user)
      assert.are.equal("p:w", t.password)
      assert.are.equal("/dir/file%20x", t.path)
      assert.are.equal("i", t.type)
      assert.are.same({ nil, "wrong scheme 'http'" }, { ftp.get("http://h/x") })
      assert.are.same({ nil, "missing hostname" }, { ftp.get("ftp:///x") })
      assert.are.same({ nil, "invalid type 'x'" }, { ftp.get("ftp://h/x;type=x") })
      assert.are.same({ nil, "missing hostname" }, { ftp.put({ path = "/x" }) })
      assert.has_error(function() ftp.get(1) end,
        "bad argument #1 to 'get' (string or table expected, got number)")
    end)
  end)

  H.modes("transfers", function(run, mode)
    for _, passive in ipairs({ true, false }) do
      local how = passive and "passive" or "active"
      it("uploads then downloads 10 MB byte for byte (" .. how .. ")", function()
        run(function()
          local name = "/ten-" .. mode .. "-" .. how .. ".bin"
          local sent = ftp.put({ url = base() .. name, type = "i", passive = passive,
            source = ltn12.source.string(TEN_MB) })
          assert.are.equal(#TEN_MB, sent)
          -- (the server may still be closing the file when its 226 reply arrives)
          local stored
          for _ = 1, 60 do
            stored = S.read(server.home .. name)
            if stored and #stored == #TEN_MB then break end
            socket.sleep(0.05)
          end
          assert.is_true(stored == TEN_MB, "the stored file differs")
          local parts = {}
          local r = ftp.get({ url = base() .. name, type = "i", passive = passive,
            sink = ltn12.sink.table(parts) })
          assert.are.equal(1, r)
          assert.is_true(table.concat(parts) == TEN_MB, "the downloaded file differs")
        end)
      end)
    end

    it("puts and gets in the simple form, with the login from the URL", function()
      run(function()
        local name = "/simple-" .. mode .. ".txt"
        assert.are.equal(14.0, ftp.put(base() .. name .. ";type=a", "simple content"))
        assert.are.equal("simple content", ftp.get(base() .. name))
        -- the default login (ftp.USER, ftp.PASSWORD) is anonymous: its home is pub/
        assert.are.equal(5.0, ftp.put(base("") .. "/anon-" .. mode, "anon!"))
        assert.are.equal("anon!", S.read(server.home .. "/pub/anon-" .. mode))
        assert.are.equal("anon!", ftp.get(base("") .. "/anon-" .. mode))
      end)
    end)

    it("lists a directory with command = 'nlst'", function()
      run(function()
        assert.truthy(ftp.put(base() .. "/listed-" .. mode, "x"))
        local parts = {}
        assert.are.equal(1, ftp.get({ url = base() .. "/", command = "nlst",
          sink = ltn12.sink.table(parts) }))
        assert.matches("listed%-" .. mode, table.concat(parts))
      end)
    end)

    it("sends commands with ftp.command and checks their replies", function()
      run(function()
        assert.are.equal(1, ftp.command({ url = base(), command = "mkd",
          argument = "dir-" .. mode, check = 257 }))
        assert.are.equal(1, ftp.command({ host = "127.0.0.1", port = server.port,
          user = "user", password = "secret",
          command = { "cwd", "rmd" }, argument = { "/", "dir-" .. mode },
          check = { 250, "2.." } }))
        local r, err = ftp.command({ url = base(), command = "rmd", argument = "nope",
          check = "2.." })
        assert.is_nil(r)
        assert.matches("^550", err)
        assert.are.same({ nil, "missing command" }, { ftp.command({ url = base() }) })
      end)
    end)

    it("returns the server's reply for missing files and bad logins", function()
      run(function()
        local r, err = ftp.get(base() .. "/no/such/file")
        assert.is_nil(r)
        assert.matches("^550", err)
        r, err = ftp.get("ftp://user:wrong@127.0.0.1:" .. server.port .. "/x")
        assert.is_nil(r)
        assert.matches("^530", err)
        local srv, port = H.server()
        srv:close()
        r, err = ftp.get("ftp://127.0.0.1:" .. port .. "/x")
        assert.is_nil(r)
        assert.are.equal("connection refused", err)
      end)
    end)

    it("fails an upload whose source fails", function()
      run(function()
        local r, err = ftp.put({ url = base() .. "/broken-" .. mode,
          source = ltn12.source.cat(ltn12.source.string("some"), ltn12.source.error("boom")) })
        assert.is_nil(r)
        assert.are.equal("boom", err)
      end)
    end)

    it("drives a session with the low-level object", function()
      run(function()
        local f = ftp.open("127.0.0.1", server.port)
        local ok, err = socket.protect(function()
          f:greet()
          f:login("user", "secret")
          f:type("i")
          f:cwd("/")
          -- PASV, EPSV, PORT and EPRT in turn, each for one upload and one download
          local modes = {
            function() return f:pasv() end,
            function() return f:epsv() end,
            function() return f:port() end,
            function() return f:eprt() end,
          }
          for i, setup_mode in ipairs(modes) do
            local name = "low-" .. mode .. "-" .. i
            local data = binary(100000 + i, i)
            setup_mode()
            assert.are.equal(#data, f:send({ argument = name, source = ltn12.source.string(data) }))
            setup_mode()
            local parts = {}
            assert.are.equal(1, f:receive({ path = "/" .. name, sink = ltn12.sink.table(parts) }))
            assert.is_true(table.concat(parts) == data, name)
          end
          return 1
        end)()
        assert.are.equal(1, ok, err)
        -- a transfer without PASV/EPSV/PORT/EPRT first fails, and closes the session
        local r
        r, err = socket.protect(function() return f:send({ argument = "x" }) end)()
        assert.is_nil(r)
        assert.are.equal("need port or pasv first", err)
        -- the failed send above closed the session (try's finalizer)
        assert.are.equal(1, f:close())
      end)
    end)
  end)

  describe("from tasks", function()
    after_each(H.assert_clean)

    it("runs transfers of several tasks at the same time", function()
      local results, finished = {}, 0
      async.run(function()
        for i = 1, 6 do
          async.spawn(function()
            local data = binary(1500000 + i, i)
            local name = "/task-" .. i .. ".bin"
            local sent, err = ftp.put({ url = base() .. name, type = "i",
              source = ltn12.source.string(data), passive = i % 2 == 0 })
            local got, gerr = ftp.get(base() .. name .. ";type=i")
            results[i] = sent == #data and got == data
              or ("put: %s %s, get: %s %s"):format(sent, err, got and #got, gerr)
            finished = finished + 1
          end)
        end
        while finished < 6 do async.sleep(0.01) end
      end)
      for i = 1, 6 do assert.are.equal(true, results[i], "task " .. i) end
    end)
  end)
end)
