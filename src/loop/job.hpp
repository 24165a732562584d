// job.hpp: work that runs on a thread of the lookup pool while a task waits (name lookups).
// Layer: loop (uv.h; nothing from src/socket/).
//
// In a task, wait() queues the job and the task waits for it; anywhere else the same work()
// runs on the calling thread. The waiting task owns the job and collects it once woken
// (take_job). If the task stops waiting first (cancelled, timed out by a deadline scope, its
// object closed), the job is orphaned: one still queued is dropped at once, one running is
// freed by its thread when its work ends, so nothing leaks and nobody waits for it.
//
// The pool is the module's own, not libuv's: its threads are detached, so that leaving the
// program never waits for a lookup stuck in the resolver (libuv joins its pool's threads when
// the library unloads). A thread touches a runtime only under the pool's lock, and the runtime's
// shutdown orphans its jobs under that lock, so no thread can reach a runtime that is gone. After
// fork() the child starts with an empty pool.
#pragma once

#include <uv.h>

#include <atomic>

#include "loop/task.hpp"
#include "loop/wait.hpp"

namespace uvs::loop {

class Runtime;
class JobQueue;
class JobPool;

class Job : public WaitSource, public Waitable {
 public:
  Job() = default;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  virtual ~Job() = default;
  // Runs on a pool thread (or the calling thread in blocking mode): no Lua, no uv calls, and
  // no exception may leave it.
  virtual void work() noexcept = 0;

  bool attach(Runtime* rt, Task* t, WaitSource** src) override;
  Wake block(double timeout) override;
  void detach(Task* t) override;

 private:
  enum class State : uint8_t { kIdle, kQueued, kRunning, kDone, kOrphan };
  Runtime* rt_ = nullptr;  // null for an orphan whose runtime is gone
  Task* task_ = nullptr;
  Job* next_ = nullptr;      // in the pool's queue, then in the runtime's list of finished jobs
  Job* run_prev_ = nullptr;  // in the runtime's list of running jobs (orphans included)
  Job* run_next_ = nullptr;
  State state_ = State::kIdle;
  friend class JobQueue;
  friend class JobPool;
  friend Job* take_job(Task* t);
};

// The runtime's side of the pool: finished jobs come back to the loop through an async handle.
class JobQueue {
 public:
  // Initialises the async handle on `loop` (closed by close()).
  [[nodiscard]] bool init(Runtime* rt, uv_loop_t* loop);
  // The runtime is going away: its queued and finished jobs are dropped, its running ones
  // orphaned (their threads free them), and the async handle closed.
  void close();
  // Jobs queued, running or finished for this runtime and not collected yet.
  [[nodiscard]] long live() const { return live_.load(); }
  [[nodiscard]] const uv_handle_t* handle() const {
    return reinterpret_cast<const uv_handle_t*>(&async_);
  }

 private:
  static void on_done(uv_async_t* h);
  void link_running(Job* j);
  void unlink_running(Job* j);
  uv_async_t async_{};
  Runtime* rt_ = nullptr;
  Job* done_ = nullptr;     // finished, waiting for on_done (under the pool's lock)
  Job* running_ = nullptr;  // being worked on (under the pool's lock)
  std::atomic<long> live_{0};
  friend class Job;
  friend class JobPool;
  friend Job* take_job(Task* t);
};

// After a wait on a job ended with kReady: the finished job, now the caller's to delete.
// nullptr if the wait ended another way (the job was orphaned and frees itself).
[[nodiscard]] Job* take_job(Task* t);

}  // namespace uvs::loop
