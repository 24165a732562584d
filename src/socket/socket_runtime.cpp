// socket_runtime.cpp: see socket_runtime.hpp. Layer: transport.
#include "socket/socket_runtime.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>

#include "socket/fd_watch.hpp"

namespace uvs::socket {

SocketRuntime* SocketRuntime::install(lua_State* L, loop::Runtime* rt) {
  auto* sr = new (std::nothrow) SocketRuntime(rt);  // deleted by the runtime, after shutdown
  if (!sr) luaL_error(L, "socket.core: not enough memory");
  rt->set_extension(sr);
  sr->keep_spare();
  // Made now, not at the first wait: a server that accepted its way to the descriptor limit
  // before any wait could not make it then. Retried at the first wait if it fails here.
  (void)sr->events_.open(rt->loop(), sr);
  return sr;
}

bool SocketRuntime::set_watcher(int fd, FdWatch* w) {
  if (fd < 0) return false;
  const auto i = static_cast<size_t>(fd);
  if (i >= by_fd_.size()) {
    if (!w) return true;
    try {
      by_fd_.resize(i + 1 > 2 * by_fd_.size() ? i + 1 : 2 * by_fd_.size(), nullptr);
    } catch (...) {  // no exception may reach Lua's frames
      return false;
    }
  }
  by_fd_[i] = w;
  return true;
}

void SocketRuntime::keep_spare() {
  if (spare_ < 0) spare_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

bool SocketRuntime::refuse_one(int listen_fd) {
  keep_spare();
  if (spare_ < 0 || listen_fd < 0) return false;
  ::close(spare_);
  spare_ = -1;
  int fd;
  do {
    fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd >= 0) ::close(fd);  // the peer reads the end of the stream (or a reset if it sent)
  keep_spare();
  return fd >= 0;
}

bool SocketRuntime::add_freed_waiter(loop::Task* t) {
  try {
    freed_.tasks.push_back(t);
  } catch (...) {  // no exception may reach Lua's frames
    return false;
  }
  return true;
}

void SocketRuntime::FreedWaiters::detach(loop::Task* t) {
  auto it = std::find(tasks.begin(), tasks.end(), t);
  if (it != tasks.end()) tasks.erase(it);
}

void SocketRuntime::wake_freed() {
  std::vector<loop::Task*> woken;
  woken.swap(freed_.tasks);  // wake() detaches each from the list it is no longer in
  for (loop::Task* t : woken)
    rt_->wake(t, loop::Wake::kReady);
}

void SocketRuntime::shutdown() {
  if (spare_ >= 0) {
    ::close(spare_);
    spare_ = -1;
  }
  // Each close() takes the watcher out of the table and frees it.
  for (size_t i = 0; i < by_fd_.size(); i++) {
    if (FdWatch* w = by_fd_[i]) w->close();
  }
  events_.close();
}

void SocketRuntime::describe(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(pool_.cached_bytes()));
  lua_setfield(L, -2, "pooled_bytes");
}

}  // namespace uvs::socket
