// stream.cpp: see stream.hpp. Layer: transport.
//
// Each operation is an entry function that checks its arguments, claims its direction of the
// socket and only then records the operation's state in the Socket (pattern, start time, bytes
// done), and a continuation `*_k` that does the work. A task that finds the direction busy
// waits its turn in `*_turn_k`, which starts the operation once the turn came. The continuation
// runs the same way whether it is called directly or after the task was resumed: it loops over
// the non-blocking system call and, when the call would block, asks wait_fd() to either yield
// (task) or poll (anything else). Every exit releases the direction before pushing results (a
// push may raise a memory error). No C++ object with a destructor is alive across lua_yieldk
// or any Lua call that may raise.
#include "socket/stream.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "socket/errors.hpp"
#include "socket/fields_scan.hpp"
#include "socket/tls_session.hpp"

namespace uvs::socket {

using loop::Runtime;
using loop::Wake;

namespace {

// The largest part of a count receive allocated before its data arrives.
constexpr size_t kUpFront = 1u << 20;
// What accepting a connection counts for the fairness budget (64 a pause).
constexpr size_t kAcceptCost = loop::kBudget / 64;

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
void push_match(lua_State* L, Socket* s, const Match& m) {
  size_t len = m.result;
  if (m.strip_cr && len) len = strip_cr(s->buf.mutable_data(), len);
  push_prefixed(L, s->buf.data(), len);
  s->received += static_cast<double>(m.consume);
  s->buf.consume(s->sr->pool(), m.consume);
}

int receive_done(lua_State* L, Socket* s, const Match& m) {
  release(L, s, s->reading);
  push_match(L, s, m);
  lua_pushnil(L);
  lua_pushnil(L);
  return 3;
}

// LuaSocket's message for `err`, or the TLS session's own for a TLS failure.
const char* error_text(const Socket* s, int err) {
  return err == kTlsFailed && s->tls ? s->tls->message : io_error(err);
}

int receive_failed(lua_State* L, Socket* s, int err) {
  release(L, s, s->reading);
  lua_pushnil(L);
  lua_pushstring(L, error_text(s, err));
  // An oversized receive hands over exactly its limit; the rest stays for the next call.
  push_match(L, s, err == kIoOversized ? s->matcher.over() : s->matcher.partial(s->buf.size()));
  return 3;
}

// A receive that never got the socket (closed, busy past its timeout, cancelled): nothing was
// read, the partial result is the prefix.
int receive_refused(lua_State* L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, io_error(err));
  push_prefixed(L, "", 0);
  return 3;
}

// Reads whatever the kernel holds into the buffer. Returns kIoDone after reading something,
// kIoClosed at end of stream, EAGAIN, or another errno value. With `small` the read goes into the
// runtime's scratch area and only what arrived is kept (see prefetch); otherwise it goes straight
// into the buffer.
// How much room a read into the buffer asks for. A count is read in one piece when it is not
// too large; a large one grows the buffer with what arrives (doubling), so that receive(1e12)
// takes memory only for data that came.
inline size_t read_want(const Socket* s) {
  const Pattern& p = s->matcher.pattern();
  size_t want = BufferPool::kReadChunk;
  if (p.kind == PatternKind::kCount && p.count > s->buf.size() + want) {
    want = p.count - s->buf.size();
    if (want > kUpFront) want = s->buf.size() > kUpFront ? s->buf.size() : kUpFront;
  }
  return want;
}

int fill(SocketRuntime* sr, Socket* s, bool small = false) {
  char* at = sr->scratch();
  size_t room = SocketRuntime::kScratchSize;
  if (!small) {
    at = s->buf.prepare(sr->pool(), read_want(s), &room);
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
      char* dst = s->buf.prepare(sr->pool(), got, &unused);
      if (!dst) return ENOMEM;
      std::memcpy(dst, at, got);
    }
    s->buf.commit(got);
    if (FdWatch* w = watch_of(s); got < room && w) w->drained();
    return kIoDone;
  }
  const int err = n == 0 ? kIoClosed : errno;
  if (FdWatch* w = watch_of(s); (err == EAGAIN || err == EWOULDBLOCK) && w) w->drained();
  // A connection waiting for data holds no receive memory.
  if (s->buf.empty()) s->buf.release(sr->pool());
  return err == EWOULDBLOCK ? EAGAIN : err;
}

