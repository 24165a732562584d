// misc.cpp: the namespace functions that are not about one socket class: gettime, skip,
// newtry/try and protect. Layer: glue.
//
// protect() runs its function with lua_pcallk, so code under it (socket.http among others) can
// still yield to the scheduler from inside a task.
#include <sys/time.h>

#include <csignal>

#include "lua/lua_api.hpp"

namespace uvs::socket {

namespace {

// socket.gettime() -> seconds since the Unix epoch, as a float (wall clock, as LuaSocket).
int socket_gettime(lua_State* L) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  lua_pushnumber(L, static_cast<lua_Number>(tv.tv_sec) + tv.tv_usec / 1.0e6);
  return 1;
}

// socket.skip(n, ...) -> the arguments after the first n (nothing when there are n or fewer).
// The count is compared as a lua_Integer, never narrowed to int: a count that wrapped, or a
// negative one, would make the function return stack slots below its arguments. A negative
// count is an argument error.
int socket_skip(lua_State* L) {
  const lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "non-negative count expected");
  const lua_Integer rest = lua_gettop(L) - 1;
  return n >= rest ? 0 : static_cast<int>(rest - n);
}

// The private metatable that marks errors raised by try() (upvalue of try and protect).
void push_try_meta(lua_State* L) {
  static const char key = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushcfunction(L, [](lua_State* Ls) -> int {
    lua_rawgeti(Ls, 1, 1);
    luaL_tolstring(Ls, -1, nullptr);
    return 1;
  });
  lua_setfield(L, -2, "__tostring");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key);
}

// try(v1, v2, ...): returns its arguments if v1 is true; otherwise calls the finalizer and
// raises {v2} marked with the private metatable.
int try_call(lua_State* L) {
  if (lua_toboolean(L, 1)) return lua_gettop(L);
  if (!lua_isnil(L, lua_upvalueindex(1))) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 0);
  }
  lua_settop(L, 2);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  return lua_error(L);
}

// socket.newtry([finalizer]) -> try
int socket_newtry(lua_State* L) {
  lua_settop(L, 1);
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  push_try_meta(L);
  lua_pushcclosure(L, try_call, 2);
  return 1;
}

// Finishes a protected call: results on success; nil, v2 for an error raised by try; any other
// error goes on up unchanged.
int protect_finish(lua_State* L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status == LUA_OK || status == LUA_YIELD) return lua_gettop(L);
  if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
    const bool ours = lua_rawequal(L, -1, lua_upvalueindex(2));
    lua_pop(L, 1);
    if (ours) {
      lua_pushnil(L);
      lua_rawgeti(L, -2, 1);
      return 2;
    }
  }
  return lua_error(L);
}

int protect_call(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  const int status = lua_pcallk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, 0, protect_finish);
  return protect_finish(L, status, 0);
}

// socket.protect(f) -> a function that calls f and turns try's errors into nil, err.
int socket_protect(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  push_try_meta(L);
  lua_pushcclosure(L, protect_call, 2);
  return 1;
}

// socket.ignoresigpipe() -> true
// uvsocket's own sends never raise SIGPIPE (MSG_NOSIGNAL) and it leaves the signal alone; a
// library that writes to the descriptors itself without that flag (LuaSec, for one) needs the
// signal ignored, which this does for the whole process, on request only.
int socket_ignoresigpipe(lua_State* L) {
  std::signal(SIGPIPE, SIG_IGN);
  lua_pushboolean(L, 1);
  return 1;
}

}  // namespace

void open_misc(lua_State* L, int ns) {
  const luaL_Reg funcs[] = {
      {"gettime", socket_gettime},
      {"skip", socket_skip},
      {"newtry", socket_newtry},
      {"protect", socket_protect},
      {"ignoresigpipe", socket_ignoresigpipe},
      {nullptr, nullptr},
  };
  lua_pushvalue(L, ns);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}

}  // namespace uvs::socket
