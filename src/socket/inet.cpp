// inet.cpp: see inet.hpp. Layer: transport.
#include "socket/inet.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "lua/udata.hpp"
#include "socket/errors.hpp"
#include "socket/resolve.hpp"

namespace uvs::socket {

using loop::Runtime;

namespace {

// The continuation context packs the socket type and whether the class changes on failure.
constexpr lua_KContext kAlways = 0x100;

// The outcome of a finished handshake, from the pending socket error.
int handshake_result(Socket* s) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
  return err;
}

// Stack: sock, address, port, class. Pushes the results of connect. A closed socket keeps its
// class: it never becomes a connected object again.
int connect_finish(lua_State* L, Socket* s, lua_KContext ctx, const char* err) {
  free_addresses(s);
  release(L, s, s->writing);
  if (!s->closed && (!err || (ctx & kAlways))) set_class(L, 1, lua_tostring(L, 4));
  if (err) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return push_ok(L);
}

int connect_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  SocketRuntime* sr = s->sr;
  const int socktype = static_cast<int>(ctx & 0xff);
  int woke = status == LUA_YIELD ? resume_status(L, sr) : kIoDone;
  // Closed in any phase (a lookup, a handshake, between two addresses): the call ends here,
  // and the abandoned lookup frees itself.
  if (s->closed) {
    if (s->phase == Phase::kResolving) delete loop::take_job(sr->rt()->task_of(L));
    return connect_finish(L, s, ctx, io_error(kIoClosed));
  }
  // Back from waiting for a handshake (rather than for the lookup, or not back at all).
  bool resumed = status == LUA_YIELD && s->phase == Phase::kConnecting;
  if (s->phase == Phase::kIdle || s->phase == Phase::kResolving) {
    bool waiting = s->phase == Phase::kResolving;
    addrinfo hints{};
    hints.ai_socktype = socktype;
    hints.ai_family = s->family;
    Resolved r;
    if (!resolve_step(L, sr, &waiting, lua_tostring(L, 2), lua_tostring(L, 3), hints, &r)) {
      s->phase = Phase::kResolving;
      return loop::yield(L, sr->rt(), ctx, connect_k);
    }
    s->phase = Phase::kIdle;
    if (!r.ok()) return connect_finish(L, s, ctx, r.message());
    s->ai = s->ai_next = r.ai;  // freed in free_addresses()
    s->phase = Phase::kConnecting;
    woke = kIoDone;
  }
  const char* err = "host or service not provided, or not known";
  while (s->ai_next) {
    addrinfo* a = s->ai_next;
    int e = 0;
    if (resumed) {
      // Back from waiting for the handshake of address `a`.
      resumed = false;
      e = woke != kIoDone ? woke : handshake_result(s);
    } else {
      s->wr_start = Runtime::now();
      if (s->fd < 0 || s->family != a->ai_family) {
        int fd = -1;
        e = open_fd(a->ai_family, a->ai_socktype, a->ai_protocol, &fd);
        if (e == 0) e = replace_fd(s, fd, a->ai_family);
      }
      if (e == 0) {
        do {
          e = ::connect(s->fd, a->ai_addr, a->ai_addrlen) < 0 ? errno : 0;
        } while (e == EINTR);
      }
      if (e == EINPROGRESS || e == EAGAIN) {
        const loop::Deadline d(s->tm, s->wr_start);
        e = wait_fd(L, s, FdWatch::kWrite, d, "connect");
        if (e == kYield) return loop::yield(L, sr->rt(), ctx, connect_k);
        if (e == kIoDone) e = handshake_result(s);
      }
    }
    if (e == 0) {
      s->family = a->ai_family;
      return connect_finish(L, s, ctx, nullptr);
    }
    err = io_error(e);
    // With a zero timeout only the first address is tried; a closed or cancelled call stops.
    if (s->tm.block == 0.0 || e == kIoClosed || e == kIoCancelled) break;
    s->ai_next = a->ai_next;
  }
  return connect_finish(L, s, ctx, err);
}

// Stack: sock, address, port. Binds to the first resolved address that works.
int bind_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  SocketRuntime* sr = s->sr;
  if (s->closed) {
    if (s->phase == Phase::kResolving) delete loop::take_job(sr->rt()->task_of(L));
    s->phase = Phase::kIdle;
    release(L, s, s->writing);
    return push_error(L, kIoClosed);
  }
  const char* host = lua_tostring(L, 2);
  if (std::strcmp(host, "*") == 0) host = nullptr;
  bool waiting = s->phase == Phase::kResolving;
  addrinfo hints{};
  hints.ai_socktype = static_cast<int>(ctx);
  hints.ai_family = s->family;
  hints.ai_flags = AI_PASSIVE;
  Resolved r;
  if (!resolve_step(L, sr, &waiting, host, lua_tostring(L, 3), hints, &r)) {
    s->phase = Phase::kResolving;
    return loop::yield(L, sr->rt(), ctx, bind_k);
  }
  s->phase = Phase::kIdle;
  release(L, s, s->writing);
  if (!r.ok()) {
    lua_pushnil(L);
    lua_pushstring(L, r.message());
    return 2;
  }
  int e = EADDRNOTAVAIL;
  for (addrinfo* a = r.ai; a; a = a->ai_next) {
    if (s->fd < 0 || s->family != a->ai_family) {
      int fd = -1;
      e = open_fd(a->ai_family, a->ai_socktype, a->ai_protocol, &fd);
      if (e) continue;
      e = replace_fd(s, fd, a->ai_family);
      if (e) break;
    }
    e = ::bind(s->fd, a->ai_addr, a->ai_addrlen) < 0 ? errno : 0;
    if (e == 0) {
      s->family = a->ai_family;
      break;
    }
  }
  freeaddrinfo(r.ai);
  if (e) return push_error(L, e);
  return push_ok(L);
}

// A connect or bind queued behind another write: its turn came (the context is its own), or it
// gave up. Stack as in the entry.
int connect_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return push_error(L, st);
  return connect_k(L, LUA_OK, ctx);
}

int bind_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return push_error(L, st);
  return bind_k(L, LUA_OK, ctx);
}

}  // namespace

int inet_connect(lua_State* L, Socket* s, int socktype, const char* connected_class, bool always) {
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  lua_settop(L, 3);
  lua_pushstring(L, connected_class);
  const lua_KContext ctx = socktype | (always ? kAlways : 0);
  const int st = claim(L, s, s->writing, call_start(s), "connect");
  if (st == kYield) return loop::yield(L, s->sr->rt(), ctx, connect_turn_k);
  if (st != kIoDone) return push_error(L, st);
  return connect_k(L, LUA_OK, ctx);
}

int inet_bind(lua_State* L, Socket* s, int socktype) {
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  lua_settop(L, 3);
  const int st = claim(L, s, s->writing, call_start(s), "bind");
  if (st == kYield) return loop::yield(L, s->sr->rt(), socktype, bind_turn_k);
  if (st != kIoDone) return push_error(L, st);
  return bind_k(L, LUA_OK, socktype);
}

}  // namespace uvs::socket
