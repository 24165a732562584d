// job.hpp: work that runs on libuv's thread pool while a task waits (name lookups).
// Layer: loop (uv.h; nothing from src/socket/).
//
// In a task, wait() queues the job and the task waits for it; anywhere else the same work()
// runs on the calling thread. The waiting task owns the job and collects it once woken
// (take_job). If the task stops waiting first (cancelled, timed out by a deadline scope, its
// object closed), the job is orphaned: uv_cancel is tried, and the job deletes itself in its
// after-work callback, so nothing leaks and nobody waits for it.
#pragma once

#include <uv.h>

#include "loop/task.hpp"
#include "loop/wait.hpp"

namespace uvs::loop {

class Runtime;

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
  static void on_work(uv_work_t* req);
  static void on_after(uv_work_t* req, int status);
  uv_work_t req_{};
  Task* task_ = nullptr;
  bool orphan_ = false;
};

// After a wait on a job ended with kReady: the finished job, now the caller's to delete.
// nullptr if the wait ended another way (the job was orphaned and frees itself).
[[nodiscard]] Job* take_job(Task* t);

}  // namespace uvs::loop
