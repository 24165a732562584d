// options.cpp: see options.hpp. Layer: transport.
//
// Failures of the system call are returned, not raised, with LuaSocket's fixed strings
// ("getsockopt failed", "setsockopt failed"); wrong value types raise argument errors.
#include "socket/options.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>

#include "socket/errors.hpp"

namespace uvs::socket {

namespace {

int set_failed(lua_State* L) {
  lua_pushnil(L);
  lua_pushliteral(L, "setsockopt failed");
  return 2;
}

int get_failed(lua_State* L) {
  lua_pushnil(L);
  lua_pushliteral(L, "getsockopt failed");
  return 2;
}

int set_raw(lua_State* L, Socket* s, int level, int name, const void* val, socklen_t len) {
  if (::setsockopt(s->fd, level, name, val, len) < 0) return set_failed(L);
  return push_ok(L);
}

int set_bool(lua_State* L, Socket* s, int level, int name) {
  if (!lua_isboolean(L, 3)) luaL_typeerror(L, 3, "boolean");
  const int v = lua_toboolean(L, 3);
  return set_raw(L, s, level, name, &v, sizeof v);
}

int get_int_raw(Socket* s, int level, int name, int* v) {
  socklen_t len = sizeof *v;
  return ::getsockopt(s->fd, level, name, v, &len);
}

int get_bool(lua_State* L, Socket* s, int level, int name) {
  int v = 0;
  if (get_int_raw(s, level, name, &v) < 0) return get_failed(L);
  lua_pushboolean(L, v);
  return 1;
}

int set_int(lua_State* L, Socket* s, int level, int name) {
  const int v = lua::number_to_int(luaL_checknumber(L, 3));
  return set_raw(L, s, level, name, &v, sizeof v);
}

int get_int(lua_State* L, Socket* s, int level, int name) {
  int v = 0;
  if (get_int_raw(s, level, name, &v) < 0) return get_failed(L);
  lua_pushnumber(L, v);
  return 1;
}

// Generates a getter and a setter for an option that maps to one setsockopt() name.
#define UVS_BOOL_OPTION(id, level, name)                                        \
  int get_##id(lua_State* L, Socket* s) { return get_bool(L, s, level, name); } \
  int set_##id(lua_State* L, Socket* s) { return set_bool(L, s, level, name); }
#define UVS_INT_OPTION(id, level, name)                                        \
  int get_##id(lua_State* L, Socket* s) { return get_int(L, s, level, name); } \
  int set_##id(lua_State* L, Socket* s) { return set_int(L, s, level, name); }

UVS_BOOL_OPTION(keepalive, SOL_SOCKET, SO_KEEPALIVE)
UVS_BOOL_OPTION(reuseaddr, SOL_SOCKET, SO_REUSEADDR)
UVS_BOOL_OPTION(reuseport, SOL_SOCKET, SO_REUSEPORT)
UVS_BOOL_OPTION(dontroute, SOL_SOCKET, SO_DONTROUTE)
UVS_BOOL_OPTION(broadcast, SOL_SOCKET, SO_BROADCAST)
UVS_BOOL_OPTION(nodelay, IPPROTO_TCP, TCP_NODELAY)
UVS_BOOL_OPTION(v6only, IPPROTO_IPV6, IPV6_V6ONLY)
UVS_BOOL_OPTION(mcast_loop, IPPROTO_IP, IP_MULTICAST_LOOP)
UVS_BOOL_OPTION(mcast6_loop, IPPROTO_IPV6, IPV6_MULTICAST_LOOP)
UVS_INT_OPTION(keepidle, IPPROTO_TCP, TCP_KEEPIDLE)
UVS_INT_OPTION(keepcnt, IPPROTO_TCP, TCP_KEEPCNT)
UVS_INT_OPTION(keepintvl, IPPROTO_TCP, TCP_KEEPINTVL)
UVS_INT_OPTION(rcvbuf, SOL_SOCKET, SO_RCVBUF)
UVS_INT_OPTION(sndbuf, SOL_SOCKET, SO_SNDBUF)
UVS_INT_OPTION(defer_accept, IPPROTO_TCP, TCP_DEFER_ACCEPT)
UVS_INT_OPTION(fastopen, IPPROTO_TCP, TCP_FASTOPEN)
UVS_INT_OPTION(fastopen_connect, IPPROTO_TCP, TCP_FASTOPEN_CONNECT)
UVS_INT_OPTION(mcast_ttl, IPPROTO_IP, IP_MULTICAST_TTL)
UVS_INT_OPTION(unicast_hops, IPPROTO_IPV6, IPV6_UNICAST_HOPS)
UVS_INT_OPTION(mcast_hops, IPPROTO_IPV6, IPV6_MULTICAST_HOPS)

#undef UVS_BOOL_OPTION
#undef UVS_INT_OPTION

int set_linger(lua_State* L, Socket* s) {
  luaL_checktype(L, 3, LUA_TTABLE);
  linger li{};
  lua_getfield(L, 3, "on");
  if (!lua_isboolean(L, -1)) luaL_argerror(L, 3, "boolean 'on' field expected");
  li.l_onoff = lua_toboolean(L, -1);
  lua_getfield(L, 3, "timeout");
  if (!lua_isnumber(L, -1)) luaL_argerror(L, 3, "number 'timeout' field expected");
  li.l_linger = lua::number_to_int(lua_tonumber(L, -1));
  lua_pop(L, 2);
  return set_raw(L, s, SOL_SOCKET, SO_LINGER, &li, sizeof li);
}

int get_linger(lua_State* L, Socket* s) {
  linger li{};
  socklen_t len = sizeof li;
  if (::getsockopt(s->fd, SOL_SOCKET, SO_LINGER, &li, &len) < 0) return get_failed(L);
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, li.l_onoff);
  lua_setfield(L, -2, "on");
  lua_pushinteger(L, li.l_linger);
  lua_setfield(L, -2, "timeout");
  return 1;
}

int get_error(lua_State* L, Socket* s) {
  int v = 0;
  if (get_int_raw(s, SOL_SOCKET, SO_ERROR, &v) < 0) return get_failed(L);
  if (v == 0) {
    lua_pushnil(L);
  } else {
    lua_pushstring(L, io_error(v));
  }
  return 1;
}

int set_bindtodevice(lua_State* L, Socket* s) {
  size_t len = 0;
  const char* dev = luaL_checklstring(L, 3, &len);
  return set_raw(L, s, SOL_SOCKET, SO_BINDTODEVICE, dev, static_cast<socklen_t>(len));
}

int get_bindtodevice(lua_State* L, Socket* s) {
  char dev[IFNAMSIZ + 1] = {0};
  socklen_t len = IFNAMSIZ;
  if (::getsockopt(s->fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &len) < 0) return get_failed(L);
  lua_pushstring(L, dev);
  return 1;
}

int set_mcast_if(lua_State* L, Socket* s) {
  const char* addr = luaL_checkstring(L, 3);
  in_addr val{};
  val.s_addr = htonl(INADDR_ANY);
  if (std::strcmp(addr, "*") != 0 && !inet_aton(addr, &val)) luaL_argerror(L, 3, "ip expected");
  return set_raw(L, s, IPPROTO_IP, IP_MULTICAST_IF, &val, sizeof val);
}

int get_mcast_if(lua_State* L, Socket* s) {
  in_addr val{};
  socklen_t len = sizeof val;
  if (::getsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &val, &len) < 0) return get_failed(L);
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &val, text, sizeof text);
  lua_pushstring(L, text);
  return 1;
}

