// runtime.hpp: the per-Lua-state runtime: the libuv loop, the tasks and the scheduler.
// Layer: loop (uses lua.h and uv.h; includes nothing from src/socket/).
//
// One Runtime exists per lua_State that loads socket.core. It owns the uv_loop_t, a ready queue
// of tasks, one heap of task deadlines driven by a single uv_timer_t, the signal watchers, and
// an extension slot where the socket layer keeps its own per-runtime state (descriptor
// watchers, receive buffers). libuv callbacks never call Lua: they record what happened and put
// the waiting task on the ready queue; only Runtime::run resumes tasks, and only outside uv_run.
// docs/design.md describes the whole model.
//
// The implementation is split by responsibility: runtime.cpp (creation and shutdown),
// scheduler.cpp (tasks, run, resume), wait.cpp (waits and wake-ups), job.cpp (thread-pool
// jobs), signal.cpp (signals), op_slot.cpp (one owner per operation).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>

#include "loop/heap_trim.hpp"
#include "loop/task.hpp"
#include "loop/timer_heap.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {

class SignalWatch;
class JobQueue;

// State another layer keeps per runtime. shutdown() runs first when the runtime goes away,
// while the loop can still run close callbacks; the runtime deletes the extension after the
// loop closed.
class Extension {
 public:
  virtual ~Extension() = default;
  virtual void shutdown() = 0;
  // Adds the extension's counters to the async._debug() table on top of L's stack.
  virtual void describe(lua_State* L) = 0;
  // In a forked child, after the loop was renewed: the extension renews the kernel objects of
  // its own that it shares with the parent.
  virtual void after_fork() = 0;
};

class Runtime {
 public:
  // Creates the runtime and pushes its handle (a userdata whose __gc shuts everything down).
  static Runtime* create(lua_State* L);
  // The runtime of the C closure being executed (upvalue 1 of every module function); nullptr
  // once the state is closing and the runtime is gone.
  static Runtime* of(lua_State* L) {
    return *static_cast<Runtime**>(lua_touserdata(L, lua_upvalueindex(1)));
  }

  uv_loop_t* loop() { return &loop_; }
  [[nodiscard]] uint64_t iteration() const { return iteration_; }
  [[nodiscard]] bool closing() const { return closing_; }
  // The extension slot (owned by the runtime from then on).
  void set_extension(Extension* e) { ext_ = e; }
  [[nodiscard]] Extension* extension() const { return ext_; }

  // Monotonic clock in seconds, for deadlines.
  [[nodiscard]] static double now() { return static_cast<double>(uv_hrtime()) * 1e-9; }

  // The task `L` works for: the running task, when `L` is its coroutine or the coroutine it
  // resumed through the runtime's coroutine.resume/wrap; nullptr anywhere else (the main
  // thread, a coroutine resumed any other way).
  [[nodiscard]] Task* task_of(lua_State* L) const {
    Task* t = current_;
    return (t && (t->co == L || t->proxy == L)) ? t : nullptr;
  }