// fill() for a tls{client}: decrypted bytes straight into the buffer. Returns kIoDone, kIoClosed,
// kTlsWantRead/kTlsWantWrite, ENOMEM, an errno value or kTlsFailed.
int fill_tls(SocketRuntime* sr, Socket* s) {
  size_t room = 0;
  char* at = s->buf.prepare(sr->pool(), read_want(s), &room);
  if (!at) return ENOMEM;
  size_t got = 0;
  const int err = tls_read(s, at, room, &got);
  if (err == kIoDone) {
    s->buf.commit(got);
    return kIoDone;
  }
  if (s->buf.empty()) s->buf.release(sr->pool());
  return err;
}

// The direction a TLS step that wants `err` (kTlsWantRead/kTlsWantWrite) waits for. The
// watcher has one reader and one writer slot, which the socket's own read and write owners
// use: a step of one direction that needs the other one's readiness while that direction is
// busy (renegotiation, which the contexts refuse, or a key update met by a receive while a
// send waits) waits for its own direction instead and retries.
inline int tls_wait_dir(Socket* s, int err, bool reading) {
  const int dir = err == kTlsWantRead ? FdWatch::kRead : FdWatch::kWrite;
  if (reading && dir == FdWatch::kWrite && s->writing.busy()) return FdWatch::kRead;
  if (!reading && dir == FdWatch::kRead && s->reading.busy()) return FdWatch::kWrite;
  return dir;
}

// The poll callback's read for a waiting receive (FdWatch::Prefetch). What it cannot return
// (end of stream, an error) waits in s->pending for the receive to report. A receive that
// expects little (a line, a short count) into an empty buffer reads through the scratch area,
// so that a burst of ten thousand ready connections does not take ten thousand 8 KiB blocks
// before their tasks run; a large receive reads in place.
void prefetch(SocketRuntime* sr, void* ctx) {
  auto* s = static_cast<Socket*>(ctx);
  if (s->fd < 0 || s->pending) return;
  const Pattern& p = s->matcher.pattern();
  const bool small = s->buf.empty() && (p.kind == PatternKind::kLine ||
                                        (p.kind == PatternKind::kCount && p.count < 4096));
  const int err = fill(sr, s, small);
  if (err != kIoDone && err != EAGAIN) s->pending = err;
}

// The receive continuation, instantiated for plain streams and for tls{client} (kTls): the TLS
// one reads through the session and has no read-ahead in the poll callback (the bytes there
// must be decrypted first); the plain one is exactly what it is without TLS.
template <bool kTls>
int receive_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  SocketRuntime* sr = s->sr;
  int err = status == LUA_YIELD ? resume_status(L, sr) : kIoDone;
  const loop::Deadline d(s->tm, s->rd_start);
  while (err == kIoDone) {
    Match m;
    if (s->matcher.complete(s->buf.data(), s->buf.size(), &m)) return receive_done(L, s, m);
    if (s->matcher.oversized(s->buf.size())) {
      err = kIoOversized;
      break;
    }
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    const size_t before = s->buf.size();
    if constexpr (kTls) {
      err = fill_tls(sr, s);  // the session's BIO saves the recv() that would fail
    } else if (s->pending) {
      // When the previous read drained the socket and the watcher has reported nothing since,
      // wait at once: the recv() that would fail with EAGAIN is saved.
      err = s->pending;
      s->pending = 0;
    } else {
      const FdWatch* w = watch_of(s);
      const bool skip = w && !w->maybe_readable();
      err = skip ? EAGAIN : fill(sr, s);
    }
    // A receive that keeps finding data lets the other tasks run now and then.
    if (err == kIoDone && loop::spend(L, sr->rt(), s->buf.size() - before) == loop::Wake::kNone) {
      return loop::yield(L, sr->rt(), ctx, receive_k<kTls>);
    }
    if (err == kIoClosed && s->matcher.oversized(s->buf.size())) err = kIoOversized;
    if (err == kIoClosed && s->matcher.done_at_eof(s->buf.size())) {
      const size_t n = s->buf.size();
      return receive_done(L, s, Match{n, n, false});
    }
    if constexpr (kTls) {
      if (err == kTlsWantRead || err == kTlsWantWrite) {
        err = wait_fd(L, s, tls_wait_dir(s, err, true), d, "receive");
        if (err == kYield) return loop::yield(L, sr->rt(), ctx, receive_k<kTls>);
      }
    } else if (err == EAGAIN) {
      err = wait_fd(L, s, FdWatch::kRead, d, "receive", prefetch);
      if (err == kYield) return loop::yield(L, sr->rt(), ctx, receive_k<kTls>);
    }
  }
  return receive_failed(L, s, err);
}

