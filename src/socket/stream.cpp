// stream.cpp: see stream.hpp. Layer: transport.
//
// Each operation is an entry function that checks its arguments and records the operation's
// state in the Socket (pattern, start time, bytes done), and a continuation `*_k` that does the
// work. The continuation runs the same way whether it is called directly or after the task
// was resumed: it loops over the non-blocking system call and, when the call would block, asks
// wait_fd() to either yield (task) or poll (anything else). No C++ object with a destructor is
// alive across lua_yieldk or any Lua call that may raise.
#include "socket/stream.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "socket/errors.hpp"

namespace uvs::socket {

using loop::FdWatch;
using loop::Runtime;

namespace {

// Pushes `prefix .. data`, the prefix being the optional string at index 3.
void push_prefixed(lua_State* L, const char* data, size_t len) {
  size_t plen = 0;
  const char* prefix = lua_type(L, 3) == LUA_TSTRING ? lua_tolstring(L, 3, &plen) : nullptr;
  if (plen == 0) {
    lua_pushlstring(L, data, len);
    return;
  }
  luaL_Buffer b;
  char* out = luaL_buffinitsize(L, &b, plen + len);
  std::memcpy(out, prefix, plen);
  if (len) std::memcpy(out + plen, data, len);
  luaL_pushresultsize(&b, plen + len);
}

// Hands `m` over to Lua (CRs removed for lines) and drops the consumed bytes from the buffer.
void push_match(lua_State* L, Runtime* rt, Socket* s, const Match& m) {
  size_t len = m.result;
  if (m.strip_cr && len) len = strip_cr(s->buf.mutable_data(), len);
  push_prefixed(L, s->buf.data(), len);
  s->received += static_cast<double>(m.consume);
  s->buf.consume(rt->pool(), m.consume);
}

int receive_done(lua_State* L, Runtime* rt, Socket* s, const Match& m) {
  push_match(L, rt, s, m);
  lua_pushnil(L);
  lua_pushnil(L);
  return 3;
}

int receive_failed(lua_State* L, Runtime* rt, Socket* s, int err) {
  lua_pushnil(L);
  lua_pushstring(L, io_error(err));
  push_match(L, rt, s, s->matcher.partial(s->buf.size()));
  return 3;
}

// Reads whatever the kernel holds into the buffer. Returns kIoDone after reading something,
// kIoClosed at end of stream, EAGAIN, or another errno value. With `small` the read goes into the
// runtime's scratch area and only what arrived is kept (see prefetch); otherwise it goes straight
// into the buffer.
int fill(Runtime* rt, Socket* s, bool small = false) {
  char* at = rt->scratch();
  size_t room = Runtime::kScratchSize;
  if (!small) {
    const Pattern& p = s->matcher.pattern();
    size_t want = BufferPool::kReadChunk;
    if (p.kind == PatternKind::kCount && p.count > s->buf.size() + want) {
      want = p.count - s->buf.size();
    }
    at = s->buf.prepare(rt->pool(), want, &room);
    if (!at) return ENOMEM;
  }
  ssize_t n;
  do {
    n = ::recv(s->fd, at, room, 0);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    const auto got = static_cast<size_t>(n);
    if (small) {
      size_t unused = 0;
      char* dst = s->buf.prepare(rt->pool(), got, &unused);
      if (!dst) return ENOMEM;
      std::memcpy(dst, at, got);
    }
    s->buf.commit(got);
    if (got < room && s->watch) s->watch->drained();
    return kIoDone;
  }
  const int err = n == 0 ? kIoClosed : errno;
  if ((err == EAGAIN || err == EWOULDBLOCK) && s->watch) s->watch->drained();
  // A connection waiting for data holds no receive memory.
  if (s->buf.empty()) s->buf.release(rt->pool());
  return err == EWOULDBLOCK ? EAGAIN : err;
}

// The poll callback's read for a waiting receive (FdWatch::Prefetch). What it cannot return
// (end of stream, an error) waits in s->pending for the receive to report. A receive that
// expects little (a line, a short count) into an empty buffer reads through the scratch area,
// so that a burst of ten thousand ready connections does not take ten thousand 8 KiB blocks
// before their tasks run; a large receive reads in place.
void prefetch(Runtime* rt, void* ctx) {
  auto* s = static_cast<Socket*>(ctx);
  if (s->fd < 0 || s->pending) return;
  const Pattern& p = s->matcher.pattern();
  const bool small = s->buf.empty() && (p.kind == PatternKind::kLine ||
                                        (p.kind == PatternKind::kCount && p.count < 4096));
  const int err = fill(rt, s, small);
  if (err != kIoDone && err != EAGAIN) s->pending = err;
}

int receive_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  Runtime* rt = s->rt;
  int err = status == LUA_YIELD ? resume_status(L, rt) : kIoDone;
  const loop::Deadline d(s->tm, s->rd_start);
  while (err == kIoDone) {
    Match m;
    if (s->matcher.complete(s->buf.data(), s->buf.size(), &m)) return receive_done(L, rt, s, m);
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    // In a task whose previous read drained the socket, wait at once: the watcher reports new
    // data, so the recv() that would fail with EAGAIN is saved.
    if (s->pending) {
      err = s->pending;
      s->pending = 0;
    } else {
      const bool skip = s->watch && !s->watch->maybe_readable() && rt->yieldable_task(L);
      err = skip ? EAGAIN : fill(rt, s);
    }
    if (err == kIoClosed && s->matcher.done_at_eof(s->buf.size())) {
      const size_t n = s->buf.size();
      return receive_done(L, rt, s, Match{n, n, false});
    }
    if (err == EAGAIN) {
      err = wait_fd(L, rt, s, FdWatch::kRead, d, "receive", prefetch);
      if (err == kYield) return Runtime::yield(L, ctx, receive_k);
    }
  }
  return receive_failed(L, rt, s, err);
}

int send_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  Runtime* rt = s->rt;
  const char* data = lua_tostring(L, 2) + s->wr_first;
  const size_t count = s->wr_count;
  int err = status == LUA_YIELD ? resume_status(L, rt) : kIoDone;
  const loop::Deadline d(s->tm, s->wr_start);
  while (err == kIoDone && s->wr_done < count) {
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    const ssize_t n = ::send(s->fd, data + s->wr_done, count - s->wr_done, MSG_NOSIGNAL);
    if (n >= 0) {
      s->wr_done += static_cast<size_t>(n);
      s->sent += static_cast<double>(n);
      continue;
    }
    if (errno == EINTR) continue;
    err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      err = wait_fd(L, rt, s, FdWatch::kWrite, d, "send");
      if (err == kYield) return Runtime::yield(L, ctx, send_k);
    }
  }
  const auto last_sent = static_cast<lua_Number>(s->wr_first + s->wr_done);
  if (err != kIoDone) {
    lua_pushnil(L);
    lua_pushstring(L, io_error(err));
    lua_pushnumber(L, last_sent);
  } else {
    lua_pushnumber(L, last_sent);
    lua_pushnil(L);
    lua_pushnil(L);
  }
  return 3;
}

}  // namespace

