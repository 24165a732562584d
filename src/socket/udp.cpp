// udp.cpp: the udp{unconnected} and udp{connected} classes.
// Layer: glue (Lua-facing), one file per Lua class family.
//
// As in LuaSocket, socket.udp() has no descriptor until the first setsockname, setpeername or
// sendto picks the family; udp4() and udp6() create it at once. setpeername(address, port)
// makes the object connected and setpeername("*") makes it unconnected again.
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "loop/runtime.hpp"
#include "lua/udata.hpp"
#include "socket/common.hpp"
#include "socket/dgram.hpp"
#include "socket/errors.hpp"
#include "socket/inet.hpp"
#include "socket/options.hpp"

namespace uvs::socket {

namespace {

constexpr const char* kUnconnected = "udp{unconnected}";
constexpr const char* kConnected = "udp{connected}";

Socket* check_any(lua_State* L) { return check_socket(L, 1, kUdpAny, "udp{any}"); }
Socket* check_unconnected(lua_State* L) {
  return check_socket(L, 1, kUdpUnconnected, kUnconnected);
}
Socket* check_connected(lua_State* L) { return check_socket(L, 1, kUdpConnected, kConnected); }

int udp_receive(lua_State* L) { return dgram_receive(L, check_any(L), Sender::kNone); }
int udp_receivefrom(lua_State* L) { return dgram_receive(L, check_unconnected(L), Sender::kInet); }
int udp_send(lua_State* L) { return dgram_send(L, check_connected(L)); }

// udp:sendto(datagram, ip, port) -> bytes sent | nil, err
// Only numeric addresses and ports: a lookup per datagram would be too slow (as in LuaSocket).
int udp_sendto(lua_State* L) {
  Socket* s = check_unconnected(L);
  luaL_checkstring(L, 2);
  const char* ip = luaL_checkstring(L, 3);
  const char* port = luaL_checkstring(L, 4);
  if (s->closed) return push_error(L, kIoClosed);
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_family = s->family;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* ai = nullptr;
  const int gerr = getaddrinfo(ip, port, &hints, &ai);
  if (gerr) {
    lua_pushnil(L);
    lua_pushstring(L, gai_strerror(gerr));
    return 2;
  }
  if (s->fd < 0 && s->family == AF_UNSPEC) {
    int fd = -1;
    const int e = open_fd(ai->ai_family, SOCK_DGRAM, 0, &fd);
    if (e) {
      freeaddrinfo(ai);
      return push_error(L, e);
    }
    s->fd = fd;
    s->family = ai->ai_family;
  }
  sockaddr_storage dest{};
  const socklen_t len = ai->ai_addrlen;
  std::memcpy(&dest, ai->ai_addr, len);
  freeaddrinfo(ai);
  return dgram_sendto(L, s, reinterpret_cast<sockaddr*>(&dest), len);
}

// udp:setpeername(address, port) -> 1 | nil, err; udp:setpeername("*") -> 1
int udp_setpeername(lua_State* L) {
  Socket* s = check_any(L);
  const char* address = luaL_checkstring(L, 2);
  if (std::strcmp(address, "*") == 0) {
    // Dissolve the association; errors are ignored (some systems report EAFNOSUPPORT).
    sockaddr_storage none{};
    none.ss_family = AF_UNSPEC;
    if (s->fd >= 0) {
      (void)::connect(s->fd, reinterpret_cast<sockaddr*>(&none),
                      s->family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    }
    set_class(L, 1, kUnconnected);
    return push_ok(L);
  }
  return inet_connect(L, s, SOCK_DGRAM, kConnected, false);
}

int udp_setsockname(lua_State* L) { return inet_bind(L, check_unconnected(L), SOCK_DGRAM); }

int udp_close(lua_State* L) { return common_close(L, check_any(L)); }
int udp_dirty(lua_State* L) {
  check_any(L);
  lua_pushboolean(L, 0);
  return 1;
}
int udp_getfd(lua_State* L) { return common_getfd(L, check_any(L)); }
int udp_setfd(lua_State* L) { return common_setfd(L, check_any(L)); }
int udp_getfamily(lua_State* L) { return common_getfamily(L, check_any(L)); }
int udp_settimeout(lua_State* L) { return common_settimeout(L, check_any(L)); }
int udp_gettimeout(lua_State* L) { return common_gettimeout(L, check_any(L)); }
int udp_getsockname(lua_State* L) { return inet_getsockname(L, check_any(L)); }
int udp_getpeername(lua_State* L) { return inet_getpeername(L, check_connected(L)); }
int udp_getoption(lua_State* L) { return dispatch_option(L, check_any(L), kUdpGetOptions); }
int udp_setoption(lua_State* L) { return dispatch_option(L, check_any(L), kUdpSetOptions); }

const luaL_Reg kMethods[] = {
    {"close", udp_close},
    {"dirty", udp_dirty},
    {"getfamily", udp_getfamily},
    {"getfd", udp_getfd},
    {"getoption", udp_getoption},
    {"getpeername", udp_getpeername},
    {"getsockname", udp_getsockname},
    {"gettimeout", udp_gettimeout},
    {"receive", udp_receive},
    {"receivefrom", udp_receivefrom},
    {"send", udp_send},
    {"sendto", udp_sendto},
    {"setfd", udp_setfd},
    {"setoption", udp_setoption},
    {"setpeername", udp_setpeername},
    {"setsockname", udp_setsockname},
    {"settimeout", udp_settimeout},
    {nullptr, nullptr},
};

const char* const kGroups[] = {"udp{any}", "select{able}", nullptr};

const lua::ClassSpec kClasses[] = {
    {kUnconnected, kGroups},
    {kConnected, kGroups},
};

int udp_new(lua_State* L) { return new_socket(L, kUnconnected, AF_UNSPEC, SOCK_DGRAM); }
int udp_new4(lua_State* L) { return new_socket(L, kUnconnected, AF_INET, SOCK_DGRAM); }
int udp_new6(lua_State* L) { return new_socket(L, kUnconnected, AF_INET6, SOCK_DGRAM); }

}  // namespace

// Registers the classes and adds udp, udp4 and udp6 to the namespace table at `ns`.
void open_udp(lua_State* L, int ns, int rt) {
  lua::register_classes(L, kClasses, 2, kMethods, kSocketMetamethods, rt);
  const luaL_Reg funcs[] = {
      {"udp", udp_new},
      {"udp4", udp_new4},
      {"udp6", udp_new6},
      {nullptr, nullptr},
  };
  set_funcs(L, ns, rt, funcs);
}

}  // namespace uvs::socket
