// common.hpp: methods every socket class shares, called after the class check.
// Layer: glue (Lua-facing).
#pragma once

#include "lua/lua_api.hpp"
#include "lua/udata.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

// The socket at `idx` if its class is in `mask`; otherwise raises LuaSocket's
// "<expected> expected" argument error.
inline Socket* check_socket(lua_State* L, int idx, uint32_t mask, const char* expected) {
  Socket* s = test_socket(L, idx, mask);
  if (!s) lua::class_error(L, idx, expected);
  return s;
}

int common_close(lua_State* L, Socket* s);
int common_gc(lua_State* L);  // __gc and __close of every class
int common_dirty(lua_State* L, Socket* s);
int common_getfd(lua_State* L, Socket* s);
int common_setfd(lua_State* L, Socket* s);
int common_getfamily(lua_State* L, Socket* s);
int common_settimeout(lua_State* L, Socket* s);
int common_gettimeout(lua_State* L, Socket* s);
int common_getstats(lua_State* L, Socket* s);
int common_setstats(lua_State* L, Socket* s);
// getsockname/getpeername for IP sockets: ip, port (integer), family.
int inet_getsockname(lua_State* L, Socket* s);
int inet_getpeername(lua_State* L, Socket* s);

}  // namespace uvs::socket
