// fd_watch.cpp: see fd_watch.hpp. Layer: transport.
#include "socket/fd_watch.hpp"

#include <fcntl.h>

#include <new>

#include "loop/runtime.hpp"
#include "socket/socket_runtime.hpp"

namespace uvs::socket {

using loop::Task;
using loop::Wake;

FdWatch* FdWatch::get(SocketRuntime* sr, int fd) {
  if (FdWatch* w = sr->watcher(fd)) return w;
  auto* w = new (std::nothrow) FdWatch();  // freed in on_close
  if (!w) return nullptr;
  // libuv makes the descriptor non-blocking; one the module did not create keeps the mode its
  // owner gave it (the module's own descriptors are non-blocking already).
  const int flags = fcntl(fd, F_GETFL);
  if (uv_poll_init(sr->rt()->loop(), &w->handle_, fd) != 0) {
    delete w;
    return nullptr;
  }
  if (flags >= 0 && !(flags & O_NONBLOCK)) (void)fcntl(fd, F_SETFL, flags);
  w->handle_.data = w;
  sr->rt()->live_watchers()++;
  if (!sr->set_watcher(fd, w)) {
    w->close();
    return nullptr;
  }
  return w;
}

SocketRuntime* FdWatch::sr() const { return static_cast<SocketRuntime*>(rt()->extension()); }

int FdWatch::fd() const {
  uv_os_fd_t fd = -1;
  (void)uv_fileno(reinterpret_cast<const uv_handle_t*>(&handle_), &fd);
  return fd;
}

void FdWatch::close() {
  if (closing_) return;
  closing_ = true;
  SocketRuntime* sr = this->sr();
  const int fd = this->fd();  // before uv_close: a closing handle has none
  if (sr->watcher(fd) == this) (void)sr->set_watcher(fd, nullptr);
  loop::Runtime* rt = this->rt();
  // wake() detaches each waiter from this watcher before making it ready.
  if (reader_) rt->wake(reader_, Wake::kClosed);
  if (writer_) rt->wake(writer_, Wake::kClosed);
  (void)wake_others();
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), on_close);
}

int FdWatch::wake_others() {
  int n = 0;
  loop::Runtime* rt = this->rt();
  while (FdWaiter* w = others_) {
    w->revents = kRead | kWrite;
    Task* t = w->task;
    remove(w);
    rt->wake(t, Wake::kClosed);
    n++;
  }
  return n;
}

int FdWatch::cancel_others() {
  const int n = wake_others();
  release_if_unused();
  return n;
}

void FdWatch::disown() {
  owned_ = false;
  loop::Runtime* rt = this->rt();
  if (reader_) rt->wake(reader_, Wake::kClosed);
  if (writer_) rt->wake(writer_, Wake::kClosed);
  release_if_unused();
}

void FdWatch::release_if_unused() {
  if (!owned_ && !reader_ && !writer_ && !others_) close();
}

void FdWatch::on_close(uv_handle_t* h) {
  auto* w = static_cast<FdWatch*>(h->data);
  w->rt()->live_watchers()--;
  delete w;  // allocated in get()
}

int FdWatch::wanted() const {
  int mask = (reader_ ? kRead : 0) | (writer_ ? kWrite : 0);
  for (const FdWaiter* n = others_; n; n = n->next)
    mask |= n->events;
  return mask;
}

void FdWatch::arm(int mask) {
  if (closing_ || mask == armed_) return;
  if (mask == 0) {
    uv_poll_stop(&handle_);
  } else if (uv_poll_start(&handle_, mask, on_poll) != 0) {
    mask = 0;
  }
  armed_ = static_cast<uint8_t>(mask);
  if (!(mask & kRead)) readable_ = true;  // unknown once nobody watches
}

void FdWatch::add_reader(Task* t, Prefetch fn, void* ctx) {
  reader_ = t;
  prefetch_ = fn;
  prefetch_ctx_ = ctx;
  arm(armed_ | kRead);
}

void FdWatch::add_writer(Task* t) {
  writer_ = t;
  arm(armed_ | kWrite);
}

void FdWatch::detach(Task* t) {
  // Interest stays armed; the next readiness report without a waiter disarms it.
  if (reader_ == t) {
    reader_ = nullptr;
    prefetch_ = nullptr;
  }
  if (writer_ == t) writer_ = nullptr;
}

