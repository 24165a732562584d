// common.cpp: see common.hpp. Layer: glue.
#include "socket/common.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "socket/address.hpp"
#include "socket/errors.hpp"
#include "socket/tls_session.hpp"

namespace uvs::socket {

using loop::Runtime;

const luaL_Reg kSocketMetamethods[] = {
    {"__gc", common_gc},
    {"__close", common_gc},
    {"__tostring", lua::class_tostring},
    {nullptr, nullptr},
};

int new_socket(lua_State* L, const char* cls, int family, int type) {
  Socket* s = push_socket(L, cls, -1, family);  // closed first: __gc is armed before the fd
  if (family == AF_UNSPEC) return 1;
  int fd = -1;
  const int err = open_fd(family, type, 0, &fd);
  if (err) return push_error(L, err);
  s->fd = fd;
  return 1;
}

void set_funcs(lua_State* L, int ns, int rt, const luaL_Reg* funcs) {
  lua_pushvalue(L, ns);
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_pop(L, 1);
}

int common_close(lua_State* L, Socket* s) {
  close_socket(s, false);
  return push_ok(L);
}

int common_gc(lua_State* L) {
  Socket* s = test_socket(L, 1, kAnySocket);
  if (!s) return 0;
  Runtime* rt = Runtime::of(L);
  if (!rt) {
    // The runtime is gone (the state is closing and finalized it): the descriptor is all that
    // is left to release (and a TLS session, which needs no runtime).
    if (s->tls) tls_free(s);
    if (s->fd >= 0) ::close(s->fd);
    s->fd = -1;
    return 0;
  }
  close_socket(s, true);
  return 0;
}

int common_dirty(lua_State* L, Socket* s) {
  lua_pushboolean(L, !s->buf.empty());
  return 1;
}

int common_getfd(lua_State* L, Socket* s) {
  lua_pushnumber(L, s->fd);
  return 1;
}

int common_setfd(lua_State* L, Socket* s) {
  const int fd = lua::number_to_int(luaL_checknumber(L, 2), -1);
  // A closed object never gets a descriptor again.
  luaL_argcheck(L, !s->closed || fd < 0, 2, "the object is closed");
  if (s->closed) return 0;
  // The old descriptor is handed over, not closed (LuaSec takes it this way): stop watching it.
  // Operations waiting on it wake with "closed".
  drop_watch(s);
  s->fd = fd;
  s->pending = 0;
  return 0;
}

int common_getfamily(lua_State* L, Socket* s) {
  lua_pushstring(L, s->family == AF_INET6 ? "inet6" : "inet4");
  return 1;
}

int common_settimeout(lua_State* L, Socket* s) {
  const lua_Number t = luaL_optnumber(L, 2, -1);
  const char* mode = luaL_optstring(L, 3, "b");
  switch (*mode) {
    case 'b':
      s->tm.block = t;
      break;
    case 'r':
    case 't':
      s->tm.total = t;
      break;
    default:
      luaL_argerror(L, 3, "invalid timeout mode");
  }
  return push_ok(L);
}

int common_gettimeout(lua_State* L, Socket* s) {
  lua_pushnumber(L, s->tm.block);
  lua_pushnumber(L, s->tm.total);
  return 2;
}

int common_getstats(lua_State* L, Socket* s) {
  lua_pushnumber(L, s->received);
  lua_pushnumber(L, s->sent);
  lua_pushnumber(L, Runtime::now() - s->birthday);
  return 3;
}

int common_setstats(lua_State* L, Socket* s) {
  // Whole byte counts; truncated in floating point, since no integer type holds every number.
  const lua_Number received = luaL_optnumber(L, 2, s->received);
  const lua_Number sent = luaL_optnumber(L, 3, s->sent);
  s->received = std::isnan(received) ? 0 : std::trunc(received);
  s->sent = std::isnan(sent) ? 0 : std::trunc(sent);
  if (lua_isnumber(L, 4)) s->birthday = Runtime::now() - lua_tonumber(L, 4);
  return push_ok(L);
}

namespace {

using NameFn = int (*)(int, sockaddr*, socklen_t*);

int push_name(lua_State* L, Socket* s, NameFn fn) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (fn(s->fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    lua_pushnil(L);
    lua_pushstring(L, io_error(errno));
    return 2;
  }
  char host[INET6_ADDRSTRLEN + 16];
  int port = 0;
  const int err = numeric_name(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, &port);
  if (err) {
    lua_pushnil(L);
    lua_pushstring(L, gai_strerror(err));
    return 2;
  }
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  lua_pushstring(L, family_name(s->family));
  return 3;
}

}  // namespace

int inet_getsockname(lua_State* L, Socket* s) { return push_name(L, s, ::getsockname); }
int inet_getpeername(lua_State* L, Socket* s) { return push_name(L, s, ::getpeername); }

}  // namespace uvs::socket
