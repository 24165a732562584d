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
// handle's user value anchors the coroutine. While the task is alive the runtime holds a
// registry reference to the handle, so libuv-side pointers to the Task stay valid.
struct Task : HeapNode {
  Runtime* rt = nullptr;
  lua_State* co = nullptr;  // the task's coroutine
  int ref = LUA_NOREF;      // registry ref to the handle; released in Runtime::finish
  TaskState state = TaskState::kReady;
  Wake wake = Wake::kNone;
  bool external = false;     // waiting on something outside Lua (I/O, clock, lookup)
  bool is_main = false;
  int nargs = 0;             // values to pass to the first resume
  int nresults = 0;          // values left on `co` when done (results or the error object)
  Task* next_ready = nullptr;
  WaitSource* source = nullptr;
  void* pending = nullptr;  // an operation object owned by the wait (e.g. a lookup job)
  uint64_t id = 0;
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

  [[nodiscard]] static FdWatch* open(Runtime* rt, int fd);
  // Wakes any waiter with Wake::kClosed and releases the handle (freed in on_close).
  void close();
  // Makes `t` wait until the descriptor is ready in direction `dir`. Returns false if another
  // task already waits in that direction.
  [[nodiscard]] bool add_waiter(Task* t, int dir);
  void detach(Task* t) override;
  // False only while the descriptor is watched for reading and nothing arrived since the last
  // read came back short: a receive can then wait at once instead of calling recv() in vain.
  [[nodiscard]] bool maybe_readable() const { return readable_ || !(armed_ & kRead); }
  void drained() { readable_ = false; }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] bool has_waiter(int dir) const { return dir == kRead ? reader_ : writer_; }

 private:
  FdWatch() = default;
  static void on_poll(uv_poll_t* h, int status, int events);
  static void on_close(uv_handle_t* h);
  void arm(int mask);
  uv_poll_t handle_{};
  Runtime* rt_ = nullptr;
  Task* reader_ = nullptr;
  Task* writer_ = nullptr;
  int fd_ = -1;
  int armed_ = 0;
  bool readable_ = true;
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
  [[nodiscard]] bool running() const { return running_; }
  [[nodiscard]] bool closing() const { return closing_; }

  // Monotonic clock in seconds, for deadlines.
  [[nodiscard]] static double now() { return static_cast<double>(uv_hrtime()) * 1e-9; }

  // The task whose coroutine is `L`, or nullptr (the main thread, a user coroutine).
  [[nodiscard]] Task* task_of(lua_State* L) const;
  // The task of `L` if that coroutine can yield to the scheduler right now, else nullptr.
  [[nodiscard]] Task* yieldable_task(lua_State* L) const {
    Task* t = task_of(L);
    return (t && lua_isyieldable(L)) ? t : nullptr;
  }

  // spawn: the function at `fn` and the `nargs` values above it become a new task; pops them
  // and pushes the task's handle.
  Task* spawn(lua_State* L, int fn, int nargs);

  // Runs the scheduler until the main task (function at index 1 of L, arguments above it) and
  // every other task finished. Returns the number of main's results pushed on L, or raises
  // main's error.
  int run(lua_State* L);

  // --- waiting (called by the C function a task is running) ---
  // Marks `t` as waiting on `src` (may be null: only the clock or another task can wake it)
  // until `timeout` seconds passed (negative: no limit). `external` says whether something
  // outside Lua (I/O, the clock, the thread pool) will wake it.
  void suspend(Task* t, WaitSource* src, double timeout, bool external);
  // Makes a waiting task ready with the given reason; harmless if it does not wait.
  void wake(Task* t, Wake why);
  // Collects the job a task waited on, or nullptr if the wait ended another way (the job was
  // then orphaned and frees itself).
  Job* take_job(Task* t);

  [[nodiscard]] size_t live_tasks() const { return live_tasks_; }
  [[nodiscard]] size_t live_watchers() const { return watchers_; }
  [[nodiscard]] size_t pending_timers() const { return timers_.size(); }
  // Lets libuv finish closing handles when no run() is in progress (tests, after close()).
  void flush_closing() {
    if (!running_) uv_run(&loop_, UV_RUN_NOWAIT);
  }

 private:
  Runtime() = default;
  static int on_gc(lua_State* L);
  void shutdown();
  void push_ready(Task* t);
  void drain_ready(lua_State* L);
  void resume(lua_State* L, Task* t);
  void finish(lua_State* L, Task* t, int nres);
  void fail(lua_State* L, Task* t, int status);
  void expire_timers();
  static void on_prepare(uv_prepare_t* h);

  uv_loop_t loop_{};
  // The earliest task deadline is handed to libuv by `tick_`, (re)armed from `prepare_` on
  // every loop iteration, right before libuv computes how long to poll: arming it any earlier
  // could let the timer fire at the start of uv_run and leave the poll without a timeout.
  uv_timer_t tick_{};
  uv_prepare_t prepare_{};
  TimerHeap timers_;
  Task* ready_head_ = nullptr;
  Task* ready_tail_ = nullptr;
  size_t live_tasks_ = 0;
  size_t external_waits_ = 0;
  size_t watchers_ = 0;  // FdWatch objects not yet freed
  uint64_t next_id_ = 1;
  bool running_ = false;
  bool closing_ = false;
  bool use_map_ = false;  // the embedder uses LUA_EXTRASPACE itself: find tasks by map instead
  std::unordered_map<lua_State*, Task*> task_map_;
  socket::BufferPool pool_;
  friend class FdWatch;
  friend class Job;
};

}  // namespace uvs::loop
