// socket_runtime.hpp: what the socket layer keeps per runtime: the descriptor watchers (one per
// descriptor, found by descriptor) and the epoll set they are registered in, the receive-buffer
// pool and a scratch area for reads made in poll callbacks. Layer: transport. It is the
// runtime's extension (loop::Extension): the loop knows it only through that interface and
// never includes this file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "loop/runtime.hpp"
#include "socket/event_set.hpp"
#include "socket/recv_buffer.hpp"

namespace uvs::socket {

class FdWatch;

class SocketRuntime final : public loop::Extension {
 public:
  // Creates the socket layer's state for `rt` and installs it as rt's extension.
  [[nodiscard]] static SocketRuntime* install(lua_State* L, loop::Runtime* rt);
  // The state of the runtime of the C closure being executed.
  static SocketRuntime* of(lua_State* L) {
    loop::Runtime* rt = loop::Runtime::of(L);
    return rt ? static_cast<SocketRuntime*>(rt->extension()) : nullptr;
  }

  loop::Runtime* rt() const { return rt_; }
  BufferPool& pool() { return pool_; }
  static constexpr size_t kScratchSize = 65536;
  char* scratch() { return scratch_; }

  // The watcher registered for `fd`, or nullptr.
  [[nodiscard]] FdWatch* watcher(int fd) const {
    return fd >= 0 && static_cast<size_t>(fd) < by_fd_.size() ? by_fd_[fd] : nullptr;
  }
  // Registers (or, with nullptr, forgets) the watcher of `fd`; false if the table cannot grow.
  [[nodiscard]] bool set_watcher(int fd, FdWatch* w);
  // The epoll set of every watcher, and the serial number of the next watcher made.
  EventSet& events() { return events_; }
  uint32_t next_serial() { return ++serial_; }

  // Out of descriptors (docs/async.md). An accept that failed for lack of descriptors or memory
  // records it here; until a descriptor of this runtime is freed (a socket closed) or
  // kExhaustedBackoff passes, the next accepts made in tasks wait for either before trying
  // again, so that a loop calling accept at once cannot spin, and the tasks that would free a
  // descriptor get to run.
  static constexpr double kExhaustedBackoff = 0.1;
  void note_exhausted(double now) {
    exhausted_until_ = now + kExhaustedBackoff;
    exhausted_closes_ = closes_;
  }
  // Seconds an accept made now should wait for a freed descriptor; 0 for none.
  [[nodiscard]] double exhausted_wait(double now) const {
    return closes_ == exhausted_closes_ && now < exhausted_until_ ? exhausted_until_ - now : 0;
  }
  // A socket of this runtime closed its descriptor: wakes the accepts waiting for one.
  void descriptor_freed() {
    closes_++;
    if (!freed_.tasks.empty()) wake_freed();
  }
  // A descriptor kept open on /dev/null from the start, so that a server out of descriptors can
  // still accept a waiting connection to refuse it (server:refuse()). Returns the accepted
  // descriptor's fate: true if one was accepted and closed, false if none waited (or the spare
  // could not be had).
  bool refuse_one(int listen_fd);
  // What those accepts wait on.
  [[nodiscard]] loop::WaitSource* freed_waiters() { return &freed_; }
  bool add_freed_waiter(loop::Task* t);

  void shutdown() override;
  void describe(lua_State* L) override;
  void after_fork() override { events_.renew_after_fork(); }

 private:
  struct FreedWaiters final : loop::WaitSource {
    std::vector<loop::Task*> tasks;
    void detach(loop::Task* t) override;
  };

  explicit SocketRuntime(loop::Runtime* rt) : rt_(rt) {}
  void wake_freed();
  void keep_spare();
  loop::Runtime* rt_;
  std::vector<FdWatch*> by_fd_;
  EventSet events_;
  uint32_t serial_ = 0;
  FreedWaiters freed_;
  uint64_t closes_ = 0;
  uint64_t exhausted_closes_ = 0;
  double exhausted_until_ = 0;
  int spare_ = -1;
  BufferPool pool_;
  char scratch_[kScratchSize];
};

}  // namespace uvs::socket
