// wait.cpp: how calls wait, and how waiting tasks wake. Layer: loop. See wait.hpp.
#include "loop/wait.hpp"

#include <cmath>
#include <cstdio>

#include "loop/runtime.hpp"

namespace uvs::loop {

namespace {

const char kPassthrough = 0;  // its address is the pass-through marker

// The task `L` can yield for right now: `L` must be able to yield, and be the running task's
// coroutine or the coroutine that task resumed (which passes the wait up).
Task* yieldable(lua_State* L, Runtime* rt) {
  if (!lua_isyieldable(L)) return nullptr;
  return rt->task_of(L);
}

// Seconds left until the deadline scope of `t` (negative: no scope).
double scope_left(const Task* t) {
  if (!t->deadline) return -1.0;
  const uint64_t now = uv_hrtime();
  return t->deadline > now ? static_cast<double>(t->deadline - now) * 1e-9 : 0.0;
}

}  // namespace

void* passthrough_marker() { return const_cast<char*>(&kPassthrough); }

Wake pause(lua_State* L, Runtime* rt) {
  Task* t = yieldable(L, rt);
  if (!t) return Wake::kReady;  // a C boundary: go on, there is no way to let others run
  rt->requeue(t);
  return Wake::kNone;
}

Task* yielding_task(lua_State* L, Runtime* rt) { return yieldable(L, rt); }

Wake wait(lua_State* L, Runtime* rt, Waitable& w, const WaitSpec& spec) {
  Task* t = yieldable(L, rt);
  if (t) {
    if (t->cancelled && t->cancel_seen && uv_hrtime() - t->cancel_seen > kCancelGrace) {
      t->doomed = true;  // the scheduler ends it instead of resuming it
      rt->requeue(t);
      return Wake::kNone;
    }
    WaitSource* src = nullptr;
    if (!w.attach(rt, t, &src)) return Wake::kFailed;
    rt->suspend(t, src, spec.timeout, spec.external, spec.what, spec.fd);
    return Wake::kNone;
  } else {
    // Not yieldable here. If a task is running all the same (a C boundary inside it), its
    // cancellation and deadline scope still apply, and the blocking is reported.
    t = rt->task_of(L);
  }
  double timeout = spec.timeout;
  bool clamped = false;
  if (t) {
    if (t->cancelled) {
      if (!t->cancel_seen) t->cancel_seen = uv_hrtime();
      return Wake::kCancelled;
    }
    const double left = scope_left(t);
    if (left >= 0.0 && (timeout < 0.0 || left < timeout)) {
      timeout = left;
      clamped = true;
    }
  }
  if (!w.can_block()) return Wake::kRefused;
  if (t && timeout != 0.0) rt->warn_blocking(L);
  if (timeout != 0.0)
    rt->heap().idle(L, true, rt->live_watchers());  // the thread waits now: a trim costs nothing
  const Wake r = w.block(timeout);
  if (t) t->clamped = clamped && r == Wake::kTimeout;
  return r;
}

int yield(lua_State* L, Runtime* rt, lua_KContext ctx, lua_KFunction k) {
  Task* t = rt->current();
  if (t && t->co != L) {
    // A coroutine the task resumed: its resume (the runtime's) sees the marker and yields
    // the task's own coroutine in turn.
    lua_pushlightuserdata(L, passthrough_marker());
    return lua_yieldk(L, 1, ctx, k);
  }
  return lua_yieldk(L, 0, ctx, k);
}

Wake resumed(lua_State* L, Runtime* rt) {
  Task* t = rt->task_of(L);
  return t ? t->wake : Wake::kReady;
}

void Runtime::suspend(Task* t, WaitSource* src, double timeout, bool external, const char* what,
                      int fd) {
  t->state = TaskState::kWaiting;
  t->wake = Wake::kNone;
  t->source = src;
  t->clamped = false;
  t->wait_what = what;
  t->wait_fd = fd;
  t->wait_since =
      static_cast<uint32_t>(uv_now(&loop_));  // the loop's cached clock: no system call per wait
  t->external = false;
  t->moved = 0;
  if (t->cancelled) {
    // Cancellation is sticky: the wait ends at once, and the caller reports "cancelled".
    if (!t->cancel_seen) t->cancel_seen = uv_hrtime();
    wake(t, Wake::kCancelled);
    return;
  }
  uint64_t span = 0;
  bool timed = false;
  const uint64_t now = (timeout >= 0.0 || t->deadline) ? uv_hrtime() : 0;
  if (timeout >= 0.0) {
    const double ns = std::ceil(timeout * 1e9);
    span = ns >= 1.8e19 ? UINT64_MAX / 2 : static_cast<uint64_t>(ns);
    timed = true;
  }
  if (t->deadline) {
    const uint64_t left = t->deadline > now ? t->deadline - now : 0;
    if (!timed || left < span) {
      span = left;
      timed = true;
      t->clamped = true;
    }
  }
  t->external = external || timed;
  if (t->external) external_waits_++;
  if (timed) timers_.push(t, now + span);
}

void Runtime::wake(Task* t, Wake why) {
  if (t->state != TaskState::kWaiting || closing_) return;
  WaitSource* src = t->source;
  t->source = nullptr;
  if (src) src->detach(t);
  timers_.remove(t);
  if (t->external) {
    external_waits_--;
    t->external = false;
  }
  t->wake = why;
  t->state = TaskState::kReady;
  push_ready(t);
}

bool Runtime::unpark(Task* t) {
  if (t->state != TaskState::kWaiting || t->source != &parking_) return false;
  wake(t, Wake::kReady);
  return true;
}

void Runtime::warn_blocking(lua_State* L) {
  if (warned_blocking_ || !current_) return;
  warned_blocking_ = true;
  luaL_traceback(L, L,
                 "socket.async: a call that would wait was made where the task cannot yield (a "
                 "C boundary such as a table.sort comparator, a metamethod called from C, or the "
                 "main chunk of a required module); it blocked the whole thread instead. This is "
                 "reported once",
                 1);
  std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
  std::fflush(stderr);
  lua_pop(L, 1);
}

}  // namespace uvs::loop