int set_membership(lua_State* L, Socket* s, int name) {
  luaL_checktype(L, 3, LUA_TTABLE);
  ip_mreq val{};
  lua_getfield(L, 3, "multiaddr");
  if (!lua_isstring(L, -1)) luaL_argerror(L, 3, "string 'multiaddr' field expected");
  if (!inet_aton(lua_tostring(L, -1), &val.imr_multiaddr)) {
    luaL_argerror(L, 3, "invalid 'multiaddr' ip address");
  }
  lua_getfield(L, 3, "interface");
  if (!lua_isstring(L, -1)) luaL_argerror(L, 3, "string 'interface' field expected");
  val.imr_interface.s_addr = htonl(INADDR_ANY);
  if (std::strcmp(lua_tostring(L, -1), "*") != 0 &&
      !inet_aton(lua_tostring(L, -1), &val.imr_interface)) {
    luaL_argerror(L, 3, "invalid 'interface' ip address");
  }
  lua_pop(L, 2);
  return set_raw(L, s, IPPROTO_IP, name, &val, sizeof val);
}

int set_add_membership(lua_State* L, Socket* s) { return set_membership(L, s, IP_ADD_MEMBERSHIP); }
int set_drop_membership(lua_State* L, Socket* s) {
  return set_membership(L, s, IP_DROP_MEMBERSHIP);
}

int set_membership6(lua_State* L, Socket* s, int name) {
  luaL_checktype(L, 3, LUA_TTABLE);
  ipv6_mreq val{};
  lua_getfield(L, 3, "multiaddr");
  if (!lua_isstring(L, -1)) luaL_argerror(L, 3, "string 'multiaddr' field expected");
  if (inet_pton(AF_INET6, lua_tostring(L, -1), &val.ipv6mr_multiaddr) != 1) {
    luaL_argerror(L, 3, "invalid 'multiaddr' ip address");
  }
  lua_getfield(L, 3, "interface");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_argerror(L, 3, "number 'interface' field expected");
    const int index = lua::number_to_int(lua_tonumber(L, -1));
    val.ipv6mr_interface = index < 0 ? 0 : static_cast<unsigned>(index);
  }
  lua_pop(L, 2);
  return set_raw(L, s, IPPROTO_IPV6, name, &val, sizeof val);
}