void send_range(lua_State* L, size_t* first, size_t* count);

template <bool kTls>
int send_k(lua_State* L, int status, lua_KContext ctx);

// The send loop, for plain streams and (kTls) through a tls{client}'s session: sends the string
// at 2 from byte `pos` up to `end`. Where it got to travels in the context of its yields, not in
// the socket; the continuation finds the end of the range again in the arguments, which stay on
// the stack while the call waits.
template <bool kTls>
int send_step(lua_State* L, Socket* s, size_t pos, size_t end, int err) {
  const char* data = lua_tostring(L, 2);
  const loop::Deadline d(s->tm, s->wr_start);
  while (err == kIoDone && pos < end) {
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    if constexpr (kTls) {
      size_t n = 0;
      err = tls_write(s, data + pos, end - pos, &n);
      if (err == kIoDone) {
        pos += n;
        s->sent += static_cast<double>(n);
        if (loop::spend(L, s->sr->rt(), n) == loop::Wake::kNone) {
          return loop::yield(L, s->sr->rt(), static_cast<lua_KContext>(pos), send_k<kTls>);
        }
        continue;
      }
      if (err == kTlsWantRead || err == kTlsWantWrite) {
        err = wait_fd(L, s, tls_wait_dir(s, err, false), d, "send");
        if (err == kYield) {
          return loop::yield(L, s->sr->rt(), static_cast<lua_KContext>(pos), send_k<kTls>);
        }
      }
      continue;
    }
    const ssize_t n = ::send(s->fd, data + pos, end - pos, MSG_NOSIGNAL);
    if (n >= 0) {
      pos += static_cast<size_t>(n);
      s->sent += static_cast<double>(n);
      // A send that keeps finding room lets the other tasks run now and then.
      if (loop::spend(L, s->sr->rt(), static_cast<size_t>(n)) == loop::Wake::kNone) {
        return loop::yield(L, s->sr->rt(), static_cast<lua_KContext>(pos), send_k<kTls>);
      }
      continue;
    }
    if (errno == EINTR) continue;
    err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      err = wait_fd(L, s, FdWatch::kWrite, d, "send");
      if (err == kYield) {
        return loop::yield(L, s->sr->rt(), static_cast<lua_KContext>(pos), send_k<kTls>);
      }
    }
  }
  const auto last_sent = static_cast<lua_Number>(pos);
  release(L, s, s->writing);
  if (err != kIoDone) {
    lua_pushnil(L);
    lua_pushstring(L, error_text(s, err));
    lua_pushnumber(L, last_sent);
  } else {
    lua_pushnumber(L, last_sent);
    lua_pushnil(L);
    lua_pushnil(L);
  }
  return 3;
}

// The send continuation: `ctx` is the offset of the next byte to send.
template <bool kTls>
int send_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;  // always LUA_YIELD: send_step is entered directly the first time
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  size_t first = 0;
  size_t count = 0;
  send_range(L, &first, &count);  // checked at the entry already
  return send_step<kTls>(L, s, static_cast<size_t>(ctx), first + count, resume_status(L, s->sr));
}

