// runtime.cpp: see runtime.hpp. Layer: loop.
#include "loop/runtime.hpp"

#include <cmath>
#include <cstdio>
#include <new>

namespace uvs::loop {

namespace {

constexpr const char* kRuntimeClass = "uvsocket.runtime";

Task** extraspace_slot(lua_State* co) { return static_cast<Task**>(lua_getextraspace(co)); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Runtime: creation and shutdown

Runtime* Runtime::create(lua_State* L) {
  auto** box = static_cast<Runtime**>(lua_newuserdatauv(L, sizeof(Runtime*), 0));
  *box = nullptr;
  if (luaL_newmetatable(L, kRuntimeClass)) {
    lua_pushcfunction(L, on_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  auto* rt = new (std::nothrow) Runtime();  // freed in on_gc
  if (!rt) luaL_error(L, "socket.core: out of memory");
  if (uv_loop_init(&rt->loop_) != 0) {
    delete rt;
    luaL_error(L, "socket.core: cannot create the event loop");
  }
  rt->loop_.data = rt;
  uv_timer_init(&rt->loop_, &rt->tick_);  // closed in shutdown()
  rt->tick_.data = rt;
  uv_prepare_init(&rt->loop_, &rt->prepare_);  // closed in shutdown()
  rt->prepare_.data = rt;
  uv_prepare_start(&rt->prepare_, on_prepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(&rt->prepare_));
  // Tasks are found through their coroutine's extra space. New coroutines copy the main
  // thread's extra space, so this works as long as the embedder leaves it empty; if not, fall
  // back to a map.
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  rt->use_map_ = *extraspace_slot(lua_tothread(L, -1)) != nullptr;
  lua_pop(L, 1);
  *box = rt;
  return rt;
}

int Runtime::on_gc(lua_State* L) {
  auto** box = static_cast<Runtime**>(luaL_checkudata(L, 1, kRuntimeClass));
  Runtime* rt = *box;
  if (!rt) return 0;
  *box = nullptr;
  rt->shutdown();
  delete rt;  // allocated in create()
  return 0;
}

void Runtime::shutdown() {
  closing_ = true;
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (uv_is_closing(h)) return;
        if (h->type == UV_POLL) {
          static_cast<FdWatch*>(h->data)->close();
        } else {
          uv_close(h, nullptr);
        }
      },
      nullptr);
  // Close callbacks free the watchers; jobs still on the thread pool finish and free themselves.
  while (uv_loop_close(&loop_) == UV_EBUSY) uv_run(&loop_, UV_RUN_DEFAULT);
}

// ---------------------------------------------------------------------------------------------
// Tasks

Task* Runtime::task_of(lua_State* L) const {
  if (use_map_) {
    auto it = task_map_.find(L);
    return it == task_map_.end() ? nullptr : it->second;
  }
  Task* t = *extraspace_slot(L);
  return (t && t->co == L) ? t : nullptr;
}

Task* Runtime::spawn(lua_State* L, int fn, int nargs) {
  fn = lua_absindex(L, fn);
  lua_State* co = lua_newthread(L);                                       // fn args co
  auto* t = static_cast<Task*>(lua_newuserdatauv(L, sizeof(Task), 1));    // fn args co task
  new (t) Task();
  luaL_setmetatable(L, "async.task");
  lua_rotate(L, -2, 1);                                                   // fn args task co
  lua_setiuservalue(L, -2, 1);  // the handle anchors the coroutine       // fn args task
  lua_rotate(L, fn, 1);                                                   // task fn args
  lua_xmove(L, co, nargs + 1);                                            // task
  t->rt = this;
  t->co = co;
  t->nargs = nargs;
  t->id = next_id_++;
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);  // released in finish() or fail()
  if (use_map_) {
    task_map_[co] = t;
  } else {
    *extraspace_slot(co) = t;
  }
  live_tasks_++;
  push_ready(t);
  return t;
}

void Runtime::push_ready(Task* t) {
  t->next_ready = nullptr;
  if (ready_tail_) {
    ready_tail_->next_ready = t;
  } else {
    ready_head_ = t;
  }
  ready_tail_ = t;
}

void Runtime::suspend(Task* t, WaitSource* src, double timeout, bool external) {
  t->state = TaskState::kWaiting;
  t->wake = Wake::kNone;
  t->source = src;
  t->external = external || timeout >= 0.0;
  if (t->external) external_waits_++;
  if (timeout >= 0.0) {
    const double ns = std::ceil(timeout * 1e9);
    const uint64_t span = ns >= 1.8e19 ? UINT64_MAX / 2 : static_cast<uint64_t>(ns);
    timers_.push(t, uv_hrtime() + span);
  }
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

Job* Runtime::take_job(Task* t) {
  auto* j = static_cast<Job*>(t->pending);
  t->pending = nullptr;
  return j;
}

// ---------------------------------------------------------------------------------------------
// The scheduler

void Runtime::drain_ready(lua_State* L) {
  // Run the tasks that are ready now; tasks made ready meanwhile wait for the next round, after
  // the loop had a chance to poll, so that a task that keeps yielding cannot starve I/O.
  Task* t = ready_head_;
  ready_head_ = ready_tail_ = nullptr;
  while (t) {
    Task* next = t->next_ready;
    t->next_ready = nullptr;
    resume(L, t);
    t = next;
  }
}

void Runtime::resume(lua_State* L, Task* t) {
  t->state = TaskState::kRunning;
  const int nargs = t->nargs;
  t->nargs = 0;
  int nres = 0;
  const int status = lua_resume(t->co, L, nargs, &nres);
  if (status == LUA_YIELD) {
    lua_pop(t->co, nres);
    if (t->state == TaskState::kRunning) {
      // A plain coroutine.yield() from the task's code: let the others run, then continue.
      t->state = TaskState::kReady;
      t->wake = Wake::kReady;
      push_ready(t);
    }
  } else if (status == LUA_OK) {
    finish(L, t, nres);
  } else {
    fail(L, t, status);
  }
}

void Runtime::finish(lua_State* L, Task* t, int nres) {
  t->state = TaskState::kDone;
  t->nresults = nres;
  if (use_map_) {
    task_map_.erase(t->co);
  } else {
    *extraspace_slot(t->co) = nullptr;
  }
  live_tasks_--;
  luaL_unref(L, LUA_REGISTRYINDEX, t->ref);  // taken in spawn()
  t->ref = LUA_NOREF;
}

void Runtime::fail(lua_State* L, Task* t, int status) {
  (void)status;
  lua_State* co = t->co;
  const int top = lua_gettop(L);
  // Take the traceback before the coroutine is closed; it names the task's own frames.
  const char* msg = lua_tostring(co, -1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
  luaL_traceback(L, co, msg, 0);  // the traceback, on L
  // Closing runs the task's pending to-be-closed variables; the error object stays on top.
  lua::close_thread(co, L);
  finish(L, t, 1);
  t->state = TaskState::kFailed;
  if (t->is_main) {
    // run() raises main's error; a string error carries the task's traceback with it.
    if (lua_type(co, -1) == LUA_TSTRING) {
      lua_pop(co, 1);
      lua_xmove(L, co, 1);
    }
  } else {
    std::fprintf(stderr, "socket.async: task %llu failed: %s\n",
                 static_cast<unsigned long long>(t->id), lua_tostring(L, -1));
    std::fflush(stderr);
  }
  lua_settop(L, top);
}

void Runtime::expire_timers() {
  if (timers_.empty()) return;
  const uint64_t now = uv_hrtime();
  while (HeapNode* n = timers_.top()) {
    if (n->due > now) break;
    timers_.pop();
    wake(static_cast<Task*>(n), Wake::kTimeout);
  }
}

void Runtime::on_prepare(uv_prepare_t* h) {
  auto* rt = static_cast<Runtime*>(h->data);
  HeapNode* n = rt->timers_.top();
  if (!n) {
    uv_timer_stop(&rt->tick_);
    return;
  }
  const uint64_t now = uv_hrtime();
  const uint64_t ms = n->due > now ? (n->due - now + 999999) / 1000000 : 0;
  // The timer only ends the poll; expire_timers() decides on the monotonic clock what is due.
  uv_timer_start(&rt->tick_, [](uv_timer_t*) {}, ms, 0);
}

int Runtime::run(lua_State* L) {
  if (running_) return luaL_error(L, "socket.async.run: the scheduler is already running");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  Task* main = spawn(L, 1, lua_gettop(L) - 1);  // the handle stays on L's stack during the run
  main->is_main = true;
  running_ = true;
  bool deadlock = false;
  for (;;) {
    drain_ready(L);
    if (main->state == TaskState::kFailed) break;
    if (main->state == TaskState::kDone && live_tasks_ == 0) break;
    if (ready_head_) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      expire_timers();
      continue;
    }
    if (external_waits_ == 0) {
      deadlock = true;
      break;
    }
    uv_run(&loop_, UV_RUN_ONCE);
    expire_timers();
  }
  running_ = false;
  if (main->state == TaskState::kFailed) {
    lua_xmove(main->co, L, 1);
    return lua_error(L);
  }
  if (deadlock) {
    if (main->state != TaskState::kDone) {
      return luaL_error(L,
                        "socket.async.run: deadlock: %d task(s), main among them, wait for "
                        "each other and nothing else can wake them",
                        static_cast<int>(live_tasks_));
    }
    std::fprintf(stderr,
                 "socket.async.run: %d task(s) wait for each other and nothing else can wake "
                 "them; returning\n",
                 static_cast<int>(live_tasks_));
  }
  const int n = main->nresults;
  lua_xmove(main->co, L, n);
  main->nresults = 0;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Jobs on the thread pool

bool Job::start(Runtime* rt, Task* t) {
  req_.data = this;
  task_ = t;
  if (uv_queue_work(rt->loop(), &req_, on_work, on_after) != 0) {
    task_ = nullptr;
    return false;
  }
  t->pending = this;
  rt->suspend(t, this, -1.0, true);
  return true;
}

void Job::on_work(uv_work_t* req) { static_cast<Job*>(req->data)->work(); }

void Job::on_after(uv_work_t* req, int status) {
  (void)status;
  auto* j = static_cast<Job*>(req->data);
  auto* rt = static_cast<Runtime*>(req->loop->data);
  if (j->orphan_ || rt->closing_) {
    delete j;  // allocated by the caller of start()
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

// ---------------------------------------------------------------------------------------------
// Descriptor watchers

FdWatch* FdWatch::open(Runtime* rt, int fd) {
  auto* w = new (std::nothrow) FdWatch();  // freed in on_close
  if (!w) return nullptr;
  if (uv_poll_init_socket(rt->loop(), &w->handle_, fd) != 0) {
    delete w;
    return nullptr;
  }
  w->handle_.data = w;
  w->rt_ = rt;
  w->fd_ = fd;
  rt->watchers_++;
  return w;
}

void FdWatch::close() {
  // wake() detaches each waiter from this watcher before making it ready.
  if (reader_) rt_->wake(reader_, Wake::kClosed);
  if (writer_) rt_->wake(writer_, Wake::kClosed);
  reader_ = writer_ = nullptr;
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&handle_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_), on_close);
  }
}

void FdWatch::on_close(uv_handle_t* h) {
  auto* w = static_cast<FdWatch*>(h->data);
  w->rt_->watchers_--;
  delete w;  // allocated in open()
}

void FdWatch::arm(int mask) {
  if (mask == armed_) return;
  if (mask == 0) {
    uv_poll_stop(&handle_);
  } else if (uv_poll_start(&handle_, mask, on_poll) != 0) {
    mask = 0;
  }
  armed_ = mask;
  if (!(mask & kRead)) readable_ = true;  // unknown once nobody watches
}

bool FdWatch::add_waiter(Task* t, int dir) {
  Task*& slot = dir == kRead ? reader_ : writer_;
  if (slot && slot != t) return false;
  slot = t;
  arm(armed_ | dir);
  return true;
}

void FdWatch::detach(Task* t) {
  // Interest stays armed; the next readiness report without a waiter disarms it.
  if (reader_ == t) reader_ = nullptr;
  if (writer_ == t) writer_ = nullptr;
}

void FdWatch::on_poll(uv_poll_t* h, int status, int events) {
  auto* w = static_cast<FdWatch*>(h->data);
  int mask = w->armed_;
  if (status < 0) {
    // libuv stopped the handle (POLLERR): wake everybody, the retried call reports the error.
    events = kRead | kWrite;
    w->armed_ = mask = 0;
  }
  if (events & kRead) {
    w->readable_ = true;
    if (w->reader_) {
      w->rt_->wake(w->reader_, Wake::kReady);  // detaches it from both directions
    } else {
      mask &= ~kRead;  // nobody reads: stop, or level-triggered polling would spin
    }
  }
  if (events & kWrite) {
    if (w->writer_) w->rt_->wake(w->writer_, Wake::kReady);
    mask &= ~kWrite;  // sockets are nearly always writable: watch only while a writer waits
  }
  w->arm(mask);
}

}  // namespace uvs::loop
