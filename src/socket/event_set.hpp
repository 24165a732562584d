// event_set.hpp: the runtime's own epoll set, in which every descriptor watcher (FdWatch) is
// registered, watched by libuv through one poll handle. Layer: transport (uv.h, Linux epoll; no
// Lua calls).
//
// Why not a uv_poll_t per descriptor: that handle is 160 bytes, most of an idle connection's
// watcher, and libuv keeps a table slot per descriptor besides. One set of the runtime's own
// costs a watcher a few words (its descriptor, what the kernel watches) and one extra
// epoll_wait per loop iteration that finds work, shared by every descriptor ready in it.
//
// The set is level-triggered, as libuv's own polling is, so that a watcher sees exactly the
// reports it would see from a uv_poll_t: readiness is reported again until it is consumed or
// interest is withdrawn. Interest is added at once (an epoll_ctl) and withdrawn lazily: a
// watcher that stops wanting an event is told the kernel's report of it once more, and only
// then is the registration changed, so a reader that waits again in the same iteration (the
// common case: a request read, answered, and the next one awaited) costs no system call.
//
// A report names its watcher by descriptor and serial number, never by pointer: the watcher
// may have been closed and freed by an earlier report of the same batch.
#pragma once

#include <sys/epoll.h>
#include <uv.h>

#include <cstdint>

namespace uvs::socket {

class SocketRuntime;

class EventSet {
 public:
  EventSet() = default;
  EventSet(const EventSet&) = delete;
  EventSet& operator=(const EventSet&) = delete;
  ~EventSet();  // closes the epoll descriptor (the loop, and so the handle, is closed by then)

  // Makes the set and its handle on `loop` if they are not there yet (SocketRuntime makes them
  // when it is installed); false if the system refuses (out of descriptors or memory).
  [[nodiscard]] bool open(uv_loop_t* loop, SocketRuntime* sr);
  // Registers `fd` (ADD) or changes its registration (MOD) to `events`, naming it by `tag`.
  // Returns 0 or an errno value.
  int watch(int fd, uint32_t events, uint64_t tag, bool added);
  // Removes `fd` from the set (its descriptor must still be open).
  void forget(int fd);
  // Counts the watchers that want some event: libuv polls the set (and the loop stays alive)
  // while one does.
  void wanting(int delta);
  // In a forked child: the set is the parent's kernel object; the child gets one of its own
  // under the same descriptor number (so the handle stays valid). Empty then: forking is
  // refused while descriptors are watched.
  void renew_after_fork();
  // Closes the handle (the runtime is shutting down).
  void close();

  static uint64_t tag(int fd, uint32_t serial) {
    return static_cast<uint32_t>(fd) | (static_cast<uint64_t>(serial) << 32);
  }

 private:
  static void on_ready(uv_poll_t* h, int status, int events);
  uv_poll_t handle_{};
  int epfd_ = -1;
  int wanting_ = 0;
  bool open_ = false;
};

}  // namespace uvs::socket
