// runtime.hpp: the per-Lua-state runtime: the libuv loop, the tasks and the scheduler.
// Layer: loop (uses lua.h and uv.h; knows nothing of sockets beyond the buffer pool).
//
// One Runtime exists per lua_State that loads socket.core. It owns the uv_loop_t, a ready queue
// of tasks, one heap of task deadlines driven by a single uv_timer_t, and the receive-buffer
// pool. libuv callbacks never call Lua: they record what happened and put the waiting task on
// the ready queue; only Runtime::run resumes tasks, and only outside uv_run. docs/design.md
// describes the whole model.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "loop/timer_heap.hpp"
#include "lua/lua_api.hpp"
#include "socket/recv_buffer.hpp"

namespace uvs::loop {

class Runtime;
struct Task;

enum class TaskState : uint8_t { kReady, kRunning, kWaiting, kDone, kFailed };

// Why a waiting task was made ready again.
enum class Wake : uint8_t {
  kNone,
  kReady,      // what it waited for happened (readiness, a lookup finished, ...)
  kTimeout,    // its deadline passed
  kClosed,     // the object it waited on was closed
  kCancelled,  // the task was cancelled
};

// Something a task can wait on. When the task stops waiting for another reason (deadline,
// cancellation), the runtime calls detach() so the source forgets the task.
class WaitSource {
 public:
  virtual void detach(Task* t) = 0;

 protected:
  ~WaitSource() = default;
};

// A task lives in the memory of its Lua handle (a full userdata of class "async.task"); the
// handle's user values anchor the coroutine (1), the cancellation reason (2), the name (3) and
// the place it was spawned (4). While the task is alive the runtime holds a registry reference
// to the handle, so the pointers that watchers, jobs, joiners and the deadline heap keep to it
// stay valid. A task is also the wait source of the tasks that join it.
struct Task : HeapNode, WaitSource {
  lua_State* co = nullptr;  // the task's coroutine
  int ref = LUA_NOREF;      // registry ref to the handle; released in Runtime::finish
  TaskState state = TaskState::kReady;
  Wake wake = Wake::kNone;
  bool external = false;     // waiting on something outside Lua (I/O, clock, lookup, signal)
  bool is_main = false;
  bool cancelled = false;    // sticky: every later wait returns "cancelled" at once
  bool clamped = false;      // the current wait was shortened by a deadline scope
  int nargs = 0;             // values to pass to the first resume
  int nresults = 0;          // values left on `co` when done (results or the error object)
  Task* next_ready = nullptr;
  Task* live_prev = nullptr;  // the runtime's list of live tasks
  Task* live_next = nullptr;
  Task* joiners = nullptr;     // tasks waiting in join() for this one
  Task* next_joiner = nullptr;
  WaitSource* source = nullptr;
  void* pending = nullptr;  // an operation object owned by the wait (e.g. a lookup job)
  uint64_t id = 0;
  uint64_t deadline = 0;     // deadline scope in force (monotonic ns), 0 for none
  uint64_t wait_since = 0;   // when the current wait began (loop time, ms)
  const char* wait_what = nullptr;  // what the current wait is for, for status()
  int wait_fd = -1;                 // the descriptor it waits on, if any

  void detach(Task* joiner) override;  // a joiner stopped waiting (timeout, cancelled)
};

// A unit of work that runs on libuv's thread pool while a task waits (getaddrinfo and friends).
// In blocking mode the same work() runs on the calling thread instead.
class Job : public WaitSource {
 public:
  Job() = default;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  virtual ~Job() = default;
  virtual void work() = 0;  // runs on a pool thread: no Lua, no uv calls

  // Queues the job for `t`; on success the task waits on it (returns true). The runtime owns the
  // job from then on until the task collects it with Runtime::take_job.
  bool start(Runtime* rt, Task* t);
  void detach(Task* t) override;

 private:
  static void on_work(uv_work_t* req);
  static void on_after(uv_work_t* req, int status);
  uv_work_t req_{};
  Task* task_ = nullptr;
  bool orphan_ = false;
  friend class Runtime;
};

// Watches one descriptor for tasks that wait to read or write it. Allocated the first time a
// task waits on the socket; freed in on_close, after the owner called close().
class FdWatch final : public WaitSource {
 public:
  static constexpr int kRead = UV_READABLE;
  static constexpr int kWrite = UV_WRITABLE;
  // Reads what a readiness report announced into the waiting reader's buffer, from the poll
  // callback. Reading there drains the socket, so that libuv, which polls several times per
  // loop iteration when many sockets are ready, does not report it again and again before the
  // woken task gets to run (level-triggered polling would). Must not call Lua.
  using Prefetch = void (*)(Runtime* rt, void* ctx);