  // spawn: the function at `fn` and the `nargs` values above it become a new task; pops them
  // and pushes the task's handle.
  Task* spawn(lua_State* L, int fn, int nargs);
  // Pushes the handle of a live task.
  void push_task(lua_State* L, Task* t) { lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref); }

  // Runs the scheduler until the main task (function at index 1 of L, arguments above it) and
  // every other task finished. Returns the number of main's results pushed on L, or raises
  // main's error.
  int run(lua_State* L);

  // --- waiting (wait.cpp; wait() in wait.hpp is how calls wait) ---
  // Marks `t` as waiting on `src` (may be null: only the clock, a cancellation or a wake from
  // Lua can end it) until `timeout` seconds passed (negative: no limit). `external` says
  // whether something outside Lua (I/O, the thread pool, a signal) will wake it. The wait is
  // shortened to the task's deadline scope, and a cancelled task is made ready at once.
  void suspend(Task* t, WaitSource* src, double timeout, bool external, const char* what,
               int fd = -1);
  // Makes a waiting task ready with the given reason; harmless if it does not wait.
  void wake(Task* t, Wake why);
  // Puts the running task at the back of the ready queue (it then yields): a fairness pause.
  void requeue(Task* t) {
    t->state = TaskState::kReady;
    t->wake = Wake::kReady;
    t->moved = 0;
    push_ready(t);
  }
  // Waits that Lua code ends (the synchronisation primitives): park the calling task, and wake
  // a task parked there.
  [[nodiscard]] WaitSource* parking() { return &parking_; }
  bool unpark(Task* t);
  // Says once, on stderr, that a call blocked the thread inside a task because it could not
  // yield there (a C boundary such as a table.sort comparator or a require'd chunk).
  void warn_blocking(lua_State* L);

  // --- task control ---
  // Cancels `t`: its current wait and every later one return "cancelled". Returns false if it
  // had already finished.
  bool cancel(Task* t);
  // Adds `joiner` to the tasks waiting for `t` to finish (used by the join wait's attach).
  void add_joiner(Task* t, Task* joiner);
  // coroutine.close on the coroutine of a task that is not running: its wait is abandoned
  // (jobs orphaned, slots released), the coroutine is closed (its to-be-closed variables run)
  // and the task finishes as failed with the error "coroutine closed". Returns the status of
  // closing the coroutine; when it is not LUA_OK the error object is pushed on L.
  int kill(lua_State* L, Task* t, const char* why = "coroutine closed");
  // Releases what a call of `t` left behind when its continuation will never run: the
  // operation slot it owns and the finished job it did not collect.
  void abandon_call(Task* t);
  // The live task whose own coroutine is `co`, if any.
  [[nodiscard]] Task* task_with_coroutine(lua_State* co) const;
  // The watcher of signal `signum`, created on first use (nullptr if it cannot be).
  SignalWatch* signal_watch(int signum);

  // --- introspection ---
  [[nodiscard]] Task* current() const { return current_; }
  [[nodiscard]] Task* first_live() const { return live_head_; }
  [[nodiscard]] size_t live_tasks() const { return live_tasks_; }
  [[nodiscard]] size_t pending_timers() const { return timers_.size(); }
  // Descriptor watchers that other layers opened and have not freed yet (counted by them).
  size_t& live_watchers() { return watchers_; }
  // The runtime's side of the lookup pool, and its jobs not yet collected.
  [[nodiscard]] JobQueue* jobs() const { return jobs_; }
  [[nodiscard]] size_t live_jobs() const;
  // Active libuv handles other than the runtime's own, plus requests in flight: zero means
  // nothing is left that could keep the loop running.
  [[nodiscard]] size_t open_handles();
  // The heap trimmer (heap_trim.hpp), asked at every idle point.
  HeapTrim& heap() { return heap_; }
  [[nodiscard]] uint64_t max_lag() const { return max_lag_; }
  [[nodiscard]] uint64_t idle_ns() const { return idle_ns_; }
  [[nodiscard]] uint64_t idle_collections() const { return idle_collections_; }
  void reset_lag() { max_lag_ = 0; }
  void set_watchdog(double seconds) {
    // Beyond about 584 years of nanoseconds uint64_t overflows: that is "never" anyway.
    watchdog_ns_ = !(seconds > 0)      ? 0
                   : seconds >= 1.8e10 ? UINT64_MAX
                                       : static_cast<uint64_t>(seconds * 1e9);
  }
  [[nodiscard]] double watchdog() const { return static_cast<double>(watchdog_ns_) * 1e-9; }
  // The error handler set by async.onerror (LUA_NOREF for the default report on stderr).
  int& onerror_ref() { return onerror_ref_; }
  // Lets libuv finish closing handles when no run() is in progress (tests, after close()).
  void flush_closing() {
    if (!running_) uv_run(&loop_, UV_RUN_NOWAIT);
  }

 private:
  struct Parking : WaitSource {
    void detach(Task*) override {}
  };

  Runtime() = default;
  static int on_gc(lua_State* L);
  void shutdown();
  void push_ready(Task* t);
  void unqueue_ready(Task* t);
  void drain_ready(lua_State* L);
  void resume(lua_State* L, Task* t);
  void finish(lua_State* L, Task* t, int nres);
  void fail(lua_State* L, Task* t, int status);
  void report(lua_State* L, Task* t, int traceback);
  void expire_timers();
  void arm_tick();
  static void on_prepare(uv_prepare_t* h);
  void arm_idle(lua_State* L);
  void start_idle(uint64_t ms);
  void collect_idle(lua_State* L);

  uv_loop_t loop_{};
  // The earliest task deadline is handed to libuv by `tick_`. It is armed before each uv_run
  // (an armed timer is what keeps the loop alive when only deadlines are pending) and re-armed
  // from `prepare_`, right before libuv computes how long to poll: the timer may have fired at
  // the start of uv_run, which would otherwise leave the poll without a timeout.
  uv_timer_t tick_{};
  uv_prepare_t prepare_{};
  uv_timer_t trim_timer_{};  // ends the poll while a trim is due (heap_trim.hpp)
  HeapTrim heap_;
  uint64_t last_poll_ns_ = 0;  // how long the scheduler's previous poll waited
  // After a burst of work, once the loop has stayed idle for kIdleMs, a full collection gives
  // back what the burst left behind (the collector's garbage, the allocator's free pages). The
  // timer is armed when the loop blocks after running tasks, and fires at most once per idle
  // period: an idle loop is not woken again. It collects only if the heap, sampled whenever the
  // timer is armed, went kIdleGrowthKb past its size after the last such collection, and these
  // collections take at most a tenth of the time (the next one waits nine times as long as the
  // last one took).
  static constexpr uint64_t kIdleMs = 100;
  static constexpr int kIdleGrowthKb = 1024;
  uv_timer_t idle_{};
  bool worked_ = false;            // tasks ran since the idle timer was last armed
  bool idle_armed_ = false;        // the idle timer is running
  bool idle_fired_ = false;        // set by its callback, handled after uv_run (which calls no Lua)
  int idle_floor_kb_ = 0;          // the heap's size after the last idle collection (KiB)
  int idle_peak_kb_ = 0;           // the largest size sampled since (KiB)
  uint64_t idle_not_before_ = 0;   // no idle collection before this time (uv_hrtime)
  uint64_t idle_collections_ = 0;  // made so far (async._debug)
  TimerHeap timers_;
  Parking parking_;
  Extension* ext_ = nullptr;  // deleted in on_gc, after shutdown
  Task* ready_head_ = nullptr;
  Task* ready_tail_ = nullptr;
  Task* live_head_ = nullptr;
  Task* current_ = nullptr;  // the task being resumed now
  size_t live_tasks_ = 0;
  size_t external_waits_ = 0;
  size_t watchers_ = 0;
  JobQueue* jobs_ = nullptr;  // deleted in on_gc
  uint64_t next_id_ = 1;
  uint64_t iteration_ = 0;  // uv_run calls so far (watchers use it to spot repeated reports)
  uint64_t max_lag_ = 0;    // longest time a task ran without yielding (ns)
  uint64_t idle_ns_ = 0;    // time spent blocked in the loop's poll
  uint64_t watchdog_ns_ = 500000000;  // report a task that runs longer without yielding
  int onerror_ref_ = LUA_NOREF;       // freed in shutdown()
  bool running_ = false;
  bool closing_ = false;
  bool warned_blocking_ = false;
  static constexpr int kSignals = 65;    // signal numbers 1..64
  SignalWatch* signals_[kSignals] = {};  // freed in shutdown()
};

}  // namespace uvs::loop
