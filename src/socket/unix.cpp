// unix.cpp: Unix-domain sockets for `require "socket.unix"`: the unixstream{master|client|
// server} and unixdgram{unconnected|connected} classes. Layer: glue.
//
// Stream objects share receive/send/accept with TCP (stream.cpp) and datagram objects share
// receive/send with UDP (dgram.cpp), so patterns, timeouts and task behaviour are the same.
// A path that starts with a NUL byte names a Linux abstract socket (its length counts, not a
// terminator).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "loop/runtime.hpp"
#include "lua/udata.hpp"
#include "socket/common.hpp"
#include "socket/dgram.hpp"
#include "socket/errors.hpp"
#include "socket/options.hpp"
#include "socket/stream.hpp"

namespace uvs::socket {

using loop::Runtime;

namespace {

constexpr const char* kStreamMaster = "unixstream{master}";
constexpr const char* kStreamClient = "unixstream{client}";
constexpr const char* kStreamServer = "unixstream{server}";
constexpr const char* kDgramUnconnected = "unixdgram{unconnected}";
constexpr const char* kDgramConnected = "unixdgram{connected}";

// Fills `un` from the path at `idx`; returns false (and pushes nil, err) if it is too long.
bool make_address(lua_State* L, int idx, sockaddr_un* un, socklen_t* len) {
  size_t n = 0;
  const char* path = luaL_checklstring(L, idx, &n);
  std::memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  if (n >= sizeof un->sun_path) {
    lua_pushnil(L);
    lua_pushliteral(L, "path too long");
    return false;
  }
  std::memcpy(un->sun_path, path, n);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + (n && path[0] ? 1 : 0));
  return true;
}

int push_path(lua_State* L, const sockaddr_un& un, socklen_t len) {
  const size_t off = offsetof(sockaddr_un, sun_path);
  size_t n = len > off ? len - off : 0;
  if (n > 0 && un.sun_path[0] != '\0') n = strnlen(un.sun_path, n);
  lua_pushlstring(L, un.sun_path, n);
  return 1;
}

using NameFn = int (*)(int, sockaddr*, socklen_t*);

int get_name(lua_State* L, Socket* s, NameFn fn) {
  sockaddr_un un{};
  socklen_t len = sizeof un;
  if (fn(s->fd, reinterpret_cast<sockaddr*>(&un), &len) < 0) return push_error(L, errno);
  return push_path(L, un, len);
}

int do_bind(lua_State* L, Socket* s) {
  if (s->closed) return push_error(L, kIoClosed);
  sockaddr_un un{};
  socklen_t len = 0;
  if (!make_address(L, 2, &un, &len)) return 2;
  if (::bind(s->fd, reinterpret_cast<sockaddr*>(&un), len) < 0) return push_error(L, errno);
  return push_ok(L);
}

int connect_result(lua_State* L, Socket* s, int e) {
  release(L, s, s->writing);
  if (e != 0) return push_error(L, e);
  set_class(L, 1, lua_tostring(L, 4));
  return push_ok(L);
}

// Stack: sock, path, address userdata, connected class name.
int connect_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  int e = kIoDone;
  if (status == LUA_YIELD) {
    e = resume_status(L, s->sr);
    if (e == kIoDone && s->closed) e = kIoClosed;
    if (e == kIoDone) {
      socklen_t elen = sizeof e;
      if (::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0) e = errno;
    }
  } else {
    const auto* addr = static_cast<const sockaddr*>(lua_touserdata(L, 3));
    const auto len = static_cast<socklen_t>(lua_rawlen(L, 3));
    do {
      e = ::connect(s->fd, addr, len) < 0 ? errno : 0;
    } while (e == EINTR);
    if (e == EINPROGRESS || e == EAGAIN) {
      const loop::Deadline d(s->tm, s->wr_start);
      e = wait_fd(L, s, FdWatch::kWrite, d, "connect");
      if (e == kYield) return loop::yield(L, s->sr->rt(), ctx, connect_k);
      if (e == kIoDone) {
        socklen_t elen = sizeof e;
        if (::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0) e = errno;
      }
    }
  }
  return connect_result(L, s, e);
}

int connect_begin(lua_State* L, Socket* s) {
  s->wr_start = Runtime::now();
  if (s->fd < 0) return connect_result(L, s, kIoClosed);
  return connect_k(L, LUA_OK, 0);
}

int connect_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return push_error(L, st);
  return connect_begin(L, s);
}