  [[nodiscard]] static FdWatch* open(Runtime* rt, int fd);
  // Wakes any waiter with Wake::kClosed and releases the handle (freed in on_close).
  void close();
  // Makes `t` wait until the descriptor is ready in direction `dir`. Returns false if another
  // task already waits in that direction.
  [[nodiscard]] bool add_waiter(Task* t, int dir);
  // Sets what to do for the current reader when its socket becomes readable (until it wakes).
  void set_prefetch(Prefetch fn, void* ctx) {
    prefetch_ = fn;
    prefetch_ctx_ = ctx;
  }
  void detach(Task* t) override;
  // False only while the descriptor is watched for reading and nothing arrived since the last
  // read came back short: a receive can then wait at once instead of calling recv() in vain.
  [[nodiscard]] bool maybe_readable() const { return readable_ || !(armed_ & kRead); }
  void drained() { readable_ = false; }

 private:
  FdWatch() = default;
  static void on_poll(uv_poll_t* h, int status, int events);
  static void on_close(uv_handle_t* h);
  void arm(int mask);
  uv_poll_t handle_{};
  Runtime* rt_ = nullptr;
  Task* reader_ = nullptr;
  Task* writer_ = nullptr;
  Prefetch prefetch_ = nullptr;
  void* prefetch_ctx_ = nullptr;
  int armed_ = 0;
  bool readable_ = true;
  // The uv_run during which the reader was last woken: libuv may report the socket again in the
  // same run (it polls several times when many descriptors are ready), and the woken task has
  // not read yet, so read interest stays armed until the next run.
  uint64_t woke_in_ = UINT64_MAX;
};

// Watches one signal for tasks that wait for it (async.signal). The process handler is installed
// only while some task waits, so the signal's default action is back as soon as nobody does.
// Freed by the runtime's shutdown.
class SignalWatch final : public WaitSource {
 public:
  SignalWatch(Runtime* rt, int signum);
  // Makes `t` wait for the signal; returns false if the watcher cannot start.
  [[nodiscard]] bool add_waiter(Task* t, double timeout);
  void detach(Task* t) override;

 private:
  static void on_signal(uv_signal_t* h, int signum);
  uv_signal_t handle_{};
  Runtime* rt_;
  int signum_;
  bool active_ = false;
  std::vector<Task*> waiters_;
  friend class Runtime;
};

class Runtime {
 public:
  // Creates the runtime and pushes its handle (a userdata whose __gc shuts everything down).
  static Runtime* create(lua_State* L);
  // The runtime of the C closure being executed (upvalue 1 of every module function).
  static Runtime* of(lua_State* L) {
    return *static_cast<Runtime**>(lua_touserdata(L, lua_upvalueindex(1)));
  }

  uv_loop_t* loop() { return &loop_; }
  socket::BufferPool& pool() { return pool_; }
  // A scratch area for reads made in libuv callbacks (never held across a callback).
  static constexpr size_t kScratchSize = 65536;
  char* scratch() { return scratch_; }
  [[nodiscard]] uint64_t iteration() const { return iteration_; }

  // Monotonic clock in seconds, for deadlines.
  [[nodiscard]] static double now() { return static_cast<double>(uv_hrtime()) * 1e-9; }

  // The task `L` works for: the task whose coroutine is `L`, or the task that resumed the user
  // coroutine `L` through the runtime's coroutine.resume/wrap (it passes waits up). nullptr for
  // the main thread and for coroutines resumed any other way.
  [[nodiscard]] Task* task_of(lua_State* L) const;
  // task_of(L) if `L` can yield to the scheduler right now, else nullptr.
  [[nodiscard]] Task* yieldable_task(lua_State* L) const;
  // Yields `L` after it registered a wait (suspend): a task yields to the scheduler, a user
  // coroutine yields the pass-through marker to the runtime's resume, which yields its own
  // thread in turn. Use as `return Runtime::yield(L, ctx, k)`.
  static int yield(lua_State* L, lua_KContext ctx, lua_KFunction k);
  // The marker a user coroutine yields to pass a wait up.
  static void* passthrough_marker();
  // Marks `co` as running on behalf of `t` (or nobody, with nullptr) while the runtime's
  // coroutine.resume runs it; returns the previous mark to restore.
  void* mark_proxy(lua_State* co, Task* t);
  void unmark_proxy(lua_State* co, void* previous);
  // Says once, on stderr, that a call blocked the thread inside a task because it could not
  // yield there (a C boundary such as a table.sort comparator or a require'd chunk).
  void warn_blocking(lua_State* L);

