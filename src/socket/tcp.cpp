// tcp.cpp: the tcp{master}, tcp{client} and tcp{server} classes.
// Layer: glue (Lua-facing), one file per Lua class family.
//
// The three classes share one method table, as in LuaSocket; each method checks the state it
// needs and raises "tcp{client} expected" (or the group) otherwise. State changes (listen,
// connect) swap the metatable of the same userdata.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "loop/runtime.hpp"
#include "lua/udata.hpp"
#include "socket/common.hpp"
#include "socket/errors.hpp"
#include "socket/inet.hpp"
#include "socket/options.hpp"
#include "socket/stream.hpp"

namespace uvs::socket {

using loop::Runtime;

namespace {

constexpr const char* kMaster = "tcp{master}";
constexpr const char* kClient = "tcp{client}";
constexpr const char* kServer = "tcp{server}";

Socket* check_any(lua_State* L) { return check_socket(L, 1, kTcpAny, "tcp{any}"); }

int tcp_connect(lua_State* L) { return inet_connect(L, check_any(L), SOCK_STREAM, kClient, true); }

int tcp_bind(lua_State* L) {
  return inet_bind(L, check_socket(L, 1, kTcpMaster, kMaster), SOCK_STREAM);
}

// --- the other methods -----------------------------------------------------------------------

int tcp_listen(lua_State* L) {
  Socket* s = check_socket(L, 1, kTcpMaster, kMaster);
  // LuaSocket defaults to 32, which drops connections under a burst; SOMAXCONN does not.
  const int backlog = lua::number_to_int(luaL_optnumber(L, 2, SOMAXCONN), SOMAXCONN);
  if (s->closed) return push_error(L, kIoClosed);
  if (::listen(s->fd, backlog) < 0) {
    lua_pushnil(L);
    lua_pushstring(L, io_error(errno));
    return 2;
  }
  set_class(L, 1, kServer);
  return push_ok(L);
}

int tcp_accept(lua_State* L) {
  return stream_accept(L, check_socket(L, 1, kTcpServer, kServer), kClient);
}

int tcp_refuse(lua_State* L) { return stream_refuse(L, check_socket(L, 1, kTcpServer, kServer)); }

int tcp_receive(lua_State* L) { return stream_receive(L, check_socket(L, 1, kTcpClient, kClient)); }

int tcp_headers(lua_State* L) {
  return stream_take_headers(L, check_socket(L, 1, kTcpClient, kClient));
}

int tcp_receiveany(lua_State* L) {
  return stream_receive_any(L, check_socket(L, 1, kTcpClient, kClient));
}

int tcp_send(lua_State* L) { return stream_send(L, check_socket(L, 1, kTcpClient, kClient)); }

int tcp_shutdown(lua_State* L) {
  static const char* const kHow[] = {"receive", "send", "both", nullptr};
  Socket* s = check_socket(L, 1, kTcpClient, kClient);
  const int how = luaL_checkoption(L, 2, "both", kHow);  // SHUT_RD, SHUT_WR, SHUT_RDWR
  (void)::shutdown(s->fd, how);
  return push_ok(L);
}

int tcp_close(lua_State* L) { return common_close(L, check_any(L)); }
int tcp_dirty(lua_State* L) { return common_dirty(L, check_any(L)); }
int tcp_getfd(lua_State* L) { return common_getfd(L, check_any(L)); }
int tcp_setfd(lua_State* L) { return common_setfd(L, check_any(L)); }
int tcp_getfamily(lua_State* L) { return common_getfamily(L, check_any(L)); }
int tcp_settimeout(lua_State* L) { return common_settimeout(L, check_any(L)); }
int tcp_gettimeout(lua_State* L) { return common_gettimeout(L, check_any(L)); }
int tcp_getsockname(lua_State* L) { return inet_getsockname(L, check_any(L)); }
int tcp_getpeername(lua_State* L) { return inet_getpeername(L, check_any(L)); }
int tcp_getoption(lua_State* L) { return dispatch_option(L, check_any(L), kTcpGetOptions); }
int tcp_setoption(lua_State* L) { return dispatch_option(L, check_any(L), kTcpSetOptions); }
int tcp_getstats(lua_State* L) {
  return common_getstats(L, check_socket(L, 1, kTcpClient, kClient));
}
int tcp_setstats(lua_State* L) {
  return common_setstats(L, check_socket(L, 1, kTcpClient, kClient));
}

const luaL_Reg kMethods[] = {
    {"accept", tcp_accept},
    {"bind", tcp_bind},
    {"close", tcp_close},
    {"connect", tcp_connect},
    {"_headers", tcp_headers},
    {"dirty", tcp_dirty},
    {"getfamily", tcp_getfamily},
    {"getfd", tcp_getfd},
    {"getoption", tcp_getoption},
    {"getpeername", tcp_getpeername},
    {"getsockname", tcp_getsockname},
    {"getstats", tcp_getstats},
    {"gettimeout", tcp_gettimeout},
    {"listen", tcp_listen},
    {"receive", tcp_receive},
    {"refuse", tcp_refuse},
    {"receiveany", tcp_receiveany},
    {"send", tcp_send},
    {"setfd", tcp_setfd},
    {"setoption", tcp_setoption},
    {"setpeername", tcp_connect},
    {"setsockname", tcp_bind},
    {"setstats", tcp_setstats},
    {"settimeout", tcp_settimeout},
    {"shutdown", tcp_shutdown},
    {nullptr, nullptr},
};

const char* const kGroups[] = {"tcp{any}", "select{able}", nullptr};

const lua::ClassSpec kClasses[] = {
    {kMaster, kGroups},
    {kClient, kGroups},
    {kServer, kGroups},
};

// socket.tcp(), tcp4(), tcp6(): a master object; tcp() creates its descriptor on first use.
int tcp_new(lua_State* L) { return new_socket(L, kMaster, AF_UNSPEC, SOCK_STREAM); }
int tcp_new4(lua_State* L) { return new_socket(L, kMaster, AF_INET, SOCK_STREAM); }
int tcp_new6(lua_State* L) { return new_socket(L, kMaster, AF_INET6, SOCK_STREAM); }

}  // namespace

// Registers the classes and adds tcp, tcp4 and tcp6 to the namespace table at `ns`; `rt` is
// the runtime handle, every function's upvalue.
void open_tcp(lua_State* L, int ns, int rt) {
  lua::register_classes(L, kClasses, 3, kMethods, kSocketMetamethods, rt);
  const luaL_Reg funcs[] = {
      {"tcp", tcp_new},
      {"tcp4", tcp_new4},
      {"tcp6", tcp_new6},
      {nullptr, nullptr},
  };
  set_funcs(L, ns, rt, funcs);
}

}  // namespace uvs::socket
