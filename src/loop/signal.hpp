// signal.hpp: tasks waiting for a process signal (async.signal). Layer: loop (uv.h).
//
// The process handler is installed only while some task waits, so the signal's default action
// is back as soon as nobody does. A signal wait needs a task: outside one it is refused.
#pragma once

#include <uv.h>

#include <vector>

#include "loop/task.hpp"
#include "loop/wait.hpp"

namespace uvs::loop {

class Runtime;

class SignalWatch final : public WaitSource, public Waitable {
 public:
  SignalWatch(Runtime* rt, int signum);
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  // Initialises the handle; false if libuv refuses.
  [[nodiscard]] bool init(uv_loop_t* loop);
  // Closes the handle; the runtime deletes the watcher after the loop closed.
  void close();

  bool attach(Runtime* rt, Task* t, WaitSource** src) override;
  Wake block(double) override { return Wake::kRefused; }
  [[nodiscard]] bool can_block() const override { return false; }
  void detach(Task* t) override;

 private:
  static void on_signal(uv_signal_t* h, int signum);
  void stop_if_unwatched();
  uv_signal_t handle_{};
  Runtime* rt_;
  int signum_;
  bool active_ = false;
  std::vector<Task*> waiters_;
};

}  // namespace uvs::loop