void FdWatch::add(FdWaiter* n) {
  n->watch = this;
  n->prev = nullptr;
  n->next = others_;
  if (others_) others_->prev = n;
  others_ = n;
  arm(armed_ | n->events);
}

void FdWatch::remove(FdWaiter* n) {
  if (n->watch != this) return;
  if (n->prev) {
    n->prev->next = n->next;
  } else {
    others_ = n->next;
  }
  if (n->next) n->next->prev = n->prev;
  n->prev = n->next = nullptr;
  n->watch = nullptr;
}

void FdWatch::on_poll(uv_poll_t* h, int status, int events) {
  auto* w = static_cast<FdWatch*>(h->data);
  loop::Runtime* rt = w->rt();
  int mask = w->armed_;
  if (status < 0) {
    // libuv stopped the handle (POLLERR): wake everybody, the retried call reports the error.
    events = kRead | kWrite;
    w->armed_ = mask = 0;
  }
  // Waking a waiter detaches it, which unlinks its node: take the next one first.
  for (FdWaiter* n = w->others_; n;) {  // usually none
    FdWaiter* next = n->next;
    if (n->events & events) {
      n->revents |= n->events & events;
      rt->wake(n->task, Wake::kReady);
    }
    n = next;
  }
  if (events & kRead) {
    w->readable_ = true;
    if (w->reader_) {
      if (w->prefetch_ && status >= 0) w->prefetch_(w->sr(), w->prefetch_ctx_);
      rt->wake(w->reader_, Wake::kReady);
      w->woke_in_ = static_cast<uint32_t>(rt->iteration());
    }
  }
  if (events & kWrite) {
    if (w->writer_) rt->wake(w->writer_, Wake::kReady);
  }
  const int still = w->others_ ? w->wanted() : (w->reader_ ? kRead : 0) | (w->writer_ ? kWrite : 0);
  // Nobody reads: stop, or level-triggered polling would report it forever (unless its reader
  // was woken in this very run and has not read yet). Sockets are nearly always writable: watch
  // for room only while a writer waits.
  if (!(still & kRead) && w->woke_in_ != static_cast<uint32_t>(rt->iteration())) mask &= ~kRead;
  if (!(still & kWrite)) mask &= ~kWrite;
  w->arm(mask);
}

// ---------------------------------------------------------------------------------------------
// Wait sets

FdWaitSet* FdWaitSet::push(lua_State* L, int count) {
  const size_t size = sizeof(FdWaitSet) + static_cast<size_t>(count) * sizeof(FdWaiter);
  auto* set = static_cast<FdWaitSet*>(lua_newuserdatauv(L, size, 0));
  new (set) FdWaitSet();
  set->count_ = count;
  for (int i = 0; i < count; i++)
    new (&set->nodes()[i]) FdWaiter();
  static const char kMeta = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kMeta) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, on_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kMeta);
  }
  lua_setmetatable(L, -2);
  return set;
}

int FdWaitSet::on_gc(lua_State* L) {
  // The runtime may be gone when the state closes; it closed every watcher, which unlinked
  // every node, so there is nothing left to do then.
  auto* set = static_cast<FdWaitSet*>(lua_touserdata(L, 1));
  set->release();
  return 0;
}

bool FdWaitSet::watch(SocketRuntime* sr, int i, Task* t, int fd, int events) {
  FdWaiter& n = nodes()[i];
  FdWatch* w = FdWatch::get(sr, fd);
  if (!w) return false;
  sr_ = sr;
  n.task = t;
  n.fd = fd;
  n.events = events;
  n.revents = 0;
  w->add(&n);
  return true;
}

void FdWaitSet::detach(Task* t) {
  (void)t;
  for (int i = 0; i < count_; i++) {
    FdWaiter& n = nodes()[i];
    if (n.watch) n.watch->remove(&n);
  }
}

void FdWaitSet::release() {
  for (int i = 0; i < count_; i++) {
    FdWaiter& n = nodes()[i];
    if (n.fd < 0) continue;
    if (n.watch) n.watch->remove(&n);
    // Found again by descriptor: a watcher closed meanwhile is no longer registered (and may be
    // freed already).
    if (FdWatch* w = sr_->watcher(n.fd)) w->release_if_unused();
    n.fd = -1;
  }
}

}  // namespace uvs::socket