int do_connect(lua_State* L, Socket* s, const char* connected_class) {
  sockaddr_un un{};
  socklen_t len = 0;
  if (!make_address(L, 2, &un, &len)) return 2;
  lua_settop(L, 2);
  std::memcpy(lua_newuserdatauv(L, len, 0), &un, len);
  lua_pushstring(L, connected_class);
  const int st = claim(L, s, s->writing, call_start(s), "connect");
  if (st == kYield) return loop::yield(L, s->sr->rt(), 0, connect_turn_k);
  if (st != kIoDone) return push_error(L, st);
  return connect_begin(L, s);
}

// --- streams ---------------------------------------------------------------------------------

Socket* stream_any(lua_State* L) { return check_socket(L, 1, kUnixStreamAny, "unixstream{any}"); }
Socket* stream_master(lua_State* L) { return check_socket(L, 1, kUnixStreamMaster, kStreamMaster); }
Socket* stream_client(lua_State* L) { return check_socket(L, 1, kUnixStreamClient, kStreamClient); }

int us_accept(lua_State* L) {
  return stream_accept(L, check_socket(L, 1, kUnixStreamServer, kStreamServer), kStreamClient);
}
int us_bind(lua_State* L) { return do_bind(L, stream_master(L)); }
int us_connect(lua_State* L) { return do_connect(L, stream_master(L), kStreamClient); }
int us_listen(lua_State* L) {
  Socket* s = stream_master(L);
  const int backlog = lua::number_to_int(luaL_optnumber(L, 2, SOMAXCONN), SOMAXCONN);
  if (s->closed) return push_error(L, kIoClosed);
  if (::listen(s->fd, backlog) < 0) return push_error(L, errno);
  set_class(L, 1, kStreamServer);
  return push_ok(L);
}
int us_refuse(lua_State* L) {
  return stream_refuse(L, check_socket(L, 1, kUnixStreamServer, kStreamServer));
}
int us_receive(lua_State* L) { return stream_receive(L, stream_client(L)); }
int us_receiveany(lua_State* L) { return stream_receive_any(L, stream_client(L)); }
int us_headers(lua_State* L) { return stream_take_headers(L, stream_client(L)); }
int us_send(lua_State* L) { return stream_send(L, stream_client(L)); }
int us_shutdown(lua_State* L) {
  static const char* const kHow[] = {"receive", "send", "both", nullptr};
  Socket* s = stream_client(L);
  (void)::shutdown(s->fd, luaL_checkoption(L, 2, "both", kHow));
  return push_ok(L);
}
int us_close(lua_State* L) { return common_close(L, stream_any(L)); }
int us_dirty(lua_State* L) { return common_dirty(L, stream_any(L)); }
int us_getfd(lua_State* L) { return common_getfd(L, stream_any(L)); }
int us_setfd(lua_State* L) { return common_setfd(L, stream_any(L)); }
int us_settimeout(lua_State* L) { return common_settimeout(L, stream_any(L)); }
int us_gettimeout(lua_State* L) { return common_gettimeout(L, stream_any(L)); }
int us_getstats(lua_State* L) { return common_getstats(L, stream_client(L)); }
int us_setstats(lua_State* L) { return common_setstats(L, stream_client(L)); }
int us_getsockname(lua_State* L) { return get_name(L, stream_any(L), ::getsockname); }
int us_getpeername(lua_State* L) { return get_name(L, stream_any(L), ::getpeername); }
int us_getoption(lua_State* L) { return dispatch_option(L, stream_any(L), kUnixGetOptions); }
int us_setoption(lua_State* L) { return dispatch_option(L, stream_any(L), kUnixSetOptions); }

const luaL_Reg kStreamMethods[] = {
    {"accept", us_accept},
    {"bind", us_bind},
    {"close", us_close},
    {"connect", us_connect},
    {"dirty", us_dirty},
    {"getfd", us_getfd},
    {"getoption", us_getoption},
    {"getpeername", us_getpeername},
    {"getsockname", us_getsockname},
    {"getstats", us_getstats},
    {"gettimeout", us_gettimeout},
    {"listen", us_listen},
    {"receive", us_receive},
    {"refuse", us_refuse},
    {"receiveany", us_receiveany},
    {"_headers", us_headers},
    {"send", us_send},
    {"setfd", us_setfd},
    {"setoption", us_setoption},
    {"setpeername", us_connect},
    {"setsockname", us_bind},
    {"setstats", us_setstats},
    {"settimeout", us_settimeout},
    {"shutdown", us_shutdown},
    {nullptr, nullptr},
};

// --- datagrams -------------------------------------------------------------------------------

Socket* dgram_any(lua_State* L) { return check_socket(L, 1, kUnixDgramAny, "unixdgram{any}"); }
Socket* dgram_unconnected(lua_State* L) {
  return check_socket(L, 1, kUnixDgramUnconnected, kDgramUnconnected);
}

