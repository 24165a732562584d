// event_set.cpp: see event_set.hpp. Layer: transport.
#include "socket/event_set.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "socket/fd_watch.hpp"
#include "socket/socket_runtime.hpp"

namespace uvs::socket {

namespace {
// Reports taken per libuv callback: what one epoll_wait can return. More ready descriptors are
// taken in the next loop iteration (the set stays readable), after the woken tasks ran.
constexpr int kBatch = 512;
}  // namespace

EventSet::~EventSet() {
  if (epfd_ >= 0) ::close(epfd_);
}

bool EventSet::open(uv_loop_t* loop, SocketRuntime* sr) {
  if (open_) return true;
  if (epfd_ < 0) epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return false;
  if (uv_poll_init(loop, &handle_, epfd_) != 0) return false;
  handle_.data = sr;
  open_ = true;
  return true;
}

int EventSet::watch(int fd, uint32_t events, uint64_t tag, bool added) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  if (epoll_ctl(epfd_, added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
  return errno;
}

void EventSet::forget(int fd) {
  epoll_event ev{};  // ignored, but kernels before 2.6.9 wanted one
  (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
}

void EventSet::wanting(int delta) {
  const int before = wanting_;
  wanting_ += delta;
  if (!open_) return;
  if (before == 0 && wanting_ > 0) {
    (void)uv_poll_start(&handle_, UV_READABLE, on_ready);
  } else if (before > 0 && wanting_ == 0) {
    (void)uv_poll_stop(&handle_);
  }
}

void EventSet::renew_after_fork() {
  if (epfd_ < 0) return;
  const int fresh = epoll_create1(EPOLL_CLOEXEC);
  if (fresh < 0) return;  // the child keeps the shared set: the first watch then fails loudly
  (void)dup3(fresh, epfd_, O_CLOEXEC);
  ::close(fresh);
}

void EventSet::close() {
  if (!open_) return;
  open_ = false;
  wanting_ = 0;
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&handle_)))
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_), nullptr);
}

void EventSet::on_ready(uv_poll_t* h, int status, int events) {
  (void)status;
  (void)events;
  auto* sr = static_cast<SocketRuntime*>(h->data);
  epoll_event ev[kBatch];
  int n;
  do {
    n = epoll_wait(sr->events().epfd_, ev, kBatch, 0);
  } while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++) {
    const uint64_t tag = ev[i].data.u64;
    FdWatch::report(sr, static_cast<int>(static_cast<uint32_t>(tag)),
                    static_cast<uint32_t>(tag >> 32), ev[i].events);
  }
}

}  // namespace uvs::socket
