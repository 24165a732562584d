// lua_api.hpp: the one place that includes Lua's C headers, with C linkage.
// Layer: binding helpers. Everything else includes this file instead of lua.h.
#pragma once

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#if LUA_VERSION_NUM != 504
#error "uvsocket needs Lua 5.4"
#endif

namespace uvs::lua {

// Closes a finished or failed coroutine (its to-be-closed variables run); the name of this call
// changed in Lua 5.4.6.
inline int close_thread(lua_State* co, lua_State* from) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(co, from);
#else
  (void)from;
  return lua_resetthread(co);
#endif
}

}  // namespace uvs::lua