int ud_bind(lua_State* L) { return do_bind(L, dgram_unconnected(L)); }
int ud_connect(lua_State* L) { return do_connect(L, dgram_any(L), kDgramConnected); }
int ud_send(lua_State* L) {
  return dgram_send(L, check_socket(L, 1, kUnixDgramConnected, kDgramConnected));
}
int ud_sendto(lua_State* L) {
  Socket* s = dgram_unconnected(L);
  luaL_checkstring(L, 2);
  sockaddr_un un{};
  socklen_t len = 0;
  if (!make_address(L, 3, &un, &len)) return 2;
  return dgram_sendto(L, s, reinterpret_cast<sockaddr*>(&un), len);
}
int ud_receive(lua_State* L) { return dgram_receive(L, dgram_any(L), Sender::kNone); }
int ud_receivefrom(lua_State* L) { return dgram_receive(L, dgram_unconnected(L), Sender::kUnix); }
int ud_close(lua_State* L) { return common_close(L, dgram_any(L)); }
int ud_dirty(lua_State* L) {
  dgram_any(L);
  lua_pushboolean(L, 0);
  return 1;
}
int ud_getfd(lua_State* L) { return common_getfd(L, dgram_any(L)); }
int ud_setfd(lua_State* L) { return common_setfd(L, dgram_any(L)); }
int ud_settimeout(lua_State* L) { return common_settimeout(L, dgram_any(L)); }
int ud_gettimeout(lua_State* L) { return common_gettimeout(L, dgram_any(L)); }
int ud_getsockname(lua_State* L) { return get_name(L, dgram_any(L), ::getsockname); }
int ud_getpeername(lua_State* L) { return get_name(L, dgram_any(L), ::getpeername); }
int ud_getoption(lua_State* L) { return dispatch_option(L, dgram_any(L), kUnixGetOptions); }
int ud_setoption(lua_State* L) { return dispatch_option(L, dgram_any(L), kUnixSetOptions); }

const luaL_Reg kDgramMethods[] = {
    {"bind", ud_bind},
    {"close", ud_close},
    {"connect", ud_connect},
    {"dirty", ud_dirty},
    {"getfd", ud_getfd},
    {"getoption", ud_getoption},
    {"getpeername", ud_getpeername},
    {"getsockname", ud_getsockname},
    {"gettimeout", ud_gettimeout},
    {"receive", ud_receive},
    {"receivefrom", ud_receivefrom},
    {"send", ud_send},
    {"sendto", ud_sendto},
    {"setfd", ud_setfd},
    {"setoption", ud_setoption},
    {"setpeername", ud_connect},
    {"setsockname", ud_bind},
    {"settimeout", ud_settimeout},
    {nullptr, nullptr},
};

const char* const kStreamGroups[] = {"unixstream{any}", "select{able}", nullptr};
const char* const kDgramGroups[] = {"unixdgram{any}", "select{able}", nullptr};

const lua::ClassSpec kStreamClasses[] = {
    {kStreamMaster, kStreamGroups},
    {kStreamClient, kStreamGroups},
    {kStreamServer, kStreamGroups},
};
const lua::ClassSpec kDgramClasses[] = {
    {kDgramUnconnected, kDgramGroups},
    {kDgramConnected, kDgramGroups},
};

// socket.unix.stream() -> unixstream{master}; socket.unix.dgram() -> unixdgram{unconnected}
int unix_stream(lua_State* L) { return new_socket(L, kStreamMaster, AF_UNIX, SOCK_STREAM); }
int unix_dgram(lua_State* L) { return new_socket(L, kDgramUnconnected, AF_UNIX, SOCK_DGRAM); }
// Calling the module table is the same as calling stream().
int unix_call(lua_State* L) { return unix_stream(L); }

}  // namespace

// Builds the `socket.unix` module table and stores it as the namespace's `_unix` field, which
// lua/socket/unix.lua returns.
void open_unix(lua_State* L, int ns, int rt) {
  lua::register_classes(L, kStreamClasses, 3, kStreamMethods, kSocketMetamethods, rt);
  lua::register_classes(L, kDgramClasses, 2, kDgramMethods, kSocketMetamethods, rt);
  lua_newtable(L);
  const luaL_Reg funcs[] = {
      {"stream", unix_stream},
      {"dgram", unix_dgram},
      {"__call", unix_call},
      {nullptr, nullptr},
  };
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_getfield(L, -1, "stream");
  lua_setfield(L, -2, "tcp");
  lua_getfield(L, -1, "dgram");
  lua_setfield(L, -2, "udp");
  lua_pushvalue(L, -1);
  lua_setmetatable(L, -2);  // the table is its own metatable, for __call
  lua_setfield(L, ns, "_unix");
}

}  // namespace uvs::socket
