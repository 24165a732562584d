// select.cpp: socket.select, without a descriptor ceiling, blocking or yielding.
// Layer: glue.
//
// The sets are read the way LuaSocket reads them: entries t[1], t[2], ... up to the first nil,
// each asked for its descriptor with entry:getfd() (anything with getfd works, closed sockets
// report -1 and are skipped) and for buffered data with entry:dirty() (a dirty entry is ready
// at once). Readiness is asked with one poll(2) over all descriptors, so there is no FD_SETSIZE
// limit. In a task that must wait, the descriptors go into a private epoll set whose own
// descriptor the loop watches; the task yields until it reports or the timeout expires, then
// poll(2) collects the answer. Elsewhere poll(2) blocks.
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "loop/runtime.hpp"
#include "lua/lua_api.hpp"
#include "loop/deadline.hpp"
#include "socket/errors.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

using loop::FdWatch;
using loop::Runtime;

namespace {

// Stack slots used between the entry function and its continuation.
constexpr int kRecvT = 1;
constexpr int kSendT = 2;
constexpr int kTimeout = 3;
constexpr int kFdMap = 4;     // fd -> object
constexpr int kPollSet = 5;   // userdata: pollfd[n]
constexpr int kDirty = 6;     // array of dirty read entries
constexpr int kWait = 7;      // userdata: Wait, while a task waits
constexpr int kStart = 8;     // start time of the call

// A task's pending wait: the private epoll set and the watcher on it. Freed by wait_gc or
// release(), whichever comes first.
struct Wait {
  int epfd;
  FdWatch* watch;
};

void release(Wait* w) {
  if (w->watch) {
    w->watch->close();  // frees itself
    w->watch = nullptr;
  }
  if (w->epfd >= 0) {
    ::close(w->epfd);
    w->epfd = -1;
  }
}

int wait_gc(lua_State* L) {
  release(static_cast<Wait*>(lua_touserdata(L, 1)));
  return 0;
}

// Asks entry:getfd(); returns -1 for anything that does not give a descriptor.
int entry_fd(lua_State* L, int entry) {
  int fd = -1;
  lua_getfield(L, entry, "getfd");
  if (!lua_isnil(L, -1)) {
    lua_pushvalue(L, entry);
    lua_call(L, 1, 1);
    if (lua_isnumber(L, -1)) {
      const lua_Number n = lua_tonumber(L, -1);
      if (n >= 0 && n < 2147483647.0) fd = static_cast<int>(n);
    }
  }
  lua_pop(L, 1);
  return fd;
}

bool entry_dirty(lua_State* L, int entry) {
  bool dirty = false;
  lua_getfield(L, entry, "dirty");
  if (!lua_isnil(L, -1)) {
    lua_pushvalue(L, entry);
    lua_call(L, 1, 1);
    dirty = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return dirty;
}

// Entries of a set, counted up to the first nil as LuaSocket reads them.
lua_Integer set_length(lua_State* L, int set) {
  if (lua_isnil(L, set)) return 0;
  lua_Integer n = 0;
  while (lua_rawgeti(L, set, n + 1) != LUA_TNIL) {
    lua_pop(L, 1);
    n++;
  }
  lua_pop(L, 1);
  return n;
}

// Reads one set into the fd map and `out`; returns how many descriptors it added. Lua code
// (getfd, dirty) runs here, so `out` is GC-managed memory, never a C++ container.
size_t collect(lua_State* L, int set, lua_Integer count, short events, pollfd* out) {
  size_t n = 0;
  for (lua_Integer i = 1; i <= count; i++) {
    lua_rawgeti(L, set, i);
    const int entry = lua_gettop(L);
    const int fd = entry_fd(L, entry);
    if (fd >= 0) {
      if (events == POLLIN && entry_dirty(L, entry)) {
        lua_pushvalue(L, entry);
        lua_rawseti(L, kDirty, static_cast<lua_Integer>(lua_rawlen(L, kDirty)) + 1);
      }
      lua_pushvalue(L, entry);
      lua_rawseti(L, kFdMap, fd);
      out[n++] = pollfd{fd, events, 0};
    }
    lua_pop(L, 1);
  }
  return n;
}

// Builds the pollfd array at kPollSet: sorted by descriptor, one entry per descriptor. Its
// length is (userdata size - 1) / sizeof(pollfd).
void build_pollset(lua_State* L) {
  const lua_Integer nr = set_length(L, kRecvT);
  const lua_Integer nw = set_length(L, kSendT);
  const auto total = static_cast<size_t>(nr + nw);
  auto* fds = static_cast<pollfd*>(lua_newuserdatauv(L, total * sizeof(pollfd) + 1, 0));
  lua_replace(L, kPollSet);
  size_t n = collect(L, kRecvT, nr, POLLIN, fds);
  n += collect(L, kSendT, nw, POLLOUT, fds + n);
  std::sort(fds, fds + n, [](const pollfd& a, const pollfd& b) { return a.fd < b.fd; });
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m > 0 && fds[m - 1].fd == fds[i].fd) {
      fds[m - 1].events = static_cast<short>(fds[m - 1].events | fds[i].events);
    } else {
      fds[m++] = fds[i];
    }
  }
  // Keep the live part only: copy into a userdata of the exact size.
  auto* exact = static_cast<pollfd*>(lua_newuserdatauv(L, m * sizeof(pollfd) + 1, 0));
  std::copy(fds, fds + m, exact);
  lua_replace(L, kPollSet);
}

