// socket.cpp: see socket.hpp. Layer: transport.
#include "socket/socket.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "socket/errors.hpp"
#include "socket/tls_session.hpp"

namespace uvs::socket {

using loop::Runtime;
using loop::Wake;

namespace {

struct ClassName {
  const char* name;
  uint32_t bit;
};
const ClassName kClassNames[] = {
    {"tcp{master}", kTcpMaster},
    {"tcp{client}", kTcpClient},
    {"tcp{server}", kTcpServer},
    {"udp{unconnected}", kUdpUnconnected},
    {"udp{connected}", kUdpConnected},
    {"unixstream{master}", kUnixStreamMaster},
    {"unixstream{client}", kUnixStreamClient},
    {"unixstream{server}", kUnixStreamServer},
    {"unixdgram{unconnected}", kUnixDgramUnconnected},
    {"unixdgram{connected}", kUnixDgramConnected},
    {"tls{client}", kTlsClient},
};

uint32_t class_bit(const char* cls) {
  for (const ClassName& c : kClassNames) {
    if (std::strcmp(c.name, cls) == 0) return c.bit;
  }
  return 0;
}

}  // namespace

Socket* push_socket(lua_State* L, const char* cls, int fd, int family) {
  auto* s = static_cast<Socket*>(lua_newuserdatauv(L, sizeof(Socket), 0));
  new (s) Socket();
  s->sr = SocketRuntime::of(L);
  s->fd = fd;
  s->family = family;
  s->cls = static_cast<uint16_t>(class_bit(cls));
  s->birthday = Runtime::now();
  luaL_setmetatable(L, cls);
  return s;
}

void set_class(lua_State* L, int idx, const char* cls) {
  idx = lua_absindex(L, idx);
  static_cast<Socket*>(lua_touserdata(L, idx))->cls = static_cast<uint16_t>(class_bit(cls));
  luaL_getmetatable(L, cls);
  lua_setmetatable(L, idx);
}

int open_fd(int family, int type, int protocol, int* fd) {
  const int f = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (f < 0) return errno;
  if (family == AF_INET6) {
    const int yes = 1;
    (void)::setsockopt(f, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof yes);
  }
  *fd = f;
  return 0;
}

void drop_watch(Socket* s) {
  if (FdWatch* w = watch_of(s)) w->disown();  // freed once nobody waits on it
}

void free_addresses(Socket* s) {
  if (s->ai) freeaddrinfo(s->ai);  // from getaddrinfo() in resolve.cpp
  s->ai = s->ai_next = nullptr;
  s->phase = Phase::kIdle;
}

void close_socket(Socket* s, bool collected) {
  if (!s->closed) {
    s->closed = true;
    Runtime* rt = s->sr->rt();
    // Operations in flight end with "closed": their owners wake (whatever they wait on in the
    // socket: its descriptor, a lookup, which is then orphaned) and so do the queued ones.
    s->reading.close(rt);
    s->writing.close(rt);
    // The descriptor's watcher, whether the socket itself waited on it or only a select or a
    // waitfd did: every waiter of the descriptor wakes with "closed".
    if (FdWatch* w = watch_of(s)) w->close();
    // A TLS session says close_notify if it can without waiting, and is freed.
    if (s->tls) tls_free(s);
    if (s->fd >= 0) {
      ::close(s->fd);
      s->fd = -1;
      s->sr->descriptor_freed();
    }
    s->buf.release(s->sr->pool());
    s->pending = 0;
  }
  if (collected) {
    Runtime* rt = s->sr->rt();
    s->reading.forget(rt);
    s->writing.forget(rt);
    free_addresses(s);
  }
}

int replace_fd(Socket* s, int fd, int family) {
  if (s->closed) {
    ::close(fd);
    return kIoClosed;
  }
  drop_watch(s);
  if (s->fd >= 0) ::close(s->fd);
  s->fd = fd;
  s->family = family;
  return 0;
}

int io_status(Wake w) {
  switch (w) {
    case Wake::kTimeout:
      return kIoTimeout;
    case Wake::kClosed:
      return kIoClosed;
    case Wake::kCancelled:
      return kIoCancelled;
    case Wake::kFailed:
      return ENOMEM;  // the wait could not be set up: out of memory, or a watch refused
    default:
      return kIoDone;
  }
}

int wait_turn(lua_State* L, Socket* s, loop::OpSlot& slot, double start, const char* what) {
  if (s->closed) return kIoClosed;
  const loop::Deadline d(s->tm, start);
  const double left = d.never_wait() ? 0.0 : d.remaining(Runtime::now());
  const Wake r = slot.wait_turn(L, s->sr->rt(), left, what);
  if (r == Wake::kNone) return kYield;
  if (r == Wake::kRefused) {
    luaL_error(L,
               "%s: another task is using this socket in the same direction, and only a task "
               "can wait its turn",
               what);
  }
  return io_status(r);
}

int turn_status(lua_State* L, Socket* s) { return resume_status(L, s->sr); }

namespace {

// Waiting on the socket's descriptor, for loop::wait().
class SocketWait final : public loop::Waitable {
 public:
  SocketWait(Socket* s, int dir, FdWatch::Prefetch prefetch)
      : s_(s), dir_(dir), prefetch_(prefetch) {}

