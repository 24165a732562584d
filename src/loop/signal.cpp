// signal.cpp: see signal.hpp. Layer: loop.
#include "loop/signal.hpp"

#include <new>

#include "loop/runtime.hpp"

namespace uvs::loop {

SignalWatch::SignalWatch(Runtime* rt, int signum) : rt_(rt), signum_(signum) {}

bool SignalWatch::init(uv_loop_t* loop) {
  if (uv_signal_init(loop, &handle_) != 0) return false;
  handle_.data = this;
  return true;
}

void SignalWatch::close() {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&handle_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_), nullptr);
  }
}

bool SignalWatch::attach(Runtime* rt, Task* t, WaitSource** src) {
  (void)rt;
  try {
    waiters_.push_back(t);
  } catch (...) {  // no exception may reach Lua's frames
    return false;
  }
  if (!active_) {
    if (uv_signal_start(&handle_, on_signal, signum_) != 0) {
      waiters_.pop_back();
      return false;
    }
    active_ = true;
  }
  *src = this;
  return true;
}

void SignalWatch::stop_if_unwatched() {
  if (waiters_.empty() && active_) {
    uv_signal_stop(&handle_);  // the default action is back
    active_ = false;
  }
}

void SignalWatch::detach(Task* t) {
  for (size_t i = 0; i < waiters_.size(); i++) {
    if (waiters_[i] == t) {
      waiters_.erase(waiters_.begin() + static_cast<long>(i));
      break;
    }
  }
  stop_if_unwatched();
}

void SignalWatch::on_signal(uv_signal_t* h, int signum) {
  (void)signum;
  auto* w = static_cast<SignalWatch*>(h->data);
  // Each wake detaches the task, which takes it out of waiters_.
  while (!w->waiters_.empty())
    w->rt_->wake(w->waiters_.back(), Wake::kReady);
  w->stop_if_unwatched();
}

}  // namespace uvs::loop
