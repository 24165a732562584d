// socket.cpp: see socket.hpp. Layer: transport.
#include "socket/socket.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "socket/errors.hpp"

namespace uvs::socket {

using loop::FdWatch;
using loop::Runtime;

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
  s->rt = Runtime::of(L);
  s->fd = fd;
  s->family = family;
  s->cls = class_bit(cls);
  s->birthday = Runtime::now();
  luaL_setmetatable(L, cls);
  return s;
}

void set_class(lua_State* L, int idx, const char* cls) {
  idx = lua_absindex(L, idx);
  static_cast<Socket*>(lua_touserdata(L, idx))->cls = class_bit(cls);
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
  if (s->watch) {
    s->watch->close();  // frees itself in its close callback
    s->watch = nullptr;
  }
}

void free_addresses(Socket* s) {
  if (s->ai) freeaddrinfo(s->ai);  // from getaddrinfo() in resolve.cpp
  s->ai = s->ai_next = nullptr;
  s->phase = Phase::kIdle;
}

void close_socket(Runtime* rt, Socket* s) {
  drop_watch(s);
  if (s->fd >= 0) {
    ::close(s->fd);
    s->fd = -1;
  }
  if (rt) s->buf.release(rt->pool());
  s->pending = 0;
  free_addresses(s);
}

void replace_fd(Socket* s, int fd, int family) {
  drop_watch(s);
  if (s->fd >= 0) ::close(s->fd);
  s->fd = fd;
  s->family = family;
}

namespace {

// poll(2) on one descriptor until ready or past the deadline, restarting after signals.
int poll_fd(int fd, int dir, const loop::Deadline& d) {
  pollfd p{};
  p.fd = fd;
  if (dir & FdWatch::kRead) p.events |= POLLIN;
  if (dir & FdWatch::kWrite) p.events |= POLLOUT;
  for (;;) {
    const int ms = loop::wait_ms(d.remaining(Runtime::now()));
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return kIoDone;
    if (r == 0) return kIoTimeout;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

int wait_fd(lua_State* L, Runtime* rt, Socket* s, int dir, const loop::Deadline& d,
            const char* what, FdWatch::Prefetch prefetch) {
  if (d.never_wait()) return kIoTimeout;
  if (s->fd < 0) return kIoClosed;
  loop::Task* t = rt->yieldable_task(L);
  if (!t) {
    rt->warn_blocking(L);
    return poll_fd(s->fd, dir, d);
  }
  const double left = d.remaining(Runtime::now());
  if (left == 0.0) return poll_fd(s->fd, dir, d);  // past the deadline: one last look
  if (!s->watch) {
    s->watch = FdWatch::open(rt, s->fd);  // closed in drop_watch()
    if (!s->watch) return poll_fd(s->fd, dir, d);
  }
  if (dir & FdWatch::kRead) {
    if (!s->watch->add_waiter(t, FdWatch::kRead)) return kIoBusy;
    s->watch->set_prefetch(prefetch, s);
  }
  if (dir & FdWatch::kWrite) {
    if (!s->watch->add_waiter(t, FdWatch::kWrite)) {
      s->watch->detach(t);
      return kIoBusy;
    }
  }
  rt->suspend(t, s->watch, left, true, what, s->fd);
  return kYield;
}

int resume_status(lua_State* L, Runtime* rt) {
  loop::Task* t = rt->task_of(L);
  if (!t) return kIoDone;
  switch (t->wake) {
    case loop::Wake::kTimeout:
      return kIoTimeout;
    case loop::Wake::kClosed:
      return kIoClosed;
    case loop::Wake::kCancelled:
      return kIoCancelled;
    default:
      return kIoDone;
  }
}

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
