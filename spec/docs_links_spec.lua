-- docs_links_spec.lua: scripts/check-docs-links.py, the link check of the HTML documentation,
-- finds missing files and missing anchors, follows directory links to their index.html, leaves
-- external links alone, and passes a tree without broken links.
local root = os.getenv("UVSOCKET_SOURCE_DIR") or "."

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function check(dir)
  -- python3 is not ours: keep the sanitizer build's preload away from it
  local script = root .. "/scripts/check-docs-links.py"
  local p = assert(io.popen(("env -u LD_PRELOAD python3 %q %q 2>&1"):format(script, dir)))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("check-docs-links.py", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute(("mkdir -p %q/sub"):format(dir)))
    write(dir .. "/b.html", '<h2 id="there">There</h2><a name="old">old</a>')
    write(dir .. "/sub/index.html", '<a href="../b.html#old">back</a>')
  end)
  after_each(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("reports each missing file and anchor, with its page and line, and fails", function()
    write(dir .. "/a.html", table.concat({
      '<p id="top"><a href="b.html">b</a> <a href="b.html#there">there</a>',
      '<a href="missing.html">gone</a> <img src="pic.png">',
      '<a href="b.html#nowhere">no anchor</a> <a href="#top">self</a> <a href="#bottom">x</a>',
      '<a href="sub/">dir</a> <a href="https://example.org/x.html#y">out</a>',
      '<a href="mailto:a@b">mail</a></p>' }, "\n"))
    local ok, out = check(dir)
    assert.is_falsy(ok)
    assert.matches("a.html:2: missing.html: no such file", out, 1, true)
    assert.matches("a.html:2: pic.png: no such file", out, 1, true)
    assert.matches("a.html:3: b.html#nowhere: no id 'nowhere' in b.html", out, 1, true)
    assert.matches("a.html:3: #bottom: no id 'bottom' in a.html", out, 1, true)
    assert.matches("3 pages, 9 internal links, 4 broken", out, 1, true)
  end)

  it("passes a tree whose links all resolve", function()
    write(dir .. "/a.html", '<a id="top" href="b.html#there">b</a> <a href="sub/">s</a>'
      .. ' <a href="#top">t</a>')
    local ok, out = check(dir)
    assert.is_true(ok, out)
    assert.matches("3 pages, 4 internal links, 0 broken", out, 1, true)
  end)
end)
