// url_fuzz.cpp: socket.url (lua/socket/url.lua) on arbitrary strings, in an embedded Lua 5.4.
// fuzz-link: lua
//
// The module is loaded from the source tree into one interpreter for the whole run (its
// `require("socket")` gets an empty table). The input gives two strings, x and y; the driver
// below checks, and any Lua error it raises is a finding:
//   - escape(x) holds only letters, digits, "_" and %xx, and unescape(escape(x)) == x;
//     unescape of anything returns a string;
//   - parse(x) succeeds for every non-empty x; building it and parsing the result gives the
//     same fields (the authority apart, which build writes from host, port and user info), and
//     a second round builds the same string: parse(build(parse(x))) is stable;
//   - absolute(x, y) and absolute(parse(x), y) return strings and never raise; absolute(x, "")
//     is x; when y has a scheme the base does not matter (RFC 3986 section 5.2.2);
//   - parse_path(build_path(parse_path(x))) equals parse_path(x), and build_path(..., true)
//     returns a string.
//
// libFuzzer only sees the C++ that is instrumented, not the Lua code it runs; a line hook feeds
// it the Lua side as extra counters: one per pair of consecutive lines executed.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lua/lua_api.hpp"

namespace {

constexpr size_t kEdges = 1 << 14;
// libFuzzer reads counters placed in this section as coverage, alongside its own.
__attribute__((section("__libfuzzer_extra_counters"))) uint8_t lua_edges[kEdges];
int previous_line = 0;

void on_line(lua_State*, lua_Debug* ar) {
  const auto edge =
      (static_cast<uint32_t>(previous_line) * 2654435761u) ^ static_cast<uint32_t>(ar->currentline);
  uint8_t& counter = lua_edges[edge % kEdges];
  if (counter < 255) counter++;
  previous_line = ar->currentline;
}

// The driver: returns a function of (x, y) that raises on any broken property. Its lines are
// numbered from 1001 on (see load_driver), so that its edges do not mix with url.lua's.
constexpr char kDriver[] = R"lua(
local url = ...
local SCHEME = "^([%w][%w%+%-%.]*):"
local FIELDS = { "scheme", "host", "port", "user", "password", "userinfo", "path", "params",
  "query", "fragment" }

local function q(s) return string.format("%q", s) end

local function same_fields(a, b, what)
  for _, k in ipairs(FIELDS) do
    if a[k] ~= b[k] then
      error(("%s: field %s %s ~= %s"):format(what, k, tostring(a[k]), tostring(b[k])))
    end
  end
end

local function same_path(a, b, what)
  if #a ~= #b or a.is_absolute ~= b.is_absolute or a.is_directory ~= b.is_directory then
    error(what .. ": segments or flags differ")
  end
  for i = 1, #a do
    if a[i] ~= b[i] then error(what .. ": segment " .. i .. " differs") end
  end
end

local function is_string(v, what)
  if type(v) ~= "string" then error(what .. " returned " .. type(v)) end
  return v
end

return function(x, y)
  -- escaping
  local e = is_string(url.escape(x), "escape")
  if e:find("[^A-Za-z0-9_%%]") then error("escape left a reserved byte in " .. q(e)) end
  if url.unescape(e) ~= x then error("unescape(escape(x)) ~= x for " .. q(x)) end
  is_string(url.unescape(x), "unescape")

  -- parse and build
  local p, err = url.parse(x)
  if x == "" then
    if p ~= nil or err ~= "invalid url" then error("parse of the empty string") end
  else
    if type(p) ~= "table" then error("parse failed for " .. q(x) .. ": " .. tostring(err)) end
    local b1 = is_string(url.build(p), "build")
    local p2 = url.parse(b1)
    if type(p2) ~= "table" then error("parse(build(parse(x))) failed for " .. q(x)) end
    same_fields(p, p2, "parse(build(parse(" .. q(x) .. ")))")
    local b2 = url.build(p2)
    if b2 ~= b1 then error("build is not stable: " .. q(b1) .. " then " .. q(b2)) end
  end

  -- absolute
  local r = is_string(url.absolute(x, y), "absolute")
  if url.absolute(x, "") ~= x or url.absolute(x, nil) ~= x then
    error("absolute(x, '') ~= x for " .. q(x))
  end
  if p then is_string(url.absolute(p, y), "absolute(table)") end
  if y:match(SCHEME) and url.absolute("", y) ~= r then
    error("the base matters for the absolute reference " .. q(y))
  end

  -- paths
  local segs = url.parse_path(x)
  local built = is_string(url.build_path(segs), "build_path")
  same_path(segs, url.parse_path(built), "parse_path(build_path(parse_path(" .. q(x) .. ")))")
  is_string(url.build_path(segs, true), "build_path(unsafe)")
end
)lua";

lua_State* L = nullptr;
int driver_ref = LUA_NOREF;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
  std::abort();
}

int traceback(lua_State* Ls) {
  luaL_traceback(Ls, Ls, lua_tostring(Ls, 1), 1);
  return 1;
}

void setup() {
  L = luaL_newstate();
  luaL_openlibs(L);
  // url.lua stores itself in the socket namespace: give it an empty one instead of the C core.
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, [](lua_State* Ls) -> int {
    lua_newtable(Ls);
    return 1;
  });
  lua_setfield(L, -2, "socket");
  lua_pop(L, 1);
  const char* path = UVSOCKET_SOURCE_DIR "/lua/socket/url.lua";
  if (luaL_loadfile(L, path) != LUA_OK) die("loading url.lua");
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) die("running url.lua");
  const std::string driver = std::string(1000, '\n') + kDriver;
  if (luaL_loadbuffer(L, driver.data(), driver.size(), "=driver") != LUA_OK) die("driver");
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die("driver");
  driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);  // held for the whole run
  lua_sethook(L, on_line, LUA_MASKLINE, 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!L) setup();
  FuzzedDataProvider fdp(data, size);
  const std::string x = fdp.ConsumeRandomLengthString(4096);
  const std::string y = fdp.ConsumeRemainingBytesAsString();
  previous_line = 0;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
  lua_pushlstring(L, x.data(), x.size());
  lua_pushlstring(L, y.data(), y.size());
  if (lua_pcall(L, 2, 0, -4) != LUA_OK) die("property broken");
  lua_pop(L, 1);
  // Free this input's garbage now: libFuzzer takes a run that ends with more allocations than
  // frees for a possible leak and re-runs it under LeakSanitizer, which made every run 100 times
  // slower.
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