int set_add_membership6(lua_State* L, Socket* s) { return set_membership6(L, s, IPV6_JOIN_GROUP); }
int set_drop_membership6(lua_State* L, Socket* s) {
  return set_membership6(L, s, IPV6_LEAVE_GROUP);
}

}  // namespace

int dispatch_option(lua_State* L, Socket* s, const Option* table) {
  const char* name = luaL_checkstring(L, 2);
  for (const Option* o = table; o->name; o++) {
    if (std::strcmp(name, o->name) == 0) return o->fn(L, s);
  }
  lua_pushfstring(L, "unsupported option `%s'", name);
  return luaL_argerror(L, 2, lua_tostring(L, -1));
}

const Option kTcpGetOptions[] = {
    {"keepalive", get_keepalive},
    {"reuseaddr", get_reuseaddr},
    {"reuseport", get_reuseport},
    {"tcp-nodelay", get_nodelay},
    {"tcp-keepidle", get_keepidle},
    {"tcp-keepcnt", get_keepcnt},
    {"tcp-keepintvl", get_keepintvl},
    {"linger", get_linger},
    {"error", get_error},
    {"recv-buffer-size", get_rcvbuf},
    {"send-buffer-size", get_sndbuf},
    {"ipv6-v6only", get_v6only},
    {"tcp-defer-accept", get_defer_accept},
    {"tcp-fastopen", get_fastopen},
    {"tcp-fastopen-connect", get_fastopen_connect},
    {"bindtodevice", get_bindtodevice},
    {nullptr, nullptr},
};

const Option kTcpSetOptions[] = {
    {"keepalive", set_keepalive},
    {"reuseaddr", set_reuseaddr},
    {"reuseport", set_reuseport},
    {"tcp-nodelay", set_nodelay},
    {"tcp-keepidle", set_keepidle},
    {"tcp-keepcnt", set_keepcnt},
    {"tcp-keepintvl", set_keepintvl},
    {"ipv6-v6only", set_v6only},
    {"linger", set_linger},
    {"recv-buffer-size", set_rcvbuf},
    {"send-buffer-size", set_sndbuf},
    {"tcp-defer-accept", set_defer_accept},
    {"tcp-fastopen", set_fastopen},
    {"tcp-fastopen-connect", set_fastopen_connect},
    {"bindtodevice", set_bindtodevice},
    {nullptr, nullptr},
};

const Option kUdpGetOptions[] = {
    {"dontroute", get_dontroute},
    {"broadcast", get_broadcast},
    {"reuseaddr", get_reuseaddr},
    {"reuseport", get_reuseport},
    {"ip-multicast-if", get_mcast_if},
    {"ip-multicast-ttl", get_mcast_ttl},
    {"ip-multicast-loop", get_mcast_loop},
    {"error", get_error},
    {"ipv6-unicast-hops", get_unicast_hops},
    {"ipv6-multicast-hops", get_mcast_hops},
    {"ipv6-multicast-loop", get_mcast6_loop},
    {"ipv6-v6only", get_v6only},
    {"recv-buffer-size", get_rcvbuf},
    {"send-buffer-size", get_sndbuf},
    {"bindtodevice", get_bindtodevice},
    {nullptr, nullptr},
};

const Option kUdpSetOptions[] = {
    {"dontroute", set_dontroute},
    {"broadcast", set_broadcast},
    {"reuseaddr", set_reuseaddr},
    {"reuseport", set_reuseport},
    {"ip-multicast-if", set_mcast_if},
    {"ip-multicast-ttl", set_mcast_ttl},
    {"ip-multicast-loop", set_mcast_loop},
    {"ip-add-membership", set_add_membership},
    {"ip-drop-membership", set_drop_membership},
    {"ipv6-unicast-hops", set_unicast_hops},
    {"ipv6-multicast-hops", set_mcast_hops},
    {"ipv6-multicast-loop", set_mcast6_loop},
    {"ipv6-add-membership", set_add_membership6},
    {"ipv6-drop-membership", set_drop_membership6},
    {"ipv6-v6only", set_v6only},
    {"recv-buffer-size", set_rcvbuf},
    {"send-buffer-size", set_sndbuf},
    {"bindtodevice", set_bindtodevice},
    {nullptr, nullptr},
};

const Option kUnixGetOptions[] = {
    {"keepalive", get_keepalive},
    {"reuseaddr", get_reuseaddr},
    {"linger", get_linger},
    {"error", get_error},
    {"recv-buffer-size", get_rcvbuf},
    {"send-buffer-size", get_sndbuf},
    {nullptr, nullptr},
};

const Option kUnixSetOptions[] = {
    {"keepalive", set_keepalive},     {"reuseaddr", set_reuseaddr},     {"linger", set_linger},
    {"recv-buffer-size", set_rcvbuf}, {"send-buffer-size", set_sndbuf}, {nullptr, nullptr},
};

}  // namespace uvs::socket
