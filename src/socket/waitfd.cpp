// waitfd.cpp: socket.async.waitfd and socket.async.cancelfd, the primitive that lets a C
// library which hands out a descriptor (LuaSec, a database driver) wait through the scheduler.
// Layer: glue.
//
// waitfd waits on the descriptor's one watcher, the same one a socket of the module uses for
// it, as a wait set of one node: it yields in a task and polls outside, like every other wait.
#include <poll.h>

#include <cstring>

#include "loop/runtime.hpp"
#include "loop/wait.hpp"
#include "lua/lua_api.hpp"
#include "socket/errors.hpp"
#include "socket/fd_watch.hpp"
#include "socket/socket.hpp"
#include "socket/socket_runtime.hpp"

namespace uvs::socket {

using loop::Runtime;
using loop::Wake;

namespace {

// Stack of waitfd and its continuation: fd, mode, timeout, wait set.
constexpr int kSet = 4;

int push_ready(lua_State* L, int revents) {
  const bool r = revents & FdWatch::kRead;
  const bool w = revents & FdWatch::kWrite;
  lua_pushstring(L, r && w ? "rw" : r ? "r" : "w");
  return 1;
}

int push_wake(lua_State* L, Wake why) {
  lua_pushnil(L);
  lua_pushstring(L, io_error(io_status(why)));
  return 2;
}

// What poll(2) reports, as watcher events within `events` (errors and hang-ups count as both).
int poll_events(short revents, int events) {
  int r = 0;
  if (revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) r |= FdWatch::kRead;
  if (revents & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) r |= FdWatch::kWrite;
  return r & events;
}

class FdWait final : public loop::Waitable {
 public:
  FdWait(SocketRuntime* sr, FdWaitSet* set, int fd, int events)
      : sr_(sr), set_(set), fd_(fd), events_(events) {}

  bool attach(Runtime* rt, loop::Task* t, loop::WaitSource** src) override {
    (void)rt;
    if (!set_->watch(sr_, 0, t, fd_, events_)) return false;
    *src = set_;
    return true;
  }

  Wake block(double timeout) override {
    pollfd p{};
    p.fd = fd_;
    p.events = static_cast<short>(((events_ & FdWatch::kRead) ? POLLIN : 0) |
                                  ((events_ & FdWatch::kWrite) ? POLLOUT : 0));
    const double end = Runtime::now() + timeout;
    for (;;) {
      const double left = end - Runtime::now();
      const int r = ::poll(&p, 1, loop::wait_ms(timeout < 0 ? -1.0 : (left > 0 ? left : 0)));
      if (r > 0) break;
      if (r == 0) return Wake::kTimeout;
      if (errno != EINTR) {
        p.revents = POLLERR;
        break;
      }
    }
    revents_ = poll_events(p.revents, events_);
    return Wake::kReady;
  }

  [[nodiscard]] int revents() const { return revents_; }

 private:
  SocketRuntime* sr_;
  FdWaitSet* set_;
  int fd_;
  int events_;
  int revents_ = 0;
};

int waitfd_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  auto* set = static_cast<FdWaitSet*>(lua_touserdata(L, kSet));
  const int revents = set->node(0).revents;
  set->release();
  const Wake why = loop::resumed(L, Runtime::of(L));
  if (why != Wake::kReady) return push_wake(L, why);
  return push_ready(L, revents);
}

// async.waitfd(fd, mode [, timeout]) -> "r" | "w" | "rw" | nil, "timeout" | "cancelled" | "closed"
// Waits until descriptor `fd` is readable ("r"), writable ("w") or either ("rw"), for at most
// `timeout` seconds (nil or negative: no limit). Yields in a task (cancellation and deadline
// scopes apply); blocks in poll(2) anywhere else. "closed": the descriptor's socket was closed,
// or cancelfd was called, while waiting.
int async_waitfd(lua_State* L) {
  const lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "invalid descriptor");
  size_t len = 0;
  const char* mode = luaL_checklstring(L, 2, &len);
  int events = 0;
  if (len == 1 && mode[0] == 'r') events = FdWatch::kRead;
  if (len == 1 && mode[0] == 'w') events = FdWatch::kWrite;
  if (len == 2 && std::strcmp(mode, "rw") == 0) events = FdWatch::kRead | FdWatch::kWrite;
  luaL_argcheck(L, events != 0, 2, "mode must be \"r\", \"w\" or \"rw\"");
  const double timeout = luaL_optnumber(L, 3, -1);
  lua_settop(L, 3);
  SocketRuntime* sr = SocketRuntime::of(L);
  FdWaitSet* set = FdWaitSet::push(L, 1);
  FdWait w(sr, set, static_cast<int>(fd), events);
  loop::WaitSpec spec;
  spec.timeout = timeout;
  spec.what = "waitfd";
  spec.fd = static_cast<int>(fd);
  Wake r = loop::wait(L, sr->rt(), w, spec);
  if (r == Wake::kNone) return loop::yield(L, sr->rt(), 0, waitfd_k);
  if (r == Wake::kFailed) {
    // Not watchable (a regular file, which poll(2) reports ready at once): a look without
    // waiting answers, so a task is never blocked.
    r = w.block(0);
    if (r == Wake::kTimeout) {
      lua_pushnil(L);
      lua_pushliteral(L, "cannot watch this descriptor");
      return 2;
    }
  }
  if (r != Wake::kReady) return push_wake(L, r);
  return push_ready(L, w.revents());
}

// async.cancelfd(fd) -> the number of waits ended
// Before closing a descriptor that tasks may be waiting on through waitfd or select: they wake
// with "closed", and a descriptor no socket of the module owns is no longer watched.
int async_cancelfd(lua_State* L) {
  const lua_Integer fd = luaL_checkinteger(L, 1);
  SocketRuntime* sr = SocketRuntime::of(L);
  int n = 0;
  if (fd >= 0 && fd <= 0x7fffffff) {
    if (FdWatch* w = sr->watcher(static_cast<int>(fd))) n = w->cancel_others();
  }
  lua_pushinteger(L, n);
  return 1;
}

}  // namespace

// Adds waitfd and cancelfd to the async table at `async`; `rt` is the runtime handle.
void open_waitfd(lua_State* L, int async, int rt) {
  const luaL_Reg funcs[] = {
      {"waitfd", async_waitfd},
      {"cancelfd", async_cancelfd},
      {nullptr, nullptr},
  };
  lua_pushvalue(L, async);
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_pop(L, 1);
}

}  // namespace uvs::socket