size_t pollset_size(lua_State* L) { return (lua_rawlen(L, kPollSet) - 1) / sizeof(pollfd); }

// Appends `obj` (at the top) to the result table at `t` unless it is there already.
void add_result(lua_State* L, int t) {
  lua_pushvalue(L, -1);
  if (lua_rawget(L, t) != LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, 1);
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, t)) + 1;
  lua_pushvalue(L, -1);
  lua_rawseti(L, t, n);
  lua_pushnumber(L, static_cast<lua_Number>(n));
  lua_rawset(L, t);
}

// Pushes the two result tables from the poll results (and "timeout" when nothing is ready).
int push_results(lua_State* L, bool timed_out) {
  lua_newtable(L);
  const int rt = lua_gettop(L);
  lua_newtable(L);
  const int wt = lua_gettop(L);
  const auto ndirty = static_cast<lua_Integer>(lua_rawlen(L, kDirty));
  for (lua_Integer i = 1; i <= ndirty; i++) {
    lua_rawgeti(L, kDirty, i);
    add_result(L, rt);
  }
  auto* fds = static_cast<pollfd*>(lua_touserdata(L, kPollSet));
  const size_t n = pollset_size(L);
  for (size_t i = 0; i < n && !timed_out; i++) {
    const short re = fds[i].revents;
    if (!re) continue;
    lua_rawgeti(L, kFdMap, fds[i].fd);
    // Errors and hang-ups count as ready, so that the next call reports them.
    const bool readable = (fds[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR));
    const bool writable = (fds[i].events & POLLOUT) && (re & (POLLOUT | POLLHUP | POLLERR));
    if (readable) {
      lua_pushvalue(L, -1);
      add_result(L, rt);
    }
    if (writable) {
      lua_pushvalue(L, -1);
      add_result(L, wt);
    }
    lua_pop(L, 1);
  }
  if (lua_rawlen(L, rt) == 0 && lua_rawlen(L, wt) == 0) {
    lua_pushliteral(L, "timeout");
    return 3;
  }
  return 2;
}

