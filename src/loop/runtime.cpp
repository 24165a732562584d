// runtime.cpp: see runtime.hpp. Layer: loop.
#include "loop/runtime.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <new>

namespace uvs::loop {

namespace {

constexpr const char* kRuntimeClass = "uvsocket.runtime";

void** extraspace_slot(lua_State* co) { return static_cast<void**>(lua_getextraspace(co)); }

// A user coroutine run by the runtime's coroutine.resume on behalf of a task carries the task's
// pointer with its low bit set; a task's own coroutine carries it plain.
void* tag(Task* t) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(t) | 1u); }
bool tagged(void* p) { return (reinterpret_cast<uintptr_t>(p) & 1u) != 0; }
Task* untag(void* p) {
  return reinterpret_cast<Task*>(reinterpret_cast<uintptr_t>(p) & ~static_cast<uintptr_t>(1));
}

const char kPassthrough = 0;  // its address is the pass-through marker

// Set once any runtime in the process finds the main thread's extra space in use (or not
// zeroed: Lua does not initialise it) and so keeps tasks in a map: the extra space of a thread
// may then hold anything, and must not be read as a task pointer without the runtime's say.
std::atomic<bool> g_extraspace_untrusted{false};

// A cheap monotonic clock (no system call, a few milliseconds of resolution) for the watchdog,
// which times every resume.
uint64_t coarse_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

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
  if (rt->use_map_) g_extraspace_untrusted = true;
  rt->onerror_ref_ = LUA_NOREF;
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
        } else if (h->type == UV_SIGNAL) {
          uv_close(h, nullptr);  // the SignalWatch around it is freed below
        } else {
          uv_close(h, nullptr);
        }
      },
      nullptr);
  // Close callbacks free the watchers; jobs still on the thread pool finish and free themselves.
  while (uv_loop_close(&loop_) == UV_EBUSY) uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& entry : signals_) delete entry.second;  // allocated in signal_watch()
  signals_.clear();
}

// ---------------------------------------------------------------------------------------------
// Tasks

Task* Runtime::task_of(lua_State* L) const {
  void* x = nullptr;
  if (use_map_) {
    auto it = task_map_.find(L);
    if (it != task_map_.end()) x = it->second;
  } else {
    x = *extraspace_slot(L);
  }
  if (!x) return nullptr;
  if (tagged(x)) return untag(x);  // valid while marked: the marking resume is on the stack
  Task* t = static_cast<Task*>(x);
  return t->co == L ? t : nullptr;
}

Task* Runtime::yieldable_task(lua_State* L) const {
  if (!lua_isyieldable(L)) return nullptr;
  Task* t = task_of(L);
  if (!t) return nullptr;
  // A user coroutine can pass a wait up only while its task is the one running.
  if (t->co != L && t != current_) return nullptr;
  return t;
}

void* Runtime::passthrough_marker() { return const_cast<char*>(&kPassthrough); }

int Runtime::yield(lua_State* L, lua_KContext ctx, lua_KFunction k) {
  // Called right after suspend(); the task the wait belongs to is task_of(L). The common case,
  // a task's own coroutine, is read straight from the extra space.
  if (!g_extraspace_untrusted.load(std::memory_order_relaxed)) {
    void* x = *extraspace_slot(L);
    if (x && !tagged(x) && static_cast<Task*>(x)->co == L) return lua_yieldk(L, 0, ctx, k);
  }
  Task* t = Runtime::of(L)->task_of(L);
  if (t && t->co != L) {
    lua_pushlightuserdata(L, passthrough_marker());
    return lua_yieldk(L, 1, ctx, k);
  }
  return lua_yieldk(L, 0, ctx, k);
}

