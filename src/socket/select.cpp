// select.cpp: socket.select, without a descriptor ceiling, blocking or yielding.
// Layer: glue.
//
// The sets are read the way LuaSocket reads them: entries t[1], t[2], ... up to the first nil,
// each asked for its descriptor with entry:getfd() (anything with getfd works, closed sockets
// report -1 and are skipped) and for buffered data with entry:dirty() (a dirty entry is ready
// at once). Readiness is asked with one poll(2) over all descriptors, so there is no FD_SETSIZE
// limit. In a task that must wait, the task waits on the watcher of each descriptor (the same
// watchers the sockets use, one per descriptor) until one reports or the timeout expires, then
// poll(2) collects the answer. Elsewhere poll(2) blocks. Closing one of the sockets wakes the
// select, which reports the closed object as ready in the set it was in: whatever the caller
// does with it next returns "closed" at once.
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "loop/deadline.hpp"
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

// Stack slots used between the entry function and its continuation.
constexpr int kRecvT = 1;
constexpr int kSendT = 2;
constexpr int kTimeout = 3;
constexpr int kFdMap = 4;    // fd -> object
constexpr int kPollSet = 5;  // userdata: pollfd[n]
constexpr int kDirty = 6;    // array of dirty read entries
constexpr int kWait = 7;     // userdata: FdWaitSet, while a task waits
constexpr int kStart = 8;    // start time of the call

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
    const int type = lua_rawgeti(L, set, i);
    const int entry = lua_gettop(L);
    // LuaSocket indexes every entry for its getfd; one that cannot be indexed is a bad argument
    // (rather than "attempt to index a number value" from inside select).
    if (type != LUA_TTABLE && type != LUA_TUSERDATA && type != LUA_TSTRING) {
      luaL_argerror(L, set,
                    lua_pushfstring(L, "entry %I is a %s, not a socket",
                                    static_cast<LUAI_UACINT>(i), luaL_typename(L, entry)));
    }
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
    // Errors, hang-ups and closed descriptors count as ready, so that the next call reports
    // them.
    const short any = POLLHUP | POLLERR | POLLNVAL;
    const bool readable = (fds[i].events & POLLIN) && (re & (POLLIN | any));
    const bool writable = (fds[i].events & POLLOUT) && (re & (POLLOUT | any));
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

// Polls after a close woke the select (a socket of the set closed, or cancelfd): the entries
// whose descriptor was closed under the wait (their node says so) are ready, whatever now has
// that number, and the others are asked poll(2) as usual.
int poll_after_close(lua_State* L, FdWaitSet* set) {
  auto* fds = static_cast<pollfd*>(lua_touserdata(L, kPollSet));
  const int n = set->count();
  for (int i = 0; i < n; i++) {
    if (set->node(i).revents == (FdWatch::kRead | FdWatch::kWrite)) fds[i].fd = ~fds[i].fd;
  }
  const int ready = poll_set(L, 0);
  int closed = 0;
  for (int i = 0; i < n; i++) {
    if (fds[i].fd >= 0) continue;
    fds[i].fd = ~fds[i].fd;  // poll(2) skipped it as negative; the fd map still needs it
    fds[i].revents = POLLNVAL;
    closed++;
  }
  return ready < 0 ? ready : ready + closed;
}

// Waiting on every descriptor of the set, for loop::wait(): in a task, on the watcher of each
// (the set of nodes is the userdata at kWait); elsewhere, in poll(2).
class SelectWait final : public loop::Waitable {
 public:
  SelectWait(lua_State* L, SocketRuntime* sr) : L_(L), sr_(sr) {}

  bool attach(Runtime* rt, loop::Task* t, loop::WaitSource** src) override {
    (void)rt;
    auto* set = static_cast<FdWaitSet*>(lua_touserdata(L_, kWait));
    auto* fds = static_cast<pollfd*>(lua_touserdata(L_, kPollSet));
    for (int i = 0; i < set->count(); i++) {
      const int events = ((fds[i].events & POLLIN) ? FdWatch::kRead : 0) |
                         ((fds[i].events & POLLOUT) ? FdWatch::kWrite : 0);
      // A descriptor that cannot be watched (not pollable, out of memory) is left to the
      // final poll(2): the task still yields, bounded by the timeout.
      (void)set->watch(sr_, i, t, fds[i].fd, events);
    }
    *src = set;
    return true;
  }

  Wake block(double timeout) override {
    ready_ = poll_set(L_, loop::wait_ms(timeout));
    return ready_ == 0 ? Wake::kTimeout : Wake::kReady;
  }

  [[nodiscard]] int ready() const { return ready_; }

 private:
  lua_State* L_;
  SocketRuntime* sr_;
  int ready_ = 0;
};

int select_k(lua_State* L, int status, lua_KContext ctx) {
  Runtime* rt = Runtime::of(L);
  // Back from a wait (a wait set is there) rather than from a fairness pause.
  if (status == LUA_YIELD && !lua_isnil(L, kWait)) {
    const int woke = io_status(loop::resumed(L, rt));
    auto* set = static_cast<FdWaitSet*>(lua_touserdata(L, kWait));
    set->release();
    if (woke == kIoCancelled) {
      lua_newtable(L);
      lua_newtable(L);
      lua_pushstring(L, io_error(woke));
      return 3;
    }
    if (woke == kIoClosed) {
      const int ready = poll_after_close(L, set);
      if (ready < 0) return luaL_error(L, "select failed");
      return push_results(L, false);
    }
    if (woke == kIoTimeout) {
      // Our own timeout or an enclosing deadline scope: one last look, then give up.
      const int ready = poll_set(L, 0);
      if (ready < 0) return luaL_error(L, "select failed");
      return push_results(L, ready == 0 && lua_rawlen(L, kDirty) == 0);
    }
  }
  if (status != LUA_YIELD && loop::spend(L, rt, 0) == Wake::kNone) {
    // A loop of selects that keep returning at once lets the other tasks run now and then
    // (each such select is charged below).
    return loop::yield(L, rt, ctx, select_k);
  }
  for (;;) {
    const int ready = poll_set(L, 0);
    if (ready < 0) return luaL_error(L, "select failed");
    if (ready > 0 || lua_rawlen(L, kDirty) > 0) {
      loop::charge(rt, loop::kBudget / 64);
      return push_results(L, false);
    }
    const double left = remaining(L);
    if (left == 0.0) return push_results(L, true);
    FdWaitSet::push(L, static_cast<int>(pollset_size(L)));
    lua_replace(L, kWait);
    SelectWait w(L, SocketRuntime::of(L));
    loop::WaitSpec spec;
    spec.timeout = left;
    spec.what = "select";
    const Wake r = loop::wait(L, rt, w, spec);
    if (r == Wake::kNone) return loop::yield(L, rt, ctx, select_k);
    if (r == Wake::kCancelled) {
      lua_newtable(L);
      lua_newtable(L);
      lua_pushstring(L, io_error(kIoCancelled));
      return 3;
    }
    if (w.ready() < 0) return luaL_error(L, "select failed");
    return push_results(L, r == Wake::kTimeout);
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
  lua_newtable(L);                    // kFdMap
  lua_pushnil(L);                     // kPollSet
  lua_newtable(L);                    // kDirty
  lua_pushnil(L);                     // kWait
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
