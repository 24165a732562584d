// fd_watch.cpp: see fd_watch.hpp. Layer: transport.
#include "socket/fd_watch.hpp"

#include <new>

#include "loop/runtime.hpp"
#include "socket/socket_runtime.hpp"

namespace uvs::socket {

using loop::Task;
using loop::Wake;

FdWatch* FdWatch::get(SocketRuntime* sr, int fd) {
  if (FdWatch* w = sr->watcher(fd)) return w;
  if (fd < 0 || !sr->events().open(sr->rt()->loop(), sr)) return nullptr;
  auto* w = new (std::nothrow) FdWatch();  // freed in close()
  if (!w) return nullptr;
  w->sr_ = sr;
  w->fd_ = fd;
  w->serial_ = sr->next_serial();
  sr->rt()->live_watchers()++;
  if (!sr->set_watcher(fd, w)) {
    w->close();
    return nullptr;
  }
  return w;
}

loop::Runtime* FdWatch::rt() const { return sr_->rt(); }

void FdWatch::close() {
  if (closing_) return;
  closing_ = true;
  SocketRuntime* sr = sr_;
  if (sr->watcher(fd_) == this) (void)sr->set_watcher(fd_, nullptr);
  loop::Runtime* rt = this->rt();
  // wake() detaches each waiter from this watcher before making it ready.
  if (reader_) rt->wake(reader_, Wake::kClosed);
  if (writer_) rt->wake(writer_, Wake::kClosed);
  (void)wake_others();
  // The descriptor is still open here: a duplicate of it (dup, fork) would otherwise keep the
  // registration, and its reports, alive.
  if (registered_) sr->events().forget(fd_);
  if (armed_) sr->events().wanting(-1);
  rt->live_watchers()--;
  delete this;  // allocated in get(); reports find watchers by descriptor and serial
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

int FdWatch::wanted() const {
  int mask = (reader_ ? kRead : 0) | (writer_ ? kWrite : 0);
  for (const FdWaiter* n = others_; n; n = n->next)
    mask |= n->events;
  return mask;
}

bool FdWatch::arm(int mask) {
  if (closing_) return false;
  if (mask == armed_) return true;
  if (mask & ~registered_) {
    const int want = mask | registered_;
    // Refused (EPERM: a regular file, which epoll cannot watch; ENOMEM): the caller's wait
    // fails and says so; what was armed stays armed.
    if (sr_->events().watch(fd_, want, EventSet::tag(fd_, serial_), registered_ != 0) != 0)
      return false;
    registered_ = static_cast<uint8_t>(want);
  }
  // Interest no longer wanted stays registered until the kernel reports it (on_poll).
  if ((armed_ != 0) != (mask != 0)) sr_->events().wanting(mask ? 1 : -1);
  armed_ = static_cast<uint8_t>(mask);
  if (!(mask & kRead)) readable_ = true;  // unknown once nobody watches
  return true;
}

bool FdWatch::add_reader(Task* t, Prefetch fn, void* ctx) {
  if (!arm(armed_ | kRead)) return false;
  reader_ = t;
  prefetch_ = fn;
  prefetch_ctx_ = ctx;
  return true;
}

bool FdWatch::add_writer(Task* t) {
  if (!arm(armed_ | kWrite)) return false;
  writer_ = t;
  return true;
}

void FdWatch::detach(Task* t) {
  // Interest stays armed; the next readiness report without a waiter disarms it.
  if (reader_ == t) {
    reader_ = nullptr;
    prefetch_ = nullptr;
  }
  if (writer_ == t) writer_ = nullptr;
}

bool FdWatch::add(FdWaiter* n) {
  if (!arm(armed_ | n->events)) return false;
  n->watch = this;
  n->prev = nullptr;
  n->next = others_;
  if (others_) others_->prev = n;
  others_ = n;
  return true;
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

void FdWatch::report(SocketRuntime* sr, int fd, uint32_t serial, uint32_t events) {
  FdWatch* w = sr->watcher(fd);
  if (!w || w->serial_ != serial) return;  // closed earlier in this batch; maybe reused
  w->on_poll(events);
}

void FdWatch::on_poll(uint32_t raw) {
  loop::Runtime* rt = this->rt();
  int mask = armed_;
  // What uv_poll_t would report: an error stops the watch (the retried call reports it), and
  // a hang-up alone counts as every event watched.
  const bool failed = raw & EPOLLERR;
  if (raw & EPOLLHUP) raw |= kRead | kWrite;
  int events = static_cast<int>(raw) & (kRead | kWrite);
  if (failed) {
    events = kRead | kWrite;
    sr_->events().forget(fd_);
    registered_ = 0;
    if (armed_) sr_->events().wanting(-1);
    armed_ = mask = 0;
  } else {
    events &= armed_;
    if ((registered_ & ~armed_) != 0) {
      // Interest withdrawn since it was registered (arm): the kernel reports it at last.
      if (armed_ == 0) {
        sr_->events().forget(fd_);
        registered_ = 0;
      } else if (sr_->events().watch(fd_, armed_, EventSet::tag(fd_, serial_), true) == 0) {
        registered_ = armed_;
      }
    }
    if (events == 0) return;
  }
  // Waking a waiter detaches it, which unlinks its node: take the next one first.
  for (FdWaiter* n = others_; n;) {  // usually none
    FdWaiter* next = n->next;
    if (n->events & events) {
      n->revents |= n->events & events;
      rt->wake(n->task, Wake::kReady);
    }
    n = next;
  }
  if (events & kRead) {
    readable_ = true;
    if (reader_) {
      if (prefetch_ && !failed) prefetch_(sr_, prefetch_ctx_);
      rt->wake(reader_, Wake::kReady);
      woke_in_ = static_cast<uint32_t>(rt->iteration());
    }
  }
  if (events & kWrite) {
    if (writer_) rt->wake(writer_, Wake::kReady);
  }
  const int still = others_ ? wanted() : (reader_ ? kRead : 0) | (writer_ ? kWrite : 0);
  // Nobody reads: stop, or level-triggered polling would report it forever (unless its reader
  // was woken in this very run and has not read yet). Sockets are nearly always writable: watch
  // for room only while a writer waits.
  if (!(still & kRead) && woke_in_ != static_cast<uint32_t>(rt->iteration())) mask &= ~kRead;
  if (!(still & kWrite)) mask &= ~kWrite;
  arm(mask);
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
  n.events = events;
  n.revents = 0;
  if (!w->add(&n)) {
    w->release_if_unused();  // made for this node, perhaps: nobody else may want it
    return false;
  }
  n.fd = fd;
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