void* Runtime::mark_proxy(lua_State* co, Task* t) {
  void* previous = nullptr;
  if (use_map_) {
    auto it = task_map_.find(co);
    if (it != task_map_.end()) previous = it->second;
    if (t) {
      task_map_[co] = tag(t);
    } else {
      task_map_.erase(co);
    }
  } else {
    previous = *extraspace_slot(co);
    *extraspace_slot(co) = t ? tag(t) : nullptr;
  }
  return previous;
}

void Runtime::unmark_proxy(lua_State* co, void* previous) {
  if (use_map_) {
    if (previous) {
      task_map_[co] = previous;
    } else {
      task_map_.erase(co);
    }
  } else {
    *extraspace_slot(co) = previous;
  }
}

void Runtime::warn_blocking(lua_State* L) {
  if (warned_blocking_ || !current_) return;
  warned_blocking_ = true;
  luaL_traceback(L, L,
                 "socket.async: a call that would wait was made where the task cannot yield (a "
                 "C boundary such as a table.sort comparator, a metamethod called from C, or the "
                 "main chunk of a required module); it blocked the whole thread instead. This is "
                 "reported once",
                 1);
  std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
  std::fflush(stderr);
  lua_pop(L, 1);
}

Task* Runtime::spawn(lua_State* L, int fn, int nargs) {
  fn = lua_absindex(L, fn);
  luaL_where(L, 1);  // where the task is spawned, for error reports        // fn args where
  lua_State* co = lua_newthread(L);                                       // fn args where co
  auto* t = static_cast<Task*>(lua_newuserdatauv(L, sizeof(Task), 4));    // ... where co task
  new (t) Task();
  luaL_setmetatable(L, "async.task");
  lua_rotate(L, -2, 1);                                                   // ... where task co
  lua_setiuservalue(L, -2, 1);  // the handle anchors the coroutine       // ... where task
  lua_rotate(L, -2, 1);                                                   // ... task where
  lua_setiuservalue(L, -2, 4);                                            // fn args task
  lua_rotate(L, fn, 1);                                                   // task fn args
  lua_xmove(L, co, nargs + 1);                                            // task
  t->co = co;
  t->nargs = nargs;
  t->id = next_id_++;
  // A task spawned inside a deadline scope works under that deadline too.
  if (Task* parent = task_of(L)) t->deadline = parent->deadline;
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);  // released in finish()
  if (use_map_) {
    task_map_[co] = t;
  } else {
    *extraspace_slot(co) = t;
  }
  t->live_next = live_head_;
  if (live_head_) live_head_->live_prev = t;
  live_head_ = t;
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

