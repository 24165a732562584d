// job.cpp: see job.hpp. Layer: loop.
//
// One pool per process: a queue of jobs under one mutex, and up to kMaxThreads detached
// threads that start as work arrives and then wait for more. A job belongs to the runtime of the
// task that queued it; every change of its state, and every touch of a runtime by a pool
// thread, happens under the pool's mutex.
#include "loop/job.hpp"

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <new>

#include "loop/runtime.hpp"

namespace uvs::loop {

namespace {

constexpr int kMaxThreads = 16;

struct Pool {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
  Job* head = nullptr;  // queued jobs, oldest first
  Job* tail = nullptr;
  int threads = 0;
  int idle = 0;
  bool atfork = false;
};

Pool g_pool;

// In a forked child only the forking thread exists: the pool starts empty there (the parent's
// queued jobs belong to the parent's runtimes).
void reset_after_fork() {
  new (&g_pool.mu) pthread_mutex_t(PTHREAD_MUTEX_INITIALIZER);
  new (&g_pool.cv) pthread_cond_t(PTHREAD_COND_INITIALIZER);
  g_pool.head = g_pool.tail = nullptr;
  g_pool.threads = g_pool.idle = 0;
}

// Pool threads outlive the Lua state (they are detached and may sit in the resolver), but Lua
// unloads the module when the state closes: the threads would then run, or wake in, unmapped
// code and data. Once a thread exists the module is pinned (RTLD_NODELETE) for the process's
// life.
void pin_module() {
  static bool pinned = false;
  if (pinned) return;
  pinned = true;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&pin_module), &info) && info.dli_fname) {
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

class Lock {
 public:
  Lock() { pthread_mutex_lock(&g_pool.mu); }
  ~Lock() { pthread_mutex_unlock(&g_pool.mu); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
};

}  // namespace

// The pool's thread body and queue handling, with access to the jobs' private state.
class JobPool {
 public:
  static void* run(void*) {
    pthread_mutex_lock(&g_pool.mu);
    for (;;) {
      while (!g_pool.head) {
        g_pool.idle++;
        pthread_cond_wait(&g_pool.cv, &g_pool.mu);
        g_pool.idle--;
      }
      Job* j = g_pool.head;
      g_pool.head = j->next_;
      if (!g_pool.head) g_pool.tail = nullptr;
      j->next_ = nullptr;
      j->state_ = Job::State::kRunning;
      j->rt_->jobs()->link_running(j);
      pthread_mutex_unlock(&g_pool.mu);
      j->work();
      pthread_mutex_lock(&g_pool.mu);
      finished(j);
    }
    return nullptr;
  }

  // Under the lock: hands a finished job back to its runtime, or frees an orphan.
  static void finished(Job* j) {
    if (j->rt_) j->rt_->jobs()->unlink_running(j);
    if (j->state_ == Job::State::kOrphan) {
      if (j->rt_) j->rt_->jobs()->live_--;
      delete j;  // allocated by the caller of wait()
      return;
    }
    JobQueue* q = j->rt_->jobs();
    j->state_ = Job::State::kDone;
    j->next_ = q->done_;
    q->done_ = j;
    uv_async_send(&q->async_);  // under the lock: the runtime cannot be closing it meanwhile
  }

  // Under the lock: queues a job, starting a thread if none is free.
  static bool queue(Job* j) {
    if (!g_pool.atfork) {
      if (pthread_atfork(nullptr, nullptr, reset_after_fork) != 0) return false;
      g_pool.atfork = true;
    }
    if (g_pool.idle == 0 && g_pool.threads < kMaxThreads) {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_t id;
      const int err = pthread_create(&id, &attr, run, nullptr);
      pthread_attr_destroy(&attr);
      if (err == 0) {
        pin_module();
        g_pool.threads++;
      } else if (g_pool.threads == 0) {
        return false;  // no thread at all: the caller gets the error
      }
    }
    j->next_ = nullptr;
    if (g_pool.tail) {
      g_pool.tail->next_ = j;
    } else {
      g_pool.head = j;
    }
    g_pool.tail = j;
    j->state_ = Job::State::kQueued;
    pthread_cond_signal(&g_pool.cv);
    return true;
  }

  // Under the lock: takes a queued job out of the queue.
  static void unqueue(Job* j) {
    Job* prev = nullptr;
    for (Job* p = g_pool.head; p; prev = p, p = p->next_) {
      if (p != j) continue;
      if (prev) {
        prev->next_ = p->next_;
      } else {
        g_pool.head = p->next_;
      }
      if (g_pool.tail == p) g_pool.tail = prev;
      p->next_ = nullptr;
      return;
    }
  }

  // Under the lock: takes a finished job out of its runtime's list.
  static void undone(JobQueue* q, Job* j) {
    for (Job** p = &q->done_; *p; p = &(*p)->next_) {
      if (*p == j) {
        *p = j->next_;
        j->next_ = nullptr;
        return;
      }
    }
  }
};

bool Job::attach(Runtime* rt, Task* t, WaitSource** src) {
  Lock lock;
  rt_ = rt;
  task_ = t;
  if (!JobPool::queue(this)) {
    rt_ = nullptr;
    task_ = nullptr;
    return false;
  }
  rt->jobs()->live_++;
  t->pending = this;
  *src = this;
  return true;
}

Wake Job::block(double timeout) {
  (void)timeout;  // a lookup is not bounded by socket timeouts, as in LuaSocket
  work();
  return Wake::kReady;
}

void Job::detach(Task* t) {
  // The task stopped waiting (cancelled, closed): a queued job is dropped, a running one is
  // freed by its thread when its work ends, a finished one is dropped.
  t->pending = nullptr;
  task_ = nullptr;
  Runtime* rt = rt_;
  bool drop = false;
  {
    Lock lock;
    switch (state_) {
      case State::kQueued:
        JobPool::unqueue(this);
        drop = true;
        break;
      case State::kDone:
        JobPool::undone(rt->jobs(), this);
        drop = true;
        break;
      default:
        state_ = State::kOrphan;
        break;
    }
    if (drop) rt->jobs()->live_--;
  }
  if (drop) delete this;  // allocated by the caller of wait()
}

Job* take_job(Task* t) {
  if (!t) return nullptr;
  Job* j = t->pending;
  t->pending = nullptr;
  if (j) j->rt_->jobs()->live_--;  // the caller owns it now
  return j;
}

void JobQueue::link_running(Job* j) {
  j->run_prev_ = nullptr;
  j->run_next_ = running_;
  if (running_) running_->run_prev_ = j;
  running_ = j;
}

void JobQueue::unlink_running(Job* j) {
  if (j->run_prev_) {
    j->run_prev_->run_next_ = j->run_next_;
  } else if (running_ == j) {
    running_ = j->run_next_;
  }
  if (j->run_next_) j->run_next_->run_prev_ = j->run_prev_;
  j->run_prev_ = j->run_next_ = nullptr;
}

bool JobQueue::init(Runtime* rt, uv_loop_t* loop) {
  rt_ = rt;
  if (uv_async_init(loop, &async_, on_done) != 0) return false;
  async_.data = this;
  // Left referenced: the loop must keep polling for it while a task waits for a lookup (the
  // scheduler polls only while some task waits for something outside Lua).
  return true;
}

void JobQueue::on_done(uv_async_t* h) {
  auto* q = static_cast<JobQueue*>(h->data);
  Job* list = nullptr;
  {
    Lock lock;
    list = q->done_;
    q->done_ = nullptr;
  }
  while (Job* j = list) {
    list = j->next_;
    j->next_ = nullptr;
    Task* t = j->task_;
    j->task_ = nullptr;
    t->source = nullptr;  // the job stays with the task, which collects it with take_job()
    q->rt_->wake(t, Wake::kReady);
  }
}

void JobQueue::close() {
  Job* dropped = nullptr;
  {
    Lock lock;
    // Jobs still queued or finished are this runtime's to free; running ones become orphans
    // that no longer know the runtime.
    for (Job* p = g_pool.head; p;) {
      Job* next = p->next_;
      if (p->rt_ == rt_) {
        JobPool::unqueue(p);
        p->next_ = dropped;
        dropped = p;
      }
      p = next;
    }
    while (Job* j = done_) {
      done_ = j->next_;
      j->next_ = dropped;
      dropped = j;
    }
    // Running jobs: their threads free them and no longer tell this runtime.
    for (Job* j = running_; j; j = j->run_next_) {
      j->state_ = Job::State::kOrphan;
      j->rt_ = nullptr;
      if (j->task_) j->task_->pending = nullptr;
      j->task_ = nullptr;
    }
    running_ = nullptr;
    live_ = 0;
  }
  while (Job* j = dropped) {
    dropped = j->next_;
    if (j->task_) j->task_->pending = nullptr;
    delete j;
  }
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  }
}

}  // namespace uvs::loop