  // spawn: the function at `fn` and the `nargs` values above it become a new task; pops them
  // and pushes the task's handle.
  Task* spawn(lua_State* L, int fn, int nargs);
  // Pushes the handle of a live task.
  void push_task(lua_State* L, Task* t) { lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref); }

  // Runs the scheduler until the main task (function at index 1 of L, arguments above it) and
  // every other task finished. Returns the number of main's results pushed on L, or raises
  // main's error.
  int run(lua_State* L);

  // --- waiting (called by the C function a task is running) ---
  // Marks `t` as waiting on `src` (may be null: only the clock, a cancellation or a wake from
  // Lua can end it) until `timeout` seconds passed (negative: no limit). `external` says
  // whether something outside Lua (I/O, the thread pool, a signal) will wake it. The wait is
  // shortened to the task's deadline scope, and a cancelled task is made ready at once.
  void suspend(Task* t, WaitSource* src, double timeout, bool external, const char* what,
               int fd = -1);
  // Makes a waiting task ready with the given reason; harmless if it does not wait.
  void wake(Task* t, Wake why);
  // Collects the job a task waited on, or nullptr if the wait ended another way (the job was
  // then orphaned and frees itself).
  Job* take_job(Task* t);
  // Waits that Lua code wakes (the synchronisation primitives): suspend on the runtime's
  // parking place, and wake a task parked there.
  void park(Task* t, double timeout);
  bool unpark(Task* t);

  // --- task control ---
  // Cancels `t`: its current wait and every later one return "cancelled". Returns false if it
  // had already finished.
  bool cancel(Task* t);
  // Adds `joiner` to the tasks waiting for `t` to finish.
  void join(Task* t, Task* joiner, double timeout);
  // The watcher of signal `signum`, created on first use (nullptr if it cannot be).
  SignalWatch* signal_watch(int signum);

  // --- introspection ---
  [[nodiscard]] Task* current() const { return current_; }
  [[nodiscard]] Task* first_live() const { return live_head_; }
  [[nodiscard]] size_t live_tasks() const { return live_tasks_; }
  [[nodiscard]] size_t live_watchers() const { return watchers_; }
  [[nodiscard]] size_t pending_timers() const { return timers_.size(); }
  [[nodiscard]] uint64_t max_lag() const { return max_lag_; }
  [[nodiscard]] uint64_t idle_ns() const { return idle_ns_; }
  void reset_lag() { max_lag_ = 0; }
  void set_watchdog(double seconds) {
    watchdog_ns_ = seconds > 0 ? static_cast<uint64_t>(seconds * 1e9) : 0;
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
  void drain_ready(lua_State* L);
  void resume(lua_State* L, Task* t);
  void finish(lua_State* L, Task* t, int nres);
  void fail(lua_State* L, Task* t, int status);
  void report(lua_State* L, Task* t, int traceback);
  void expire_timers();
  void arm_tick();
  static void on_prepare(uv_prepare_t* h);

  uv_loop_t loop_{};
  // The earliest task deadline is handed to libuv by `tick_`. It is armed before each uv_run
  // (an armed timer is what keeps the loop alive when only deadlines are pending) and re-armed
  // from `prepare_`, right before libuv computes how long to poll: the timer may have fired at
  // the start of uv_run, which would otherwise leave the poll without a timeout.
  uv_timer_t tick_{};
  uv_prepare_t prepare_{};
  TimerHeap timers_;
  Parking parking_;
  Task* ready_head_ = nullptr;
  Task* ready_tail_ = nullptr;
  Task* live_head_ = nullptr;
  Task* current_ = nullptr;  // the task being resumed now
  size_t live_tasks_ = 0;
  size_t external_waits_ = 0;
  size_t watchers_ = 0;  // FdWatch objects not yet freed
  uint64_t next_id_ = 1;
  uint64_t iteration_ = 0;  // uv_run calls so far (FdWatch uses it to spot repeated reports)
  uint64_t max_lag_ = 0;        // longest time a task ran without yielding (ns)
  uint64_t idle_ns_ = 0;        // time spent blocked in the loop's poll
  uint64_t watchdog_ns_ = 500000000;  // report a task that runs longer without yielding
  int onerror_ref_ = LUA_NOREF;  // freed in shutdown()
  bool running_ = false;
  bool closing_ = false;
  bool warned_blocking_ = false;
  bool use_map_ = false;  // the embedder uses LUA_EXTRASPACE itself: find tasks by map instead
  std::unordered_map<lua_State*, void*> task_map_;
  std::unordered_map<int, SignalWatch*> signals_;  // freed in shutdown()
  socket::BufferPool pool_;
  char scratch_[kScratchSize];
  friend class FdWatch;
  friend class Job;
  friend struct Task;
};

}  // namespace uvs::loop