void Runtime::suspend(Task* t, WaitSource* src, double timeout, bool external, const char* what,
                      int fd) {
  t->state = TaskState::kWaiting;
  t->wake = Wake::kNone;
  t->source = src;
  t->clamped = false;
  t->wait_what = what;
  t->wait_fd = fd;
  t->wait_since = uv_now(&loop_);  // the loop's cached clock: no system call per wait
  t->external = false;
  if (t->cancelled) {
    // Cancellation is sticky: the wait ends at once, and the caller reports "cancelled".
    wake(t, Wake::kCancelled);
    return;
  }
  uint64_t span = 0;
  bool timed = false;
  const uint64_t now = (timeout >= 0.0 || t->deadline) ? uv_hrtime() : 0;
  if (timeout >= 0.0) {
    const double ns = std::ceil(timeout * 1e9);
    span = ns >= 1.8e19 ? UINT64_MAX / 2 : static_cast<uint64_t>(ns);
    timed = true;
  }
  if (t->deadline) {
    const uint64_t left = t->deadline > now ? t->deadline - now : 0;
    if (!timed || left < span) {
      span = left;
      timed = true;
      t->clamped = true;
    }
  }
  t->external = external || timed;
  if (t->external) external_waits_++;
  if (timed) timers_.push(t, now + span);
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

void Runtime::park(Task* t, double timeout) { suspend(t, &parking_, timeout, false, "wait"); }

bool Runtime::unpark(Task* t) {
  if (t->state != TaskState::kWaiting || t->source != &parking_) return false;
  wake(t, Wake::kReady);
  return true;
}

bool Runtime::cancel(Task* t) {
  if (t->state == TaskState::kDone || t->state == TaskState::kFailed) return false;
  t->cancelled = true;
  if (t->state == TaskState::kWaiting) wake(t, Wake::kCancelled);
  return true;
}

void Runtime::join(Task* t, Task* joiner, double timeout) {
  joiner->next_joiner = t->joiners;
  t->joiners = joiner;
  suspend(joiner, t, timeout, false, "join");
}

SignalWatch* Runtime::signal_watch(int signum) {
  auto it = signals_.find(signum);
  if (it != signals_.end()) return it->second;
  auto* w = new (std::nothrow) SignalWatch(this, signum);  // freed in shutdown()
  if (!w) return nullptr;
  if (uv_signal_init(&loop_, &w->handle_) != 0) {
    delete w;
    return nullptr;
  }
  w->handle_.data = w;
  signals_[signum] = w;
  return w;
}

SignalWatch::SignalWatch(Runtime* rt, int signum) : rt_(rt), signum_(signum) {}

bool SignalWatch::add_waiter(Task* t, double timeout) {
  if (!active_) {
    if (uv_signal_start(&handle_, on_signal, signum_) != 0) return false;
    active_ = true;
  }
  waiters_.push_back(t);
  rt_->suspend(t, this, timeout, true, "signal");
  return true;
}

void SignalWatch::detach(Task* t) {
  for (size_t i = 0; i < waiters_.size(); i++) {
    if (waiters_[i] == t) {
      waiters_.erase(waiters_.begin() + static_cast<long>(i));
      break;
    }
  }
  if (waiters_.empty() && active_) {
    uv_signal_stop(&handle_);  // the default action is back
    active_ = false;
  }
}

void SignalWatch::on_signal(uv_signal_t* h, int signum) {
  (void)signum;
  auto* w = static_cast<SignalWatch*>(h->data);
  std::vector<Task*> woken;
  woken.swap(w->waiters_);
  for (Task* t : woken) {
    t->source = nullptr;
    w->rt_->wake(t, Wake::kReady);
  }
  if (w->waiters_.empty() && w->active_) {
    uv_signal_stop(&w->handle_);
    w->active_ = false;
  }
}

void Task::detach(Task* joiner) {
  for (Task** p = &joiners; *p; p = &(*p)->next_joiner) {
    if (*p == joiner) {
      *p = joiner->next_joiner;
      joiner->next_joiner = nullptr;
      return;
    }
  }
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
  current_ = t;
  const uint64_t start = coarse_ns();
  const int status = lua_resume(t->co, L, nargs, &nres);
  const uint64_t ran = coarse_ns() - start;
  current_ = nullptr;
  if (ran > max_lag_) max_lag_ = ran;
  if (watchdog_ns_ && ran > watchdog_ns_) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    lua_getiuservalue(L, -1, 3);
    lua_getiuservalue(L, -2, 4);
    std::fprintf(stderr,
                 "socket.async: task %llu%s%s%s (spawned at %s) ran %.3f s without yielding; "
                 "every other task waited meanwhile\n",
                 static_cast<unsigned long long>(t->id), lua_isstring(L, -2) ? " '" : "",
                 lua_isstring(L, -2) ? lua_tostring(L, -2) : "", lua_isstring(L, -2) ? "'" : "",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", static_cast<double>(ran) * 1e-9);
    std::fflush(stderr);
    lua_pop(L, 3);
  }
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
  if (t->live_prev) {
    t->live_prev->live_next = t->live_next;
  } else {
    live_head_ = t->live_next;
  }
  if (t->live_next) t->live_next->live_prev = t->live_prev;
  t->live_prev = t->live_next = nullptr;
  live_tasks_--;
  while (Task* j = t->joiners) {
    t->joiners = j->next_joiner;
    j->next_joiner = nullptr;
    if (j->source == t) j->source = nullptr;
    wake(j, Wake::kReady);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, t->ref);  // taken in spawn()
  t->ref = LUA_NOREF;
}

void Runtime::report(lua_State* L, Task* t, int traceback) {
  // The handler set with async.onerror gets (task, error, traceback); the default writes to
  // stderr. A failing handler falls back to the default.
  if (onerror_ref_ != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, onerror_ref_);
    push_task(L, t);
    lua_pushvalue(t->co, -1);
    lua_xmove(t->co, L, 1);
    lua_pushvalue(L, traceback);
    if (lua_pcall(L, 3, 0, 0) == LUA_OK) return;
    std::fprintf(stderr, "socket.async: the error handler failed: %s\n",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
    lua_pop(L, 1);
  }
  push_task(L, t);
  lua_getiuservalue(L, -1, 3);
  lua_getiuservalue(L, -2, 4);
  std::fprintf(stderr, "socket.async: task %llu%s%s%s (spawned at %s) failed: %s\n",
               static_cast<unsigned long long>(t->id), lua_isstring(L, -2) ? " '" : "",
               lua_isstring(L, -2) ? lua_tostring(L, -2) : "", lua_isstring(L, -2) ? "'" : "",
               lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", lua_tostring(L, traceback));
  std::fflush(stderr);
  lua_pop(L, 3);
}

void Runtime::fail(lua_State* L, Task* t, int status) {
  (void)status;
  lua_State* co = t->co;
  const int top = lua_gettop(L);
  // Take the traceback before the coroutine is closed; it names the task's own frames.
  const char* msg = lua_tostring(co, -1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
  luaL_traceback(L, co, msg, 0);  // the traceback, on L
  const int traceback = lua_gettop(L);
  // Closing runs the task's pending to-be-closed variables; the error object stays on top.
  lua::close_thread(co, L);
  if (t->is_main) {
    // run() raises main's error; a string error carries the task's traceback with it.
    if (lua_type(co, -1) == LUA_TSTRING) {
      lua_pop(co, 1);
      lua_pushvalue(L, traceback);
      lua_xmove(L, co, 1);
    }
  } else {
    report(L, t, traceback);
  }
  finish(L, t, 1);
  t->state = TaskState::kFailed;
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

void Runtime::arm_tick() {
  HeapNode* n = timers_.top();
  if (!n) {
    uv_timer_stop(&tick_);
    return;
  }
  const uint64_t now = uv_hrtime();
  const uint64_t ms = n->due > now ? (n->due - now + 999999) / 1000000 : 0;
  // The timer only ends the poll; expire_timers() decides on the monotonic clock what is due.
  uv_timer_start(&tick_, [](uv_timer_t*) {}, ms, 0);
}

void Runtime::on_prepare(uv_prepare_t* h) { static_cast<Runtime*>(h->data)->arm_tick(); }

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
      iteration_++;
      uv_run(&loop_, UV_RUN_NOWAIT);
      expire_timers();
      continue;
    }
    if (external_waits_ == 0) {
      deadlock = true;
      break;
    }
    arm_tick();
    iteration_++;
    const uint64_t before = uv_hrtime();
    uv_run(&loop_, UV_RUN_ONCE);
    idle_ns_ += uv_hrtime() - before;
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
  rt->suspend(t, this, -1.0, true, "lookup");
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
  if (reader_ == t) {
    reader_ = nullptr;
    prefetch_ = nullptr;
  }
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
      if (w->prefetch_ && status >= 0) w->prefetch_(w->rt_, w->prefetch_ctx_);
      w->rt_->wake(w->reader_, Wake::kReady);  // detaches it from both directions
      w->woke_in_ = w->rt_->iteration();
    } else if (w->woke_in_ != w->rt_->iteration()) {
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