// Reads the receive arguments at 2 (pattern), 3 (prefix) and 4 (maxsize) into `*p`. Returns
// false when the prefix alone is the answer (a count no longer than the prefix), which it then
// pushes. maxsize bounds what one call may gather, prefix included.
bool receive_pattern(lua_State* L, Pattern* p) {
  size_t plen = 0;
  if (!lua_isnil(L, 3)) luaL_checklstring(L, 3, &plen);
  lua_Integer maxsize = 0;
  if (!lua_isnil(L, 4)) {
    maxsize = luaL_checkinteger(L, 4);
    luaL_argcheck(L, maxsize >= 1, 4, "maxsize must be at least 1");
    luaL_argcheck(L, plen < static_cast<lua_Unsigned>(maxsize), 3,
                  "prefix not shorter than maxsize");
  }
  const int type = lua_type(L, 2);
  size_t wlen = 0;
  const char* word = type == LUA_TSTRING ? lua_tolstring(L, 2, &wlen) : nullptr;
  // "*l", "l", "*a", "a" are words; only other strings may be numbers ("10").
  const bool is_word =
      word && wlen > 0 &&
      (word[0] == '*' || (word[0] >= 'a' && word[0] <= 'z') || (word[0] >= 'A' && word[0] <= 'Z'));
  if (type == LUA_TNIL) {
    *p = Pattern{PatternKind::kLine, 0};
  } else if (!is_word && (type == LUA_TNUMBER || lua_isnumber(L, 2))) {
    const lua_Number n = lua_tonumber(L, 2);
    luaL_argcheck(L, n >= 0, 2, "invalid receive pattern");
    luaL_argcheck(L, maxsize == 0 || n <= static_cast<lua_Number>(maxsize), 2,
                  "count larger than maxsize");
    // Beyond 2^62 no receive could ever complete; such counts read as that limit (the buffer
    // then fails to grow past what memory allows, reporting the data received).
    const auto wanted = static_cast<size_t>(lua::number_to_ll(n));
    // A prefix at least as long as the count is the answer, untouched (LuaSocket does this).
    if (plen != 0 && wanted <= plen) {
      lua_pushvalue(L, 3);
      lua_pushnil(L);
      lua_pushnil(L);
      return false;
    }
    *p = Pattern{PatternKind::kCount, wanted - plen};
  } else {
    luaL_argcheck(L, is_word && parse_pattern_word(word, wlen, p), 2, "invalid receive pattern");
  }
  if (maxsize) p->limit = static_cast<size_t>(maxsize) - plen;
  return true;
}

template <bool kTls>
int receive_begin(lua_State* L, Socket* s, const Pattern& p, double start) {
  s->matcher.reset(p);
  s->rd_start = start;
  return receive_k<kTls>(L, LUA_OK, 0);
}

// A receive queued behind another one: its turn came, or it gave up.
template <bool kTls>
int receive_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return receive_refused(L, st);
  Pattern p;
  (void)receive_pattern(L, &p);  // checked at the entry already
  return receive_begin<kTls>(L, s, p, ctx_start(ctx));
}

// Reads the send arguments: the string at 2, the range at 3 and 4 (LuaSocket's clamping).
void send_range(lua_State* L, size_t* first, size_t* count) {
  size_t size = 0;
  luaL_checklstring(L, 2, &size);
  const auto len = static_cast<lua_Integer>(size);
  lua_Integer i = 1;
  lua_Integer j = len;
  if (lua_gettop(L) > 2) {
    i = static_cast<lua_Integer>(lua::number_to_ll(luaL_optnumber(L, 3, 1), 1));
    j = static_cast<lua_Integer>(lua::number_to_ll(luaL_optnumber(L, 4, -1), -1));
    if (i < 0) i = len + i + 1;
    if (j < 0) j = len + j + 1;
    if (i < 1) i = 1;
    if (j > len) j = len;
  }
  *first = static_cast<size_t>(i - 1);
  *count = i <= j ? static_cast<size_t>(j - i + 1) : 0;
}

// A send that never got the socket: nothing was sent, the last index is the one before i.
int send_refused(lua_State* L, int err) {
  size_t first = 0;
  size_t count = 0;
  send_range(L, &first, &count);
  lua_pushnil(L);
  lua_pushstring(L, io_error(err));
  lua_pushnumber(L, static_cast<lua_Number>(first));
  return 3;
}

template <bool kTls>
int send_begin(lua_State* L, Socket* s, size_t first, size_t count, double start) {
  s->wr_start = start;
  return send_step<kTls>(L, s, first, first + count, kIoDone);
}

template <bool kTls>
int send_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return send_refused(L, st);
  size_t first = 0;
  size_t count = 0;
  send_range(L, &first, &count);  // checked at the entry already
  return send_begin<kTls>(L, s, first, count, ctx_start(ctx));
}

// receive() and receive("*l"), the calls of nearly every line protocol, without the general
// parsing: true when the arguments are exactly one of those.
bool plain_line(lua_State* L) {
  const int top = lua_gettop(L);
  if (top == 1) return true;
  if (top != 2 || lua_type(L, 2) != LUA_TSTRING) return false;
  size_t n = 0;
  const char* w = lua_tolstring(L, 2, &n);
  return n == 2 && w[0] == '*' && w[1] == 'l';
}

