// module.cpp: luaopen_socket_core, the module's only exported symbol.
// Layer: top (wires the layers together; everything else is built with hidden visibility).
#include <sys/resource.h>

#include "loop/runtime.hpp"
#include "lua/lua_api.hpp"
#include "socket/socket_runtime.hpp"

namespace uvs {
namespace loop {
void open_async(lua_State* L, int ns, int rt);
void open_process(lua_State* L, int async, int rt);
}  // namespace loop
namespace socket {
void open_misc(lua_State* L, int ns);
void open_tcp(lua_State* L, int ns, int rt);
void open_udp(lua_State* L, int ns, int rt);
void open_unix(lua_State* L, int ns, int rt);
void open_select(lua_State* L, int ns, int rt);
void open_dns(lua_State* L, int ns, int rt);
void open_waitfd(lua_State* L, int async, int rt);
void open_tls(lua_State* L, int ns, int rt);
void open_nosigpipe(lua_State* L, int ns);
}  // namespace socket
}  // namespace uvs

#define UVSOCKET_VERSION "uvsocket 0.1.0"

extern "C" __attribute__((visibility("default"))) int luaopen_socket_core(lua_State* L) {
  using namespace uvs;
  // The runtime handle is created first so that, when the state closes, it is finalized after
  // every socket.
  loop::Runtime* runtime = loop::Runtime::create(L);
  const int rt = lua_gettop(L);
  (void)socket::SocketRuntime::install(L, runtime);
  lua_pushvalue(L, rt);
  lua_setfield(L, LUA_REGISTRYINDEX, "uvsocket.runtime.handle");
  lua_newtable(L);
  const int ns = lua_gettop(L);
  lua_pushliteral(L, UVSOCKET_VERSION);
  lua_setfield(L, ns, "_VERSION");
  rlimit rl{};
  lua_Integer setsize = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    setsize = static_cast<lua_Integer>(rl.rlim_cur);
  }
  lua_pushinteger(L, setsize);
  lua_setfield(L, ns, "_SETSIZE");
  lua_pushinteger(L, -1);
  lua_setfield(L, ns, "_SOCKETINVALID");
  lua_pushinteger(L, 8192);
  lua_setfield(L, ns, "_DATAGRAMSIZE");
  socket::open_misc(L, ns);
  socket::open_tcp(L, ns, rt);
  socket::open_udp(L, ns, rt);
  socket::open_unix(L, ns, rt);
  socket::open_select(L, ns, rt);
  socket::open_dns(L, ns, rt);
  socket::open_tls(L, ns, rt);
  socket::open_nosigpipe(L, ns);
  loop::open_async(L, ns, rt);
  lua_getfield(L, ns, "async");
  socket::open_waitfd(L, lua_gettop(L), rt);
  loop::open_process(L, lua_gettop(L), rt);
  lua_pop(L, 1);
  return 1;
}