// Polls without waiting (ms = 0) or blocking; returns the number ready, or -errno.
int poll_set(lua_State* L, int ms) {
  auto* fds = static_cast<pollfd*>(lua_touserdata(L, kPollSet));
  const auto n = static_cast<nfds_t>(pollset_size(L));
  for (;;) {
    const int r = ::poll(fds, n, ms);
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

double remaining(lua_State* L) {
  const lua_Number t = lua_tonumber(L, kTimeout);
  if (t < 0) return -1.0;
  const double left = t - (Runtime::now() - lua_tonumber(L, kStart));
  return left > 0 ? left : 0.0;
}

// Starts a wait in a task: a private epoll set holding every descriptor, watched by the loop.
bool start_wait(lua_State* L, Runtime* rt, loop::Task* t, double timeout) {
  auto* w = static_cast<Wait*>(lua_newuserdatauv(L, sizeof(Wait), 0));
  w->epfd = -1;
  w->watch = nullptr;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, wait_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_replace(L, kWait);
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (w->epfd < 0) return false;
  auto* fds = static_cast<pollfd*>(lua_touserdata(L, kPollSet));
  const size_t n = pollset_size(L);
  for (size_t i = 0; i < n; i++) {
    epoll_event ev{};
    ev.events = ((fds[i].events & POLLIN) ? EPOLLIN : 0u) | ((fds[i].events & POLLOUT) ? EPOLLOUT : 0u);
    ev.data.fd = fds[i].fd;
    (void)epoll_ctl(w->epfd, EPOLL_CTL_ADD, fds[i].fd, &ev);
  }
  w->watch = FdWatch::open(rt, w->epfd);  // closed in release()
  if (!w->watch || !w->watch->add_waiter(t, FdWatch::kRead)) return false;
  rt->suspend(t, w->watch, timeout, true, "select");
  return true;
}

int select_k(lua_State* L, int status, lua_KContext ctx) {
  Runtime* rt = Runtime::of(L);
  if (status == LUA_YIELD) {
    const int woke = resume_status(L, rt);
    release(static_cast<Wait*>(lua_touserdata(L, kWait)));
    if (woke == kIoCancelled) {
      lua_newtable(L);
      lua_newtable(L);
      lua_pushstring(L, io_error(woke));
      return 3;
    }
    if (woke == kIoTimeout) {
      // Our own timeout or an enclosing deadline scope: one last look, then give up.
      const int ready = poll_set(L, 0);
      if (ready < 0) return luaL_error(L, "select failed");
      return push_results(L, ready == 0 && lua_rawlen(L, kDirty) == 0);
    }
  }
  for (;;) {
    const int ready = poll_set(L, 0);
    if (ready < 0) return luaL_error(L, "select failed");
    if (ready > 0 || lua_rawlen(L, kDirty) > 0) return push_results(L, false);
    const double left = remaining(L);
    if (left == 0.0) return push_results(L, true);
    loop::Task* t = rt->yieldable_task(L);
    if (!t) {
      rt->warn_blocking(L);
      const int r = poll_set(L, loop::wait_ms(left));
      if (r < 0) return luaL_error(L, "select failed");
      return push_results(L, r == 0);
    }
    if (start_wait(L, rt, t, left)) return Runtime::yield(L, ctx, select_k);
    // Could not watch the set: fall back to waiting in poll(2).
    release(static_cast<Wait*>(lua_touserdata(L, kWait)));
    const int r = poll_set(L, loop::wait_ms(left));
    if (r < 0) return luaL_error(L, "select failed");
    return push_results(L, r == 0);
  }
}

// socket.select(recvt, sendt [, timeout]) -> readable, writable [, "timeout"]
int socket_select(lua_State* L) {
  lua_settop(L, 3);
  for (int i = kRecvT; i <= kSendT; i++) {
    if (!lua_isnil(L, i) && !lua_istable(L, i)) luaL_typeerror(L, i, "table");
  }
  const lua_Number t = luaL_optnumber(L, kTimeout, -1);
  lua_pushnumber(L, t);
  lua_replace(L, kTimeout);
  lua_newtable(L);  // kFdMap
  lua_pushnil(L);   // kPollSet
  lua_newtable(L);  // kDirty
  lua_pushnil(L);   // kWait
  lua_pushnumber(L, Runtime::now());  // kStart
  build_pollset(L);
  return select_k(L, LUA_OK, 0);
}

}  // namespace

void open_select(lua_State* L, int ns, int rt) {
  lua_pushvalue(L, rt);
  lua_pushcclosure(L, socket_select, 1);
  lua_setfield(L, ns, "select");
}

}  // namespace uvs::socket
