// dgram.cpp: see dgram.hpp. Layer: transport.
//
// Like stream.cpp, each call is an entry function that claims its direction of the socket, plus
// a continuation that loops over the non-blocking system call and asks wait_fd() to yield or
// poll when it would block. A sendto keeps its destination address in a userdata on the stack.
#include "socket/dgram.hpp"

#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "socket/address.hpp"
#include "socket/errors.hpp"

namespace uvs::socket {

using loop::Runtime;

namespace {

constexpr size_t kDatagramSize = 8192;
// No datagram is larger (the kernel's socket buffers bound them far below): a larger request
// does not allocate more.
constexpr size_t kMaxDatagram = 4u << 20;

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
  SocketRuntime* sr = s->sr;
  const auto from = static_cast<Sender>(ctx);
  const auto size = static_cast<size_t>(lua_tointeger(L, 2));  // capped at kMaxDatagram
  int err = status == LUA_YIELD ? resume_status(L, sr) : kIoDone;
  const loop::Deadline d(s->tm, s->rd_start);
  while (err == kIoDone) {
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    // A large receive reads into the userdata at 4, made at the entry.
    char stack_buf[kDatagramSize];
    char* buf = size > sizeof stack_buf ? static_cast<char*>(lua_touserdata(L, 4)) : stack_buf;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    const ssize_t n = ::recvfrom(
        s->fd, buf, size, 0, from == Sender::kNone ? nullptr : reinterpret_cast<sockaddr*>(&addr),
        from == Sender::kNone ? nullptr : &alen);
    const int e = errno;
    if (n >= 0) {
      release(L, s, s->reading);
      loop::charge(sr->rt(), static_cast<size_t>(n));  // fairness: see receive_begin
      lua_pushlstring(L, buf, static_cast<size_t>(n));
      s->received += static_cast<double>(n);
      if (from == Sender::kNone) return 1;
      return 1 + push_sender(L, from, addr, alen);
    }
    if (e == EINTR) continue;
    err = e;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      err = wait_fd(L, s, FdWatch::kRead, d, "receive");
      if (err == kYield) return loop::yield(L, sr->rt(), ctx, receive_k);
    }
  }
  release(L, s, s->reading);
  return push_error(L, err);
}

// Stack: sock, datagram [, destination address userdata]. Without a destination the datagram
// goes to the connected peer.
int send_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  size_t len = 0;
  const char* data = lua_tolstring(L, 2, &len);
  int err = status == LUA_YIELD ? resume_status(L, s->sr) : kIoDone;
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
      release(L, s, s->writing);
      loop::charge(s->sr->rt(), static_cast<size_t>(n));  // fairness: see send_begin
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
      err = wait_fd(L, s, FdWatch::kWrite, d, "send");
      if (err == kYield) return loop::yield(L, s->sr->rt(), ctx, send_k);
    }
  }
  release(L, s, s->writing);
  return push_error(L, err);
}

// The continuation contexts of the turn waits pack the start time; the operation's own context
// (who sent, whether there is a destination) comes from the stack instead.
// A task that keeps finding datagrams (or room) lets the others run now and then: the work is
// charged when a call succeeds, and the pause comes at the start of a later call.
int receive_begin(lua_State* L, Socket* s, double start) {
  s->rd_start = start;
  const auto ctx = static_cast<lua_KContext>(lua_tointeger(L, 3));
  if (loop::spend(L, s->sr->rt(), 0) == loop::Wake::kNone) {
    return loop::yield(L, s->sr->rt(), ctx, receive_k);
  }
  return receive_k(L, LUA_OK, ctx);
}

int receive_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return push_error(L, st);
  return receive_begin(L, s, ctx_start(ctx));
}

int send_begin(lua_State* L, Socket* s, double start) {
  s->wr_start = start;
  const lua_KContext ctx = lua_gettop(L) >= 3 ? 1 : 0;
  if (loop::spend(L, s->sr->rt(), 0) == loop::Wake::kNone) {
    return loop::yield(L, s->sr->rt(), ctx, send_k);
  }
  return send_k(L, LUA_OK, ctx);
}

int send_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return push_error(L, st);
  return send_begin(L, s, ctx_start(ctx));
}

int start_send(lua_State* L, Socket* s) {
  const double start = call_start(s);
  const int st = claim(L, s, s->writing, start, "send");
  if (st == kYield) return loop::yield(L, s->sr->rt(), start_ctx(start), send_turn_k);
  if (st != kIoDone) return push_error(L, st);
  return send_begin(L, s, start);
}

}  // namespace

int dgram_receive(lua_State* L, Socket* s, Sender from) {
  const lua_Number size = luaL_optnumber(L, 2, kDatagramSize);
  luaL_argcheck(L, size >= 0, 2, "invalid receive size");
  lua_settop(L, 1);
  const size_t wanted =
      size < static_cast<lua_Number>(kMaxDatagram) ? static_cast<size_t>(size) : kMaxDatagram;
  lua_pushinteger(L, static_cast<lua_Integer>(wanted));
  lua_pushinteger(L, static_cast<lua_Integer>(from));
  if (wanted > kDatagramSize) lua_newuserdatauv(L, wanted, 0);  // the buffer, before the claim
  const double start = call_start(s);
  const int st = claim(L, s, s->reading, start, "receive");
  if (st == kYield) return loop::yield(L, s->sr->rt(), start_ctx(start), receive_turn_k);
  if (st != kIoDone) return push_error(L, st);
  return receive_begin(L, s, start);
}

int dgram_send(lua_State* L, Socket* s) {
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  return start_send(L, s);
}

int dgram_sendto(lua_State* L, Socket* s, const sockaddr* addr, socklen_t len) {
  lua_settop(L, 2);
  std::memcpy(lua_newuserdatauv(L, len, 0), addr, len);
  return start_send(L, s);
}

}  // namespace uvs::socket