template <bool kTls>
int receive_entry(lua_State* L, Socket* s) {
  Pattern p;
  if (plain_line(L)) {
    lua_settop(L, 4);
    p = Pattern{PatternKind::kLine, 0, 0};
  } else {
    lua_settop(L, 4);
    if (!receive_pattern(L, &p)) return 3;
  }
  const double start = call_start(s);
  const int st = claim(L, s, s->reading, start, "receive");
  if (st == kYield) return loop::yield(L, s->sr->rt(), start_ctx(start), receive_turn_k<kTls>);
  if (st != kIoDone) return receive_refused(L, st);
  return receive_begin<kTls>(L, s, p, start);
}

}  // namespace

int stream_receive(lua_State* L, Socket* s) { return receive_entry<false>(L, s); }
int tls_stream_receive(lua_State* L, Socket* s) { return receive_entry<true>(L, s); }

namespace {

// The pattern of receiveany: at most `max` (at 2) bytes, as soon as some are there.
Pattern any_pattern(lua_State* L) {
  return Pattern{PatternKind::kAny, static_cast<size_t>(lua_tointeger(L, 2)), 0};
}

template <bool kTls>
int receive_any_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return receive_refused(L, st);
  return receive_begin<kTls>(L, s, any_pattern(L), ctx_start(ctx));
}

template <bool kTls>
int receive_any_entry(lua_State* L, Socket* s) {
  const lua_Integer max = luaL_optinteger(L, 2, BufferPool::kReadChunk);
  luaL_argcheck(L, max >= 1, 2, "size must be at least 1");
  lua_settop(L, 1);
  lua_pushinteger(L, max);
  lua_pushnil(L);  // no prefix
  const double start = call_start(s);
  const int st = claim(L, s, s->reading, start, "receive");
  if (st == kYield) {
    return loop::yield(L, s->sr->rt(), start_ctx(start), receive_any_turn_k<kTls>);
  }
  if (st != kIoDone) return receive_refused(L, st);
  return receive_begin<kTls>(L, s, any_pattern(L), start);
}

template <bool kTls>
int send_entry(lua_State* L, Socket* s) {
  size_t first = 0;
  size_t count = 0;
  send_range(L, &first, &count);  // raises on a bad argument, before anything is claimed
  const double start = call_start(s);
  const int st = claim(L, s, s->writing, start, "send");
  if (st == kYield) return loop::yield(L, s->sr->rt(), start_ctx(start), send_turn_k<kTls>);
  if (st != kIoDone) return send_refused(L, st);
  return send_begin<kTls>(L, s, first, count, start);
}

}  // namespace

int stream_take_headers(lua_State* L, Socket* s) {
  const lua_Integer max_line = luaL_checkinteger(L, 2);
  const lua_Integer max_bytes = luaL_checkinteger(L, 3);
  constexpr size_t kMaxName = 64;
  ScannedFields f;
  if (s->fd < 0 || s->reading.busy() || max_line < 0 || max_bytes < 0 ||
      scan_fields(s->buf.data(), s->buf.size(), static_cast<size_t>(max_line),
                  static_cast<size_t>(max_bytes), kMaxName, &f) != ScanResult::kPlain) {
    lua_pushboolean(L, 0);
    return 1;
  }
  const char* data = s->buf.data();
  lua_createtable(L, 0, f.count);
  for (int i = 0; i < f.count; ++i) {
    const ScannedField& sf = f.field[i];
    const char* name = data + sf.name;
    char lowered[kMaxName];
    for (uint32_t j = 0; j < sf.name_len; ++j) {
      const char c = name[j];
      lowered[j] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
    }
    lua_pushlstring(L, lowered, sf.name_len);
    lua_pushlstring(L, data + sf.value, sf.value_len);
    lua_rawset(L, -3);
  }
  // (consumed only once the table is made: a memory error before leaves the block buffered)
  s->received += static_cast<double>(f.consumed);
  s->buf.consume(s->sr->pool(), f.consumed);
  return 1;
}

int stream_receive_any(lua_State* L, Socket* s) { return receive_any_entry<false>(L, s); }
int tls_stream_receive_any(lua_State* L, Socket* s) { return receive_any_entry<true>(L, s); }
int stream_send(lua_State* L, Socket* s) { return send_entry<false>(L, s); }
int tls_stream_send(lua_State* L, Socket* s) { return send_entry<true>(L, s); }

