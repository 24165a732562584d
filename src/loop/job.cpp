// job.cpp: see job.hpp. Layer: loop.
#include "loop/job.hpp"

#include "loop/runtime.hpp"

namespace uvs::loop {

bool Job::attach(Runtime* rt, Task* t, WaitSource** src) {
  req_.data = this;
  task_ = t;
  if (uv_queue_work(rt->loop(), &req_, on_work, on_after) != 0) {
    task_ = nullptr;
    return false;  // the work runs on the calling thread instead
  }
  rt->live_jobs()++;
  t->pending = this;
  *src = this;
  return true;
}

Wake Job::block(double timeout) {
  (void)timeout;  // a lookup is not bounded by socket timeouts, as in LuaSocket
  work();
  return Wake::kReady;
}

void Job::on_work(uv_work_t* req) { static_cast<Job*>(req->data)->work(); }

void Job::on_after(uv_work_t* req, int status) {
  (void)status;
  auto* j = static_cast<Job*>(req->data);
  auto* rt = static_cast<Runtime*>(req->loop->data);
  rt->live_jobs()--;
  if (j->orphan_ || rt->closing()) {
    if (j->task_) j->task_->pending = nullptr;
    delete j;  // allocated by the caller of wait()
    return;
  }
  Task* t = j->task_;
  j->task_ = nullptr;
  t->source = nullptr;  // the job stays with the task, which collects it with take_job()
  rt->wake(t, Wake::kReady);
}

void Job::detach(Task* t) {
  // The task stopped waiting (cancelled, closed): the job finishes alone and frees itself.
  orphan_ = true;
  task_ = nullptr;
  t->pending = nullptr;
  uv_cancel(reinterpret_cast<uv_req_t*>(&req_));
}

Job* take_job(Task* t) {
  if (!t) return nullptr;
  Job* j = t->pending;
  t->pending = nullptr;
  return j;
}

}  // namespace uvs::loop
