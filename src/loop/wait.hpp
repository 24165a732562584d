// wait.hpp: the one place that decides whether a call that must wait yields its task to the
// scheduler or blocks the thread. Layer: loop (lua.h; no uv.h, nothing from src/socket/).
//
// Every blocking point of the module (a descriptor, a thread-pool job, a sleep, select, a
// signal, a join, a lock, a turn at a busy socket) describes itself as a Waitable and calls
// wait(). In a task that can yield there, wait() registers the task with the source and
// suspends it; anywhere else it calls the Waitable's block(), which waits on the thread. No
// other code asks whether the caller can yield.
#pragma once

#include "loop/task.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {

class Runtime;

// A blocking point, described for both ways of waiting.
class Waitable {
 public:
  // Task mode: registers `t` with the source and sets `*src` to what the task waits on (left
  // null when only the clock, a cancellation or Lua code can end the wait). Returns false if
  // the source cannot take the task; the thread then waits through block().
  virtual bool attach(Runtime* rt, Task* t, WaitSource** src) = 0;
  // Any other context: waits on the thread for at most `timeout` seconds (negative: no limit)
  // and returns kReady, kTimeout or kClosed; kRefused if this kind of wait needs a task.
  virtual Wake block(double timeout) = 0;
  // False for waits that only a task can make (block() then always refuses).
  [[nodiscard]] virtual bool can_block() const { return true; }

 protected:
  ~Waitable() = default;
};

struct WaitSpec {
  double timeout = -1.0;      // seconds; negative: no limit
  const char* what = "wait";  // what the wait is for, for async.status()
  int fd = -1;                // the descriptor, if any, for async.status()
  bool external = true;       // false: only Lua code can end it (joins, locks, turns)
};

// Waits for `w`. Returns kNone when the calling task was suspended: the caller must then
// `return yield(L, rt, ctx, k)`, and its continuation reads the outcome with resumed(). Any
// other value is the outcome of a wait made on the thread (kReady, kTimeout, kClosed,
// kCancelled), kRefused, or kFailed when a task that can yield could not be attached to the
// source (it is never made to block the thread instead). A task's cancellation and deadline
// scope apply in both cases; a wait that blocks the thread inside a task is reported once on
// stderr.
//
// Cancellation ends: a cancelled task's waits return kCancelled at once, so that its cleanup
// runs; a wait it makes more than kCancelGrace after its first cancelled wait returned ends
// the task instead (its coroutine is closed by the scheduler, its to-be-closed variables run,
// and it finishes as failed with the error "cancelled"), so that a loop ignoring the result
// cannot keep the program alive.
constexpr uint64_t kCancelGrace = 100000000;  // 0.1 s, in nanoseconds
[[nodiscard]] Wake wait(lua_State* L, Runtime* rt, Waitable& w, const WaitSpec& spec);

// Yields `L` after wait() suspended its task: a task's own coroutine yields to the scheduler,
// a coroutine the task resumed yields a marker that the runtime's coroutine.resume passes up.
int yield(lua_State* L, Runtime* rt, lua_KContext ctx, lua_KFunction k);

// In a continuation resumed after yield(): why the wait ended (kReady, kTimeout, kClosed,
// kCancelled).
[[nodiscard]] Wake resumed(lua_State* L, Runtime* rt);

// Fairness. A call in a task that keeps finding data (or room, or connections) never waits, so
// it would keep the loop to itself: each call charges the work it did (its bytes, at least
// kMinCost per step), and once the task has done kBudget since it last waited, spend() makes
// it pause: it returns kNone, the task goes to the back of the ready queue, and the caller
// yields (its continuation then sees kReady and goes on). Otherwise, and outside tasks, it
// returns kReady. The call's results and timeouts are unchanged.
constexpr uint32_t kBudget = 512 * 1024;
constexpr uint32_t kMinCost = 1024;
[[nodiscard]] Wake pause(lua_State* L, Runtime* rt);
[[nodiscard]] inline Wake spend(lua_State* L, Runtime* rt, size_t bytes);
// Charges work without pausing (a call that returns now pauses at its next spend()).
inline void charge(Runtime* rt, size_t bytes);

// The value a coroutine yields to pass its task's wait up to the runtime's coroutine.resume.
void* passthrough_marker();

// Whether a wait made by `L` now would yield (async.intask), and the task it would belong to.
[[nodiscard]] Task* yielding_task(lua_State* L, Runtime* rt);

}  // namespace uvs::loop

#include "loop/runtime.hpp"

namespace uvs::loop {

inline void charge(Runtime* rt, size_t bytes) {
  if (Task* t = rt->current()) {
    t->moved += bytes > kBudget ? kBudget : static_cast<uint32_t>(bytes);
  }
}

inline Wake spend(lua_State* L, Runtime* rt, size_t bytes) {
  Task* t = rt->current();
  if (!t) return Wake::kReady;
  const uint32_t cost = bytes < kMinCost  ? kMinCost
                        : bytes > kBudget ? kBudget
                                          : static_cast<uint32_t>(bytes);
  t->moved += cost;
  if (t->moved < kBudget) return Wake::kReady;
  return pause(L, rt);
}

}  // namespace uvs::loop
