-- crawler.lua: crawls a web site, following the links of every page on the same host, with at
-- most N requests at a time; the requests share one keep-alive pool of socket.http, so N
-- connections carry the whole crawl.
--
--   lua5.4 examples/crawler.lua url [max-pages [concurrency]]   crawl a site (default 100, 4)
--   lua5.4 examples/crawler.lua --check   crawl a site of 60 pages served by this program
local socket = require("socket")
local http = require("socket.http")
local url = require("socket.url")
local ltn12 = require("ltn12")
local async = socket.async

-- Crawls from `start`: returns {pages = pages fetched, failed = {url = error or code}} and the
-- pool's stats. At most `concurrency` requests run at once, and at most `max_pages` pages are
-- asked for.
local function crawl(start, max_pages, concurrency)
  local pool = http.pool({ max_per_key = concurrency })
  local limit = async.semaphore(concurrency)
  local origin = url.parse(start)
  local seen, asked = {}, 0
  local result = { pages = 0, failed = {} }
  local g = async.group()

  local function visit(u)
    if seen[u] or asked >= max_pages then return end
    seen[u], asked = true, asked + 1
    g:spawn(function()
      limit:acquire()
      local parts = {}
      local ok, code, headers = http.request({ url = u, pool = pool,
        sink = ltn12.sink.table(parts) })
      limit:release()
      if not ok or code ~= 200 then
        result.failed[u] = ok and code or tostring(code)
        return
      end
      result.pages = result.pages + 1
      if not (headers["content-type"] or ""):find("html", 1, true) then return end
      for href in table.concat(parts):gmatch("<a [^>]*href=\"([^\"#]+)") do
        local target = url.absolute(u, href)
        local t = url.parse(target)
        if t.scheme == origin.scheme and t.host == origin.host and t.port == origin.port then
          visit(target)
        end
      end
    end)
  end

  visit(start)
  g:wait()
  local stats = pool:stats()
  pool:close()
  return result, stats
end

local function report(result, stats, concurrency, took)
  local failed = 0
  for u, why in pairs(result.failed) do
    failed = failed + 1
    print(("failed: %s (%s)"):format(u, why))
  end
  print(("crawled %d pages (%d failed) in %.2f s with %d at a time: %d connections, %d reused")
    :format(result.pages, failed, took, concurrency, stats.created, stats.reused))
end

-- The self-check's site: /page/N for N = 1..PAGES, each linking to five others (and once in a
-- while to a page that does not exist or to another host), served with keep-alive.
local PAGES = 60

local function serve_site()
  local server = require("socket.http.server")
  local accepted = 0
  local srv = assert(server.listen({
    wrap = function(client) accepted = accepted + 1; return client end,
    handler = function(req, res)
      local n = tonumber(req.path:match("^/page/(%d+)$"))
      if not n or n > PAGES then
        res:status(404):finish("no such page\n")
        return
      end
      local links = {}
      for k = 1, 5 do
        links[#links + 1] = ('<a href="/page/%d">page</a>'):format((n * 7 + k * 13) % PAGES + 1)
      end
      if n % 10 == 0 then links[#links + 1] = '<a href="http://elsewhere.invalid/">away</a>' end
      res:header("Content-Type", "text/html")
      res:finish("<html><body><h1>page " .. n .. "</h1>" .. table.concat(links, " ")
        .. "</body></html>\n")
    end,
  }))
  return srv, function() return accepted end
end

if arg[1] == "--check" then
  local ok = async.run(function()
    local srv, accepted = serve_site()
    local _, port = srv:getsockname()
    local concurrency = 4
    local t0 = async.now()
    -- every page is reachable from /page/1 through the links (7n + 13k mod 60 covers them)
    local result, stats = crawl(("http://127.0.0.1:%d/page/1"):format(port), 1000, concurrency)
    report(result, stats, concurrency, async.now() - t0)
    async.shutdown(0)
    print(("the server accepted %d connections"):format(accepted()))
    return result.pages == PAGES and next(result.failed) == nil
      and stats.created <= concurrency and accepted() == stats.created
      and stats.reused == PAGES - stats.created
  end)
  os.exit(ok and 0 or 1)
end

local start = arg[1]
if not start then
  io.stderr:write("usage: crawler.lua url [max-pages [concurrency]] | --check\n")
  os.exit(2)
end
local max_pages, concurrency = tonumber(arg[2]) or 100, tonumber(arg[3]) or 4
async.run(function()
  local t0 = async.now()
  local result, stats = crawl(start, max_pages, concurrency)
  report(result, stats, concurrency, async.now() - t0)
end)