  bool attach(Runtime* rt, loop::Task* t, loop::WaitSource** src) override {
    (void)rt;
    FdWatch* w = FdWatch::get(s_->sr, s_->fd);  // closed in close_socket()
    if (!w) return false;
    w->adopt();
    if ((dir_ & FdWatch::kRead) && !w->add_reader(t, prefetch_, s_)) return false;
    if ((dir_ & FdWatch::kWrite) && !w->add_writer(t)) {
      w->detach(t);
      return false;
    }
    *src = w;
    return true;
  }

  // poll(2) on the one descriptor until ready or past the deadline, restarting after signals.
  // A failing poll counts as ready: the retried call reports its own error.
  Wake block(double timeout) override {
    pollfd p{};
    p.fd = s_->fd;
    if (dir_ & FdWatch::kRead) p.events |= POLLIN;
    if (dir_ & FdWatch::kWrite) p.events |= POLLOUT;
    const double end = timeout < 0 ? 0 : Runtime::now() + timeout;
    for (;;) {
      const double left = end - Runtime::now();
      const int r = ::poll(&p, 1, loop::wait_ms(timeout < 0 ? -1.0 : (left > 0 ? left : 0)));
      if (r == 0) return Wake::kTimeout;
      if (r > 0 || errno != EINTR) break;
    }
    FdWatch* w = watch_of(s_);
    if (w && (p.revents & (POLLIN | POLLHUP | POLLERR))) w->mark_readable();
    return Wake::kReady;
  }

 private:
  Socket* s_;
  int dir_;
  FdWatch::Prefetch prefetch_;
};

}  // namespace

int wait_fd(lua_State* L, Socket* s, int dir, const loop::Deadline& d, const char* what,
            FdWatch::Prefetch prefetch) {
  if (d.never_wait()) return kIoTimeout;
  if (s->fd < 0) return kIoClosed;
  SocketWait w(s, dir, prefetch);
  loop::WaitSpec spec;
  spec.timeout = d.remaining(Runtime::now());
  spec.what = what;
  spec.fd = s->fd;
  const Wake r = loop::wait(L, s->sr->rt(), w, spec);
  return r == Wake::kNone ? kYield : io_status(r);
}

int resume_status(lua_State* L, SocketRuntime* sr) { return io_status(loop::resumed(L, sr->rt())); }

int push_error(lua_State* L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, io_error(err));
  return 2;
}

int push_ok(lua_State* L) {
  lua_pushnumber(L, 1);
  return 1;
}

}  // namespace uvs::socket
