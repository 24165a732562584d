// lua_api.hpp: the one place that includes Lua's C headers, with C linkage.
// Layer: binding helpers. Everything else includes this file instead of lua.h.
#pragma once

#include <climits>

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

// A Lua number as an int (a count, a size, a descriptor, an option value): truncated toward zero
// and clamped to int's range, NaN giving `nan`. A plain static_cast of a number outside the
// range (1e308, math.huge) is undefined behaviour.
inline int number_to_int(lua_Number x, int nan = 0) {
  if (x != x) return nan;
  if (x >= static_cast<lua_Number>(INT_MAX)) return INT_MAX;
  if (x <= static_cast<lua_Number>(INT_MIN)) return INT_MIN;
  return static_cast<int>(x);
}

// The same for 64-bit integers (string indices, counts): clamped to [-2^62, 2^62].
inline long long number_to_ll(lua_Number x, long long nan = 0) {
  constexpr lua_Number kMax = 4611686018427387904.0;  // 2^62
  if (x != x) return nan;
  if (x >= kMax) return static_cast<long long>(kMax);
  if (x <= -kMax) return -static_cast<long long>(kMax);
  return static_cast<long long>(x);
}

}  // namespace uvs::lua
