// task.hpp: a task (a coroutine the scheduler runs), why it wakes, and what it can wait on.
// Layer: loop (uses lua.h; no uv.h, nothing from src/socket/).
#pragma once

#include <cstdint>
#include <type_traits>

#include "loop/timer_heap.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {

class Job;
class OpSlot;
struct Task;

enum class TaskState : uint8_t { kReady, kRunning, kWaiting, kDone, kFailed };

// Why a wait ended. wait() also returns kNone ("yield now") and kRefused ("no way to wait
// here"); a woken task only ever sees the other four.
enum class Wake : uint8_t {
  kNone,
  kReady,      // what it waited for happened (readiness, a lookup finished, its turn came)
  kTimeout,    // its deadline passed
  kClosed,     // the object it waited on was closed
  kCancelled,  // the task was cancelled
  kRefused,    // wait(): the caller is not a task that can yield and the wait cannot block
  kFailed,     // wait(): the source could not take the task (out of memory, an unwatchable
               // descriptor); a task that could yield is never blocked instead
};

// Something a task can wait on. When the task stops waiting for another reason (deadline,
// cancellation, the object closed), the runtime calls detach() so the source forgets it.
class WaitSource {
 public:
  virtual void detach(Task* t) = 0;

 protected:
  ~WaitSource() = default;
};

// A task lives in the memory of its Lua handle (a full userdata of class "async.task"); the
// handle's user values anchor the coroutine (1), the place it was spawned (2: a string, or once
// a cancellation reason is given, a table of both) and its name (3); see TaskDetail. While the task
// is alive the runtime holds a registry reference to the handle, so the pointers that watchers,
// jobs, joiners, operation slots and the deadline heap keep to it stay valid. A task is also the
// wait source of the tasks that join it.
struct Task : HeapNode, WaitSource {
  lua_State* co = nullptr;  // the task's coroutine
  // While the task runs: the innermost coroutine it resumed through the runtime's
  // coroutine.resume/wrap (the one running now), whose waits are the task's own.
  lua_State* proxy = nullptr;
  int ref = LUA_NOREF;  // registry ref to the handle; released in Runtime::finish
  TaskState state = TaskState::kReady;
  Wake wake = Wake::kNone;
  // One bit each, so that a Task is 160 bytes (with its handle's header and user values, 248:
  // an allocation of 256, one size class below 272).
  bool external : 1;  // waiting on something outside Lua (I/O, clock, lookup, signal)
  bool is_main : 1;
  bool cancelled : 1;  // sticky: every later wait returns "cancelled" at once
  bool doomed : 1;     // cancelled and past its grace: ended instead of resumed
  bool clamped : 1;    // the current wait was shortened by a deadline scope
  bool detailed : 1;   // user value 2 is a table {spawn site, reason}, not the spawn site
  uint32_t moved = 0;  // work done since the task last waited (fairness budget, bytes)
  union {
    int nargs = 0;  // before the first resume: values to pass to it
    int nresults;   // once done: values left on `co` (results or the error object)
  };
  Task* next_ready = nullptr;
  Task* live_prev = nullptr;  // the runtime's list of live tasks
  Task* live_next = nullptr;
  Task* joiners = nullptr;  // tasks waiting in join() for this one
  // The next task in the list of the source this task waits on: the joiners of the task it
  // joins, or the queue of an OpSlot. A task waits on one source at a time.
  Task* next_waiter = nullptr;
  WaitSource* source = nullptr;
  Job* pending = nullptr;  // the lookup job this task's wait owns (collected with take_job)
  OpSlot* held = nullptr;  // the operation slot the task owns now, released when its call returns
  uint64_t id = 0;
  uint64_t deadline = 0;     // deadline scope in force (monotonic ns), 0 for none
  uint64_t cancel_seen = 0;  // when a wait first returned "cancelled" (monotonic ns), 0 before
  const char* wait_what = nullptr;  // what the current wait is for, for status()
  // When the current wait began: the loop's time in ms, modulo 2^32 (status() reports waits
  // shorter than 49 days).
  uint32_t wait_since = 0;
  int wait_fd = -1;  // the descriptor it waits on, if any

  Task()
      : external(false),
        is_main(false),
        cancelled(false),
        doomed(false),
        clamped(false),
        detailed(false) {}

  void detach(Task* joiner) override;  // a joiner stopped waiting (timeout, cancelled)
};
static_assert(sizeof(Task) <= 160);

// The details of a task kept in its handle's user values. The cancellation reason shares a
// slot with the spawn site (in a table, made when a reason is given), since few tasks get one.
enum class TaskDetail { kSpawnedAt = 1, kReason = 2, kName = 3 };
// Pushes the detail of the task whose handle is at `idx` (nil if it has none).
void push_task_detail(lua_State* L, int idx, const Task* t, TaskDetail which);
// Sets the detail to the value on top of the stack, which it pops. May raise (memory).
void set_task_detail(lua_State* L, int idx, Task* t, TaskDetail which);

// Lua frees a task's memory without running any destructor.
static_assert(std::is_trivially_destructible_v<Task>);

}  // namespace uvs::loop
