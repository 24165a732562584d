-- docs_spec.lua: every function and method the module registers has a heading in the
-- reference documentation (docs/reference/*.md).
local socket = require("socket")
require("socket.unix")

local root = os.getenv("UVSOCKET_SOURCE_DIR") or "."

local function headings(file)
  local f = assert(io.open(root .. "/docs/" .. file))
  local text = f:read("a")
  f:close()
  local names = {}
  for line in text:gmatch("[^\n]+") do
    if line:match("^###") then
      -- every `name(` or `.name(` or `:name(` inside the heading counts
      for name in line:gmatch("[%.:]?([%w_]+)%s*%(") do names[name] = true end
      for name in line:gmatch("`([%w_]+)`") do names[name] = true end
      for name in line:gmatch("/ ([%w_]+)") do names[name] = true end
    end
  end
  return names
end

local function methods_of(class)
  local mt = debug.getregistry()[class]
  local list = {}
  for name, v in pairs(mt.__index) do
    if type(v) == "function" then list[#list + 1] = name end
  end
  table.sort(list)
  return list
end

describe("the reference documents", function()
  local cases = {
    { "reference/tcp.md", { "tcp{master}", "tcp{client}", "tcp{server}" } },
    { "reference/udp.md", { "udp{unconnected}", "udp{connected}" } },
    { "reference/unix.md", { "unixstream{master}", "unixdgram{unconnected}" } },
    { "reference/tls.md", { "tls{client}" } },
  }
  for _, case in ipairs(cases) do
    it("every method of " .. table.concat(case[2], ", ") .. " in " .. case[1], function()
      local documented = headings(case[1])
      for _, class in ipairs(case[2]) do
        for _, m in ipairs(methods_of(class)) do
          assert.is_true(documented[m] == true, class .. ":" .. m .. " is not in " .. case[1])
        end
      end
    end)
  end

  local function check_namespace(tbl, file, skip)
    local documented = headings(file)
    for name, v in pairs(tbl) do
      if type(v) == "function" and not (skip and skip[name]) and not name:match("^__") then
        assert.is_true(documented[name] == true, name .. " is not in " .. file)
      end
    end
  end

  it("every function of socket in socket.md", function()
    check_namespace(socket, "reference/socket.md")
  end)

  it("every function of socket.dns in dns.md", function()
    check_namespace(socket.dns, "reference/dns.md")
  end)

  it("every function of socket.async in async.md", function()
    check_namespace(socket.async, "async.md")
  end)

  it("every method of tasks and of the synchronisation objects in async.md", function()
    local documented = headings("async.md")
    local text = assert(io.open(root .. "/docs/async.md")):read("a")
    for name, v in pairs(debug.getregistry()["async.task"].__index) do
      if type(v) == "function" then
        assert.is_true(documented[name] == true, "task:" .. name .. " is not in async.md")
      end
    end
    local async = socket.async
    local objects = { lock = async.lock(), semaphore = async.semaphore(), queue = async.queue(),
      event = async.event(), condition = async.condition(), group = async.group() }
    for kind, obj in pairs(objects) do
      for name, v in pairs(getmetatable(obj).__index) do
        if type(v) == "function" and not name:match("^__") then
          assert.is_truthy(text:find(":" .. name .. "%(") or documented[name],
            kind .. ":" .. name .. " is not in async.md")
        end
      end
    end
  end)

  it("every function and method of socket.http.core in http-core.md", function()
    local core = require("socket.http.core")
    check_namespace(core, "reference/http-core.md")
    local documented = headings("reference/http-core.md")
    local objects = { core.parser("request"), core.chunked(), core.ws_parser("server") }
    for _, obj in ipairs(objects) do
      for name, v in pairs(getmetatable(obj).__index) do
        if type(v) == "function" then
          assert.is_true(documented[name] == true, name .. " is not in http-core.md")
        end
      end
    end
  end)

  -- The server and websocket modules: their functions and the methods of their objects (names
  -- starting with "_" are internal).
  local function check_classes(file, mod, classes)
    local documented = headings(file)
    local internal = { _ = true }
    for name, v in pairs(mod) do
      if type(v) == "function" and not name:match("^_") then
        assert.is_true(documented[name] == true, name .. " is not in " .. file)
      end
    end
    for _, class in ipairs(classes) do
      for name, v in pairs(mod[class]) do
        if type(v) == "function" and not name:match("^_") and not internal[name] then
          assert.is_true(documented[name] == true, class .. ":" .. name .. " is not in " .. file)
        end
      end
    end
  end

  it("every function and method of socket.http.server in http-server.md", function()
    check_classes("reference/http-server.md", require("socket.http.server"),
      { "Request", "Response", "Server" })
  end)

  it("every function and method of socket.websocket in websocket.md", function()
    check_classes("reference/websocket.md", require("socket.websocket"), { "WebSocket" })
  end)

  it("every function of socket.http.pool and method of its pools in http-pool.md", function()
    local pool = require("socket.http.pool")
    check_namespace(pool, "reference/http-pool.md")
    -- methods starting with "_" are socket.http's, not the program's
    local internal = {}
    for name in pairs(pool.Pool) do
      if name:match("^_") then internal[name] = true end
    end
    check_namespace(pool.Pool, "reference/http-pool.md", internal)
  end)

  it("every function of socket.tls in tls.md", function()
    local tls, internal = require("socket.tls"), {}
    for name in pairs(tls) do
      if name:match("^_") then internal[name] = true end  -- shared with socket.http, internal
    end
    check_namespace(tls, "reference/tls.md", internal)
  end)

  for _, mod in ipairs({ "http", "ftp", "smtp", "tp" }) do
    it("every function of socket." .. mod .. " in " .. mod .. ".md", function()
      local m, internal = require("socket." .. mod), {}
      if mod == "tp" then
        for name in pairs(m) do
          if name:match("^_") then internal[name] = true end  -- shared with socket.http
        end
      end
      check_namespace(m, "reference/" .. mod .. ".md", internal)
    end)
  end
end)
