// dns.cpp: the socket.dns namespace. Layer: glue.
//
// Every lookup goes through resolve_step or a Job, so in a task it runs on libuv's thread pool
// while the task waits, and in a plain script it blocks like LuaSocket's.
#include <netdb.h>
#include <sys/socket.h>

#include "loop/runtime.hpp"
#include "lua/lua_api.hpp"
#include "socket/address.hpp"
#include "socket/errors.hpp"
#include "socket/resolve.hpp"

namespace uvs::socket {

using loop::Runtime;

namespace {

// dns.getaddrinfo(host) -> { {family = "inet"|"inet6", addr = "numeric"}, ... } | nil, err
int getaddrinfo_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  Runtime* rt = Runtime::of(L);
  bool waiting = ctx != 0;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  Resolved r;
  if (!resolve_step(L, rt, &waiting, lua_tostring(L, 1), nullptr, hints, &r)) {
    return lua_yieldk(L, 0, 1, getaddrinfo_k);
  }
  if (!r.ok()) {
    lua_pushnil(L);
    lua_pushstring(L, r.message());
    return 2;
  }
  lua_newtable(L);
  int i = 1;
  for (addrinfo* a = r.ai; a; a = a->ai_next) {
    char host[NI_MAXHOST];
    const int err = getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, nullptr, 0,
                                NI_NUMERICHOST);
    if (err) {
      freeaddrinfo(r.ai);
      lua_pushnil(L);
      lua_pushstring(L, gai_error(err, 0));
      return 2;
    }
    lua_createtable(L, 0, 2);
    lua_pushstring(L, family_name(a->ai_family));
    lua_setfield(L, -2, "family");
    lua_pushstring(L, host);
    lua_setfield(L, -2, "addr");
    lua_rawseti(L, -2, i++);
  }
  freeaddrinfo(r.ai);
  return 1;
}

int dns_getaddrinfo(lua_State* L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  return getaddrinfo_k(L, LUA_OK, 0);
}

}  // namespace

// Adds the `dns` table to the namespace at `ns`; `rt` is the runtime handle (upvalue).
void open_dns(lua_State* L, int ns, int rt) {
  const luaL_Reg funcs[] = {
      {"getaddrinfo", dns_getaddrinfo},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_setfield(L, ns, "dns");
}

}  // namespace uvs::socket
