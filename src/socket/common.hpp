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

// __gc, __close and __tostring, the same for every class.
extern const luaL_Reg kSocketMetamethods[];

// The constructor behind socket.tcp/tcp4/tcp6, socket.udp/..., unix.stream/dgram: pushes an
// object of class `cls`; with a family other than AF_UNSPEC its descriptor is created at once
// (returns nil, err if that fails), otherwise on first use.
int new_socket(lua_State* L, const char* cls, int family, int type);

// Adds `funcs` to the table at `ns`, each with the runtime handle at `rt` as upvalue.
void set_funcs(lua_State* L, int ns, int rt, const luaL_Reg* funcs);

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