int stream_receive(lua_State* L, Socket* s) {
  lua_settop(L, 3);
  size_t plen = 0;
  if (!lua_isnil(L, 3)) luaL_checklstring(L, 3, &plen);
  Pattern p;
  const int type = lua_type(L, 2);
  size_t wlen = 0;
  const char* word = type == LUA_TSTRING ? lua_tolstring(L, 2, &wlen) : nullptr;
  // "*l", "l", "*a", "a" are words; only other strings may be numbers ("10").
  const bool is_word = word && wlen > 0 && (word[0] == '*' || (word[0] >= 'a' && word[0] <= 'z') ||
                                            (word[0] >= 'A' && word[0] <= 'Z'));
  if (type == LUA_TNIL) {
    p = Pattern{PatternKind::kLine, 0};
  } else if (!is_word && (type == LUA_TNUMBER || lua_isnumber(L, 2))) {
    const lua_Number n = lua_tonumber(L, 2);
    luaL_argcheck(L, n >= 0, 2, "invalid receive pattern");
    const auto wanted = static_cast<size_t>(n);
    // A prefix at least as long as the count is the answer, untouched (LuaSocket does this).
    if (plen != 0 && wanted <= plen) {
      lua_pushvalue(L, 3);
      lua_pushnil(L);
      lua_pushnil(L);
      return 3;
    }
    p = Pattern{PatternKind::kCount, wanted - plen};
  } else {
    luaL_argcheck(L, is_word && parse_pattern_word(word, wlen, &p), 2, "invalid receive pattern");
  }
  s->matcher.reset(p);
  s->rd_start = call_start(s);
  return receive_k(L, LUA_OK, 0);
}

int stream_send(lua_State* L, Socket* s) {
  size_t size = 0;
  luaL_checklstring(L, 2, &size);
  const auto len = static_cast<lua_Integer>(size);
  lua_Integer first = 1;
  lua_Integer last = len;
  if (lua_gettop(L) > 2) {
    first = static_cast<lua_Integer>(luaL_optnumber(L, 3, 1));
    last = static_cast<lua_Integer>(luaL_optnumber(L, 4, -1));
    if (first < 0) first = len + first + 1;
    if (last < 0) last = len + last + 1;
    if (first < 1) first = 1;
    if (last > len) last = len;
  }
  // The range lives in the socket, and the string stays at index 2 while the call waits.
  s->wr_first = static_cast<size_t>(first - 1);
  s->wr_count = first <= last ? static_cast<size_t>(last - first + 1) : 0;
  s->wr_start = call_start(s);
  s->wr_done = 0;
  return send_k(L, LUA_OK, 0);
}

namespace {

int accept_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  Runtime* rt = s->rt;
  const char* client_class = lua_tostring(L, 2);  // pushed by stream_accept
  (void)ctx;
  int err = status == LUA_YIELD ? resume_status(L, rt) : kIoDone;
  const loop::Deadline d(s->tm, s->rd_start);
  while (err == kIoDone) {
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    const int fd = ::accept4(s->fd, reinterpret_cast<sockaddr*>(&addr), &alen,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      push_socket(L, client_class, fd, s->family);
      return 1;
    }
    err = errno;
    if (err == EINTR) {
      err = kIoDone;
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED) {
      if (err != ECONNABORTED && s->watch) s->watch->drained();
      err = wait_fd(L, rt, s, FdWatch::kRead, d, "accept");
      if (err == kYield) return Runtime::yield(L, 0, accept_k);
    }
  }
  return push_error(L, err);
}

}  // namespace

int stream_accept(lua_State* L, Socket* s, const char* client_class) {
  lua_settop(L, 1);
  lua_pushstring(L, client_class);
  s->rd_start = call_start(s);
  return accept_k(L, LUA_OK, 0);
}

}  // namespace uvs::socket
