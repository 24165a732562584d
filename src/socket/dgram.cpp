// dgram.cpp: see dgram.hpp. Layer: transport.
//
// Like stream.cpp, each call is an entry function plus a continuation that loops over the
// non-blocking system call and asks wait_fd() to yield or poll when it would block. A send
// waiting for room keeps its destination address in the Socket (`dest`), since the Lua stack
// holds only the text of it.
#include "socket/dgram.hpp"

#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "socket/address.hpp"
#include "socket/errors.hpp"

namespace uvs::socket {

using loop::FdWatch;
using loop::Runtime;

namespace {

constexpr size_t kDatagramSize = 8192;

// Pushes the sender of a datagram for receivefrom.
int push_sender(lua_State* L, Sender from, const sockaddr_storage& addr, socklen_t alen) {
  if (from == Sender::kInet) {
    char host[INET6_ADDRSTRLEN + 16];
    int port = 0;
    if (numeric_name(reinterpret_cast<const sockaddr*>(&addr), alen, host, sizeof host, &port)) {
      host[0] = '\0';
    }
    lua_pushstring(L, host);
    lua_pushinteger(L, port);
    return 2;
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
  const size_t off = offsetof(sockaddr_un, sun_path);
  size_t len = alen > off ? alen - off : 0;
  // A path is NUL-terminated; an abstract name (leading NUL) is given by its length.
  if (len > 0 && un->sun_path[0] != '\0') len = strnlen(un->sun_path, len);
  lua_pushlstring(L, un->sun_path, len);
  return 1;
}

int receive_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  Runtime* rt = s->rt;
  const auto from = static_cast<Sender>(ctx);
  const auto size = static_cast<size_t>(lua_tointeger(L, 2));
  int err = status == LUA_YIELD ? resume_status(L, rt) : kIoDone;
  const loop::Deadline d(s->tm, s->rd_start);
  while (err == kIoDone) {
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    char stack_buf[kDatagramSize];
    char* buf = stack_buf;
    size_t cap = sizeof stack_buf;
    if (size > sizeof stack_buf) {
      buf = rt->pool().take(size, &cap);  // given back below
      if (!buf) return push_error(L, ENOMEM);
    }
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    const ssize_t n = ::recvfrom(s->fd, buf, size, 0,
                                 from == Sender::kNone ? nullptr : reinterpret_cast<sockaddr*>(&addr),
                                 from == Sender::kNone ? nullptr : &alen);
    const int e = errno;
    if (n >= 0) {
      lua_pushlstring(L, buf, static_cast<size_t>(n));
      if (buf != stack_buf) rt->pool().give(buf, cap);
      s->received += static_cast<double>(n);
      if (from == Sender::kNone) return 1;
      return 1 + push_sender(L, from, addr, alen);
    }
    if (buf != stack_buf) rt->pool().give(buf, cap);
    if (e == EINTR) continue;
    err = e;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      err = wait_fd(L, rt, s, FdWatch::kRead, d, "receive");
      if (err == kYield) return Runtime::yield(L, ctx, receive_k);
    }
  }
  return push_error(L, err);
}

// Stack: sock, datagram [, destination address userdata]. Without a destination the datagram
// goes to the connected peer.
int send_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  Runtime* rt = s->rt;
  size_t len = 0;
  const char* data = lua_tolstring(L, 2, &len);
  int err = status == LUA_YIELD ? resume_status(L, rt) : kIoDone;
  const loop::Deadline d(s->tm, s->wr_start);
  while (err == kIoDone) {
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    const ssize_t n =
        ctx ? ::sendto(s->fd, data, len, MSG_NOSIGNAL, static_cast<sockaddr*>(lua_touserdata(L, 3)),
                       static_cast<socklen_t>(lua_rawlen(L, 3)))
            : ::send(s->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0) {
      s->sent += static_cast<double>(n);
      lua_pushnumber(L, static_cast<lua_Number>(n));
      return 1;
    }
    err = errno;
    if (err == EINTR) {
      err = kIoDone;
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
      err = wait_fd(L, rt, s, FdWatch::kWrite, d, "send");
      if (err == kYield) return Runtime::yield(L, ctx, send_k);
    }
  }
  return push_error(L, err);
}

}  // namespace

int dgram_receive(lua_State* L, Socket* s, Sender from) {
  const lua_Number size = luaL_optnumber(L, 2, kDatagramSize);
  luaL_argcheck(L, size >= 0, 2, "invalid receive size");
  lua_settop(L, 1);
  // Far beyond any datagram, and a size the pool refuses at once; no integer cast of 1e308.
  constexpr lua_Number kLargest = 9007199254740992.0;  // 2^53
  lua_pushinteger(L, static_cast<lua_Integer>(size < kLargest ? size : kLargest));
  s->rd_start = call_start(s);
  return receive_k(L, LUA_OK, static_cast<lua_KContext>(from));
}

int dgram_send(lua_State* L, Socket* s) {
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  s->wr_start = call_start(s);
  return send_k(L, LUA_OK, 0);
}

int dgram_sendto(lua_State* L, Socket* s, const sockaddr* addr, socklen_t len) {
  lua_settop(L, 2);
  std::memcpy(lua_newuserdatauv(L, len, 0), addr, len);
  s->wr_start = call_start(s);
  return send_k(L, LUA_OK, 1);
}

}  // namespace uvs::socket