namespace {

// Waiting for a descriptor of the runtime to be freed, or the end of the back-off that an
// accept failing for lack of descriptors began (SocketRuntime::note_exhausted). Only a task
// waits so: outside tasks nothing else runs that could free one, and the accept tries again
// at once, as LuaSocket's does.
class FreedWait final : public loop::Waitable {
 public:
  explicit FreedWait(SocketRuntime* sr) : sr_(sr) {}
  bool attach(Runtime*, loop::Task* t, loop::WaitSource** src) override {
    if (!sr_->add_freed_waiter(t)) return false;
    *src = sr_->freed_waiters();
    return true;
  }
  Wake block(double) override { return Wake::kRefused; }
  [[nodiscard]] bool can_block() const override { return false; }

 private:
  SocketRuntime* sr_;
};

constexpr lua_KContext kAfterExhausted = 1;

bool exhausted(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

// Stack: server, client class name, the client object to be (closed until a connection comes:
// created before the server is claimed, so that its allocation cannot fail with the server
// claimed and a connection accepted).
int accept_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  auto* c = static_cast<Socket*>(lua_touserdata(L, 3));
  const loop::Deadline d(s->tm, s->rd_start);
  int err = kIoDone;
  bool waited_freed = false;
  if (status == LUA_YIELD) {
    const Wake w = loop::resumed(L, s->sr->rt());
    err = io_status(w);
    waited_freed = ctx == kAfterExhausted;
    // The end of the back-off is not the end of the call's own time.
    if (waited_freed && w == Wake::kTimeout && d.remaining(Runtime::now()) != 0.0) err = kIoDone;
  }
  while (err == kIoDone) {
    if (s->fd < 0) {
      err = kIoClosed;
      break;
    }
    const double backoff = waited_freed ? 0 : s->sr->exhausted_wait(Runtime::now());
    if (backoff > 0 && !d.never_wait()) {
      const double left = d.remaining(Runtime::now());
      FreedWait w(s->sr);
      loop::WaitSpec spec;
      spec.timeout = left < 0 || backoff < left ? backoff : left;
      spec.what = "accept (out of descriptors)";
      spec.fd = s->fd;
      const Wake r = loop::wait(L, s->sr->rt(), w, spec);
      if (r == Wake::kNone) return loop::yield(L, s->sr->rt(), kAfterExhausted, accept_k);
      if (r == Wake::kCancelled) {
        err = kIoCancelled;
        break;
      }
      if (r == Wake::kTimeout && left >= 0 && !(backoff < left)) {
        err = kIoTimeout;
        break;
      }
    }
    waited_freed = false;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    const int fd =
        ::accept4(s->fd, reinterpret_cast<sockaddr*>(&addr), &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      release(L, s, s->reading);
      c->fd = fd;
      c->family = s->family;
      c->birthday = Runtime::now();
      // A burst of connections: the accepting task lets the others run now and then (the
      // connection is this call's result; the pause comes at the start of its next accept).
      loop::charge(s->sr->rt(), kAcceptCost);
      return 1;
    }
    err = errno;
    if (err == EINTR) {
      err = kIoDone;
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED) {
      if (FdWatch* w = watch_of(s); err != ECONNABORTED && w) w->drained();
      err = wait_fd(L, s, FdWatch::kRead, d, "accept");
      if (err == kYield) return loop::yield(L, s->sr->rt(), 0, accept_k);
    } else if (exhausted(err)) {
      s->sr->note_exhausted(Runtime::now());  // this call fails now; the next ones wait
    }
  }
  release(L, s, s->reading);
  return push_error(L, err);
}

int accept_begin(lua_State* L, Socket* s, double start) {
  s->rd_start = start;
  if (loop::spend(L, s->sr->rt(), 0) == loop::Wake::kNone) {
    return loop::yield(L, s->sr->rt(), 0, accept_k);
  }
  return accept_k(L, LUA_OK, 0);
}

int accept_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return push_error(L, st);
  return accept_begin(L, s, ctx_start(ctx));
}

}  // namespace

int stream_refuse(lua_State* L, Socket* s) {
  lua_pushboolean(L, !s->closed && s->sr->refuse_one(s->fd));
  return 1;
}

int stream_accept(lua_State* L, Socket* s, const char* client_class) {
  lua_settop(L, 1);
  lua_pushstring(L, client_class);
  push_socket(L, client_class, -1, s->family);
  const double start = call_start(s);
  const int st = claim(L, s, s->reading, start, "accept");
  if (st == kYield) return loop::yield(L, s->sr->rt(), start_ctx(start), accept_turn_k);
  if (st != kIoDone) return push_error(L, st);
  return accept_begin(L, s, start);
}

}  // namespace uvs::socket
