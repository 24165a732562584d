-- url_spec.lua: socket.url (lua/socket/url.lua): escaping, parse/build, RFC 3986 reference
-- resolution, path segments.
local socket = require("socket")
local url = require("socket.url")

describe("socket.url", function()
  it("stores itself in the socket namespace", function()
    assert.are.equal(url, socket.url)
    assert.matches("^URL 1%.0%.3", url._VERSION)
  end)

  describe("escape and unescape", function()
    it("escape keeps letters, digits and _ and writes the rest as lower-case %xx", function()
      assert.are.equal("%2f%23%3f%3b", url.escape("/#?;"))
      assert.are.equal("abc_XYZ_019", url.escape("abc_XYZ_019"))
      assert.are.equal("a%20b%2dc%2e%7e%00%ff", url.escape("a b-c.~\0\255"))
      assert.are.equal("", url.escape(""))
      assert.are.equal("12", url.escape(12))
    end)

    it("unescape decodes %XX in either case and leaves other % alone", function()
      assert.are.equal("/#?;", url.unescape("%2f%23%3F%3B"))
      assert.are.equal("100% sure %zz %4", url.unescape("100% sure %zz %4"))
      assert.are.equal("a\0b", url.unescape("a%00b"))
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      assert.are.equal(all, url.unescape(url.escape(all)))
    end)
  end)

  describe("parse", function()
    it("splits every component", function()
      assert.are.same({
        scheme = "scheme", authority = "user:password@host:port", userinfo = "user:password",
        user = "user", password = "password", host = "host", port = "port", path = "/path",
        params = "params", query = "query", fragment = "fragment",
      }, url.parse("scheme://user:password@host:port/path;params?query#fragment"))
    end)

    it("sets only the fields present", function()
      assert.are.same({ authority = "host", host = "host" }, url.parse("//host"))
      assert.are.same({ path = "/path" }, url.parse("/path"))
      assert.are.same({ path = "path" }, url.parse("path"))
      assert.are.same({ scheme = "mailto", path = "someone@example.org" },
        url.parse("mailto:someone@example.org"))
      assert.are.same({ scheme = "s", authority = "u@h:p", userinfo = "u", user = "u",
        host = "h", port = "p", path = "/", params = "", query = "", fragment = "" },
        url.parse("s://u@h:p/;?#"))
      assert.are.same({ authority = "user:@host", userinfo = "user:", user = "user",
        password = "", host = "host", path = "/path" }, url.parse("//user:@host/path"))
    end)

    it("ends the authority at /, ? or #", function()
      assert.are.same({ scheme = "http", authority = "h", host = "h", query = "x" },
        url.parse("http://h?x"))
      assert.are.same({ scheme = "http", authority = "h:8080", host = "h", port = "8080",
        fragment = "top" }, url.parse("http://h:8080#top"))
      -- "@" after a "?" belongs to the query: the host is not spoofed.
      assert.are.same({ scheme = "http", authority = "good.example", host = "good.example",
        query = "@evil.example" }, url.parse("http://good.example?@evil.example"))
      local p = url.parse("http://user:pa#ss@host/path")
      assert.are.equal("user", p.host)
      assert.are.equal("pa", p.port)
      assert.are.equal("ss@host/path", p.fragment)
    end)

    it("reads IPv6 literals in brackets", function()
      assert.are.same({ scheme = "http", authority = "[FEDC:BA98::3210]:80",
        host = "FEDC:BA98::3210", port = "80", path = "/index.html" },
        url.parse("http://[FEDC:BA98::3210]:80/index.html"))
      assert.are.same({ scheme = "http", authority = "[::192.9.5.5]", host = "::192.9.5.5",
        path = "/ipng" }, url.parse("http://[::192.9.5.5]/ipng"))
      local p = url.parse("//user:pw@[::FFFF:129.144.52.38]:port/p")
      assert.are.equal("::FFFF:129.144.52.38", p.host)
      assert.are.equal("port", p.port)
      assert.are.equal("pw", p.password)
    end)

    it("takes the password after the last : of the userinfo", function()
      local p = url.parse("ftp://a:b:c@host/")
      assert.are.equal("a:b", p.user)
      assert.are.equal("c", p.password)
    end)

    it("copies the defaults first", function()
      local defaults = { scheme = "http", port = "80", path = "/" }
      local p = url.parse("//example.org/x", defaults)
      assert.are.equal("http", p.scheme)
      assert.are.equal("80", p.port)
      assert.are.equal("/x", p.path)
      assert.are_not.equal(defaults, p)
      assert.are.equal("/", defaults.path)
    end)

    it("refuses an empty url", function()
      assert.are.same({ nil, "invalid url" }, { url.parse("") })
      assert.are.same({ nil, "invalid url" }, { url.parse(nil) })
    end)
  end)

  describe("build", function()
    it("is the inverse of parse", function()
      for _, u in ipairs({
        "scheme://user:password@host:port/path;params?query#fragment",
        "//userinfo@[::FFFF:129.144.52.38]:port/path;params?query#fragment",
        "http:", "a/b/c/d.html", "//net_loc", "http:a/b/d/c.html", "/b/c/d;param?query",
        "http://he:man@[::192.168.1.1]/a/b/c/i.html;type=moo?this=that#mark",
      }) do
        assert.are.equal(u, url.build(url.parse(u)))
      end
    end)

    it("prefers host, port, user and password to the authority", function()
      assert.are.equal("s://u:p@h:1/x", url.build({ scheme = "s", host = "h", port = 1,
        user = "u", password = "p", userinfo = "not used", authority = "not used",
        path = "/x" }))
      assert.are.equal("s://ui@h/x", url.build({ scheme = "s", host = "h", userinfo = "ui",
        authority = "not used", path = "/x" }))
      assert.are.equal("s://a@b:c/x", url.build({ scheme = "s", authority = "a@b:c",
        path = "/x" }))
    end)

    it("brackets hosts that contain ':' once", function()
      assert.are.equal("http://[::1]:8080/", url.build({ scheme = "http", host = "::1",
        port = "8080", path = "/" }))
      assert.are.equal("http://[::1]/", url.build({ scheme = "http", host = "[::1]",
        path = "/" }))
    end)
  end)

  describe("absolute", function()
    local base = "http://a/b/c/d;p?q"

    -- RFC 3986 section 5.4.1
    local normal = {
      { "g:h", "g:h" }, { "g", "http://a/b/c/g" }, { "./g", "http://a/b/c/g" },
      { "g/", "http://a/b/c/g/" }, { "/g", "http://a/g" }, { "//g", "http://g" },
      { "?y", "http://a/b/c/d;p?y" }, { "g?y", "http://a/b/c/g?y" },
      { "#s", "http://a/b/c/d;p?q#s" }, { "g#s", "http://a/b/c/g#s" },
      { "g?y#s", "http://a/b/c/g?y#s" }, { ";x", "http://a/b/c/;x" },
      { "g;x", "http://a/b/c/g;x" }, { "g;x?y#s", "http://a/b/c/g;x?y#s" },
      { "", "http://a/b/c/d;p?q" }, { ".", "http://a/b/c/" }, { "./", "http://a/b/c/" },
      { "..", "http://a/b/" }, { "../", "http://a/b/" }, { "../g", "http://a/b/g" },
      { "../..", "http://a/" }, { "../../", "http://a/" }, { "../../g", "http://a/g" },
    }
    -- RFC 3986 section 5.4.2 (the strict reading for "http:g")
    local abnormal = {
      { "../../../g", "http://a/g" }, { "../../../../g", "http://a/g" },
      { "/./g", "http://a/g" }, { "/../g", "http://a/g" }, { "g.", "http://a/b/c/g." },
      { ".g", "http://a/b/c/.g" }, { "g..", "http://a/b/c/g.." }, { "..g", "http://a/b/c/..g" },
      { "./../g", "http://a/b/g" }, { "./g/.", "http://a/b/c/g/" },
      { "g/./h", "http://a/b/c/g/h" }, { "g/../h", "http://a/b/c/h" },
      { "g;x=1/./y", "http://a/b/c/g;x=1/y" }, { "g;x=1/../y", "http://a/b/c/y" },
      { "g?y/./x", "http://a/b/c/g?y/./x" }, { "g?y/../x", "http://a/b/c/g?y/../x" },
      { "g#s/./x", "http://a/b/c/g#s/./x" }, { "g#s/../x", "http://a/b/c/g#s/../x" },
      { "http:g", "http:g" },
    }

    for _, set in ipairs({ { "normal", normal }, { "abnormal", abnormal } }) do
      it("resolves the RFC 3986 " .. set[1] .. " examples", function()
        for _, case in ipairs(set[2]) do
          assert.are.equal(case[2], url.absolute(base, case[1]), case[1])
        end
      end)
    end

    it("accepts a parsed base", function()
      local parsed = url.parse(base)
      assert.are.equal("http://a/b/c/g?y", url.absolute(parsed, "g?y"))
      assert.are.equal("http://a/b/c/d;p?q", url.absolute(parsed, ""))
    end)

    it("gives the base unchanged for an empty or nil reference", function()
      assert.are.equal("http://a/b/c/d;p?q#f", url.absolute("http://a/b/c/d;p?q#f", ""))
      assert.are.equal("http://a/b/c/d;p?q#f", url.absolute("http://a/b/c/d;p?q#f", nil))
    end)

    it("removes dot segments in odd places", function()
      local b = "http://example.com/a/b/c/d/"
      assert.are.equal("http://example.com/a/q", url.absolute(b, "..//../../../q"))
      assert.are.equal("http://example.com/a/q", url.absolute(b, "..//a/../../../../q"))
      assert.are.equal("http://example.com/a/b/q", url.absolute(b, "..//a/..//../../../q"))
      assert.are.equal("http://example.com/a/b/q", url.absolute(b, "../x/a/../y/z/../../../../q"))
      assert.are.equal("http://example.com/.badhost.com/",
        url.absolute("http://example.com/", "../.badhost.com/"))
      assert.are.equal("http://example.com/.badhost.com",
        url.absolute("http://example.com", ".badhost.com"))
      assert.are.equal("http://velox.example/dashboard/index.html",
        url.absolute("http://velox.example", "/dashboard/index.html"))
      assert.are.equal("http://x/b?next=/a/../b", url.absolute("http://x/a", "b?next=/a/../b"))
    end)

    it("resolves against bases without scheme or authority", function()
      assert.are.equal("//a/b/c/d/e/f", url.absolute("//a/b/c/d;p?q#f", "d/e/f"))
      assert.are.equal("/a/b/c/d/e/f", url.absolute("/a/b/c/d;p?q#f", "d/e/f"))
      assert.are.equal("a/b/c/d/e/f", url.absolute("a/b/c/d", "d/e/f"))
      assert.are.equal("a/b/c/d/e/f", url.absolute("a/b/c/d/../", "d/e/f"))
      assert.are.equal("c", url.absolute("a/b", "../../c"))
      assert.are.equal("x/y", url.absolute("", "x/./y"))
      assert.are.equal("x/y", url.absolute(nil, "x/./y"))
    end)
  end)

  describe("paths", function()
    it("parse_path splits and unescapes segments", function()
      assert.are.same({ "eu", "tu", "ele", is_absolute = 1 }, url.parse_path("/eu/tu/ele"))
      assert.are.same({ "eu", is_absolute = 1, is_directory = 1 }, url.parse_path("/eu/"))
      assert.are.same({ is_absolute = 1, is_directory = 1 }, url.parse_path("/"))
      assert.are.same({}, url.parse_path(""))
      assert.are.same({}, url.parse_path(nil))
      assert.are.same({ "a", "b" }, url.parse_path("a//b"))
      assert.are.same({ "eu\1", "\2tu", "e\18les", is_directory = 1 },
        url.parse_path("eu%01/%02tu/e%12les/"))
      assert.are.equal("integer", math.type(url.parse_path("/").is_absolute))
    end)

    it("build_path escapes what a segment may not hold", function()
      assert.are.equal("eu/-_.!~*'():@&=+$,/tu",
        url.build_path({ "eu", "-_.!~*'():@&=+$,", "tu" }))
      assert.are.equal("eu%20/~diego", url.build_path({ "eu ", "~diego" }))
      assert.are.equal("%2Feu%3E/%3Cdiego%3F", url.build_path({ "/eu>", "<diego?" }))
      assert.are.equal("%5Ceu%5D/%5Bdiego%60", url.build_path({ "\\eu]", "[diego`" }))
      assert.are.equal("%7Beu%7D/%7Cdiego%7F", url.build_path({ "{eu}", "|diego\127" }))
      assert.are.equal("/a/b/", url.build_path({ "a", "b", is_absolute = 1, is_directory = 1 }))
      assert.are.equal("/", url.build_path({ is_absolute = 1, is_directory = 1 }))
      assert.are.equal("", url.build_path({ is_directory = 1 }))
    end)

    it("build_path leaves segments alone when unsafe", function()
      assert.are.equal("eu /~diego", url.build_path({ "eu ", "~diego" }, 1))
      assert.are.equal("/eu>/<diego?", url.build_path({ "/eu>", "<diego?" }, true))
    end)

    it("round-trips through parse_path and build_path", function()
      for _, u in ipairs({ "http://net_loc/a/b/d/c.html", "/b/c/d;param?query#fragment",
        "http://he:man@boo.bar/a/b/c/i.html;type=moo?this=that#mark", "//who:isit@net_loc" }) do
        local parsed = url.parse(u)
        parsed.path = url.build_path(url.parse_path(parsed.path))
        assert.are.equal(u, url.build(parsed))
      end
    end)
  end)

  it("raises on arguments of the wrong type, naming them", function()
    assert.error_matches(function() url.escape({}) end,
      "bad argument #1 to 'escape' %(string expected, got table%)")
    assert.error_matches(function() url.unescape() end,
      "bad argument #1 to 'unescape' %(string expected, got no value%)")
    assert.error_matches(function() url.parse({}) end,
      "bad argument #1 to 'parse' %(string expected, got table%)")
    assert.error_matches(function() url.parse("x", "y") end,
      "bad argument #2 to 'parse' %(table expected, got string%)")
    assert.error_matches(function() url.build("x") end,
      "bad argument #1 to 'build' %(table expected, got string%)")
    assert.error_matches(function() url.absolute(true, "x") end,
      "bad argument #1 to 'absolute' %(string expected, got boolean%)")
    assert.error_matches(function() url.absolute("http://a/", {}) end,
      "bad argument #2 to 'absolute' %(string expected, got table%)")
    assert.error_matches(function() url.build_path({ "a", {} }) end,
      "bad argument #1 to 'build_path' %(segment 2 is a table%)")
    assert.error_matches(function() url.parse_path(false) end, "bad argument #1 to 'parse_path'")
  end)
end)
