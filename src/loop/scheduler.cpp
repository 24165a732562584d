// scheduler.cpp: tasks and the scheduler: spawn, run, resume, finish, cancel, join, kill.
// Layer: loop. See runtime.hpp and docs/design.md ("The scheduler").
#include <cstdio>
#include <ctime>
#include <new>

#include "loop/job.hpp"
#include "loop/op_slot.hpp"
#include "loop/runtime.hpp"
#include "loop/signal.hpp"

namespace uvs::loop {

namespace {

// A cheap monotonic clock (no system call, a few milliseconds of resolution) for the watchdog,
// which times every resume.
uint64_t coarse_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The name and spawn site of a task, for reports: pushes both (name may be nil).
void push_identity(lua_State* L, Runtime* rt, Task* t) {
  rt->push_task(L, t);
  const int h = lua_gettop(L);
  push_task_detail(L, h, t, TaskDetail::kName);
  push_task_detail(L, h, t, TaskDetail::kSpawnedAt);
  lua_remove(L, h);
}

void describe_task(char* out, size_t size, lua_State* L, Task* t) {
  const bool named = lua_isstring(L, -2);
  std::snprintf(out, size, "task %llu%s%s%s (spawned at %s)",
                static_cast<unsigned long long>(t->id), named ? " '" : "",
                named ? lua_tostring(L, -2) : "", named ? "'" : "",
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
}

}  // namespace

void push_task_detail(lua_State* L, int idx, const Task* t, TaskDetail which) {
  if (which == TaskDetail::kName) {
    lua_getiuservalue(L, idx, 3);
    return;
  }
  lua_getiuservalue(L, idx, 2);
  if (t->detailed) {
    lua_rawgeti(L, -1, static_cast<int>(which));
    lua_remove(L, -2);
  } else if (which == TaskDetail::kReason) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

void set_task_detail(lua_State* L, int idx, Task* t, TaskDetail which) {
  idx = lua_absindex(L, idx);
  if (which == TaskDetail::kName) {
    lua_setiuservalue(L, idx, 3);
    return;
  }
  if (!t->detailed) {
    lua_createtable(L, 2, 0);
    lua_getiuservalue(L, idx, 2);
    lua_rawseti(L, -2, static_cast<int>(TaskDetail::kSpawnedAt));
    lua_setiuservalue(L, idx, 2);
    t->detailed = true;
  }
  lua_getiuservalue(L, idx, 2);  // value details
  lua_rotate(L, -2, 1);          // details value
  lua_rawseti(L, -2, static_cast<int>(which));
  lua_pop(L, 1);
}

Task* Runtime::spawn(lua_State* L, int fn, int nargs) {
  // Every live task may wait with a deadline at once: the heap has room for all of them, so
  // that a wait never allocates (an exception must not cross Lua's frames).
  if (!timers_.reserve(live_tasks_ + 1)) luaL_error(L, "not enough memory");
  fn = lua_absindex(L, fn);
  luaL_where(L, 1);  // where the task is spawned, for error reports        // fn args where
  lua_State* co = lua_newthread(L);                                     // fn args where co
  auto* t = static_cast<Task*>(lua_newuserdatauv(L, sizeof(Task), 3));  // ... where co task
  new (t) Task();
  luaL_setmetatable(L, "async.task");
  lua_rotate(L, -2, 1);         // ... where task co
  lua_setiuservalue(L, -2, 1);  // the handle anchors the coroutine       // ... where task
  lua_rotate(L, -2, 1);         // ... task where
  lua_setiuservalue(L, -2, 2);  // fn args task
  lua_rotate(L, fn, 1);         // task fn args
  lua_xmove(L, co, nargs + 1);  // task
  t->co = co;
  t->nargs = nargs;
  t->id = next_id_++;
  // A task spawned inside a deadline scope works under that deadline too.
  if (Task* parent = task_of(L)) t->deadline = parent->deadline;
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);  // released in finish()
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

void Runtime::unqueue_ready(Task* t) {
  Task* prev = nullptr;
  for (Task* p = ready_head_; p; prev = p, p = p->next_ready) {
    if (p != t) continue;
    if (prev) {
      prev->next_ready = p->next_ready;
    } else {
      ready_head_ = p->next_ready;
    }
    if (ready_tail_ == p) ready_tail_ = prev;
    p->next_ready = nullptr;
    return;
  }
}

bool Runtime::cancel(Task* t) {
  if (t->state == TaskState::kDone || t->state == TaskState::kFailed) return false;
  t->cancelled = true;
  if (t->state == TaskState::kWaiting) wake(t, Wake::kCancelled);
  return true;
}

void Runtime::add_joiner(Task* t, Task* joiner) {
  joiner->next_waiter = t->joiners;
  t->joiners = joiner;
}

void Task::detach(Task* joiner) {
  for (Task** p = &joiners; *p; p = &(*p)->next_waiter) {
    if (*p == joiner) {
      *p = joiner->next_waiter;
      joiner->next_waiter = nullptr;
      return;
    }
  }
}

Task* Runtime::task_with_coroutine(lua_State* co) const {
  for (Task* t = live_head_; t; t = t->live_next) {
    if (t->co == co) return t;
  }
  return nullptr;
}

int Runtime::kill(lua_State* L, Task* t, const char* why) {
  if (t->state == TaskState::kWaiting) wake(t, Wake::kClosed);  // detaches, orphans its job
  unqueue_ready(t);
  t->state = TaskState::kDone;  // nothing may wake or resume it from here on
  lua_State* co = t->co;
  const int status = lua::close_thread(co, L);  // runs its pending to-be-closed variables
  if (status != LUA_OK) lua_xmove(co, L, 1);    // their error, for coroutine.close
  lua_settop(co, 0);
  lua_pushstring(co, why);
  finish(L, t, 1);
  t->state = TaskState::kFailed;
  return status;
}

void Runtime::abandon_call(Task* t) {
  if (t->held) t->held->release_owner(this, t);
  delete take_job(t);  // a finished job nobody collected (allocated by its caller)
}

// ---------------------------------------------------------------------------------------------
// The scheduler

void Runtime::drain_ready(lua_State* L) {
  // Run the tasks that are ready now; tasks made ready meanwhile wait for the next round, after
  // the loop had a chance to poll, so that a task that keeps yielding cannot starve I/O.
  Task* t = ready_head_;
  if (t) worked_ = true;
  ready_head_ = ready_tail_ = nullptr;
  while (t) {
    Task* next = t->next_ready;
    t->next_ready = nullptr;
    resume(L, t);
    t = next;
  }
}

void Runtime::resume(lua_State* L, Task* t) {
  lua_State* co = t->co;
  if (t->doomed) {
    // Cancelled, and still waiting past its grace: ended here (see wait.hpp).
    const int top = lua_gettop(L);
    (void)kill(L, t, "cancelled");
    lua_settop(L, top);
    return;
  }
  // A task's coroutine is either fresh (its function on the stack) or suspended in a yield;
  // anything else means it was closed behind the runtime's back (a coroutine.close saved
  // before socket was loaded): end the task instead of resuming a dead coroutine.
  if (lua_status(co) != LUA_YIELD && (lua_status(co) != LUA_OK || lua_gettop(co) != t->nargs + 1)) {
    lua_settop(co, 0);
    lua_pushliteral(co, "coroutine closed");
    finish(L, t, 1);
    t->state = TaskState::kFailed;
    return;
  }
  t->state = TaskState::kRunning;
  const int nargs = t->nargs;
  t->nargs = 0;
  int nres = 0;
  current_ = t;
  const uint64_t start = coarse_ns();
  const int status = lua_resume(co, L, nargs, &nres);
  const uint64_t ran = coarse_ns() - start;
  current_ = nullptr;
  t->proxy = nullptr;
  if (ran > max_lag_) max_lag_ = ran;
  if (watchdog_ns_ && ran > watchdog_ns_) {
    char who[512];
    push_identity(L, this, t);
    describe_task(who, sizeof who, L, t);
    std::fprintf(stderr,
                 "socket.async: %s ran %.3f s without yielding; every other task waited "
                 "meanwhile\n",
                 who, static_cast<double>(ran) * 1e-9);
    std::fflush(stderr);
    lua_pop(L, 2);
  }
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
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
  // What a call left behind when its continuation never ran to its end (an error raised in
  // it, or a coroutine closed while it waited).
  abandon_call(t);
  if (t->live_prev) {
    t->live_prev->live_next = t->live_next;
  } else {
    live_head_ = t->live_next;
  }
  if (t->live_next) t->live_next->live_prev = t->live_prev;
  t->live_prev = t->live_next = nullptr;
  live_tasks_--;
  while (Task* j = t->joiners) {
    t->joiners = j->next_waiter;
    j->next_waiter = nullptr;
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
  char who[512];
  push_identity(L, this, t);
  describe_task(who, sizeof who, L, t);
  std::fprintf(stderr, "socket.async: %s failed: %s\n", who, lua_tostring(L, traceback));
  std::fflush(stderr);
  lua_pop(L, 2);
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
  uv_timer_start(
      &tick_, [](uv_timer_t*) {}, ms, 0);
}

void Runtime::on_prepare(uv_prepare_t* h) { static_cast<Runtime*>(h->data)->arm_tick(); }

void Runtime::start_idle(uint64_t ms) {
  idle_armed_ = true;
  idle_fired_ = false;
  // From now, not from the loop's cached time, which is as old as the tasks' run was long: the
  // timer would be due at once.
  uv_update_time(&loop_);
  uv_timer_start(
      &idle_,
      [](uv_timer_t* h) {
        auto* rt = static_cast<Runtime*>(h->data);
        rt->idle_armed_ = false;
        rt->idle_fired_ = true;
        // A timer that is due when uv_run starts runs before the poll, which would then wait
        // for I/O with no timeout: end this uv_run instead, so the scheduler sees the flag.
        uv_stop(&rt->loop_);
      },
      ms, 0);
}

void Runtime::arm_idle(lua_State* L) {
  // Armed only after tasks ran, so the loop sleeps undisturbed once the collection is done.
  if (!worked_ || idle_armed_) return;
  worked_ = false;
  const int kb = lua_gc(L, LUA_GCCOUNT);
  if (kb > idle_peak_kb_) idle_peak_kb_ = kb;
  start_idle(kIdleMs);
}

void Runtime::collect_idle(lua_State* L) {
  idle_fired_ = false;
  // Tasks that ran meanwhile, or are about to: not idle. The next wait arms the timer again.
  if (worked_ || ready_head_ || !lua_gc(L, LUA_GCISRUNNING)) return;
  const int kb = lua_gc(L, LUA_GCCOUNT);
  if (kb > idle_peak_kb_) idle_peak_kb_ = kb;
  if (idle_peak_kb_ < idle_floor_kb_ + kIdleGrowthKb) return;
  const uint64_t start = uv_hrtime();
  if (start < idle_not_before_) {
    start_idle((idle_not_before_ - start) / 1000000 + 1);
    return;
  }
  // A full collection also shrinks the stacks of waiting tasks (and their lists of call frames)
  // to what they use; finalizers run here as in any collection, outside uv_run.
  lua_gc(L, LUA_GCCOLLECT);
  // Freed blocks are scattered among live ones: glibc keeps their pages unless asked.
  heap_.trim(L, watchers_);
  const uint64_t end = uv_hrtime();
  idle_not_before_ = end + 9 * (end - start);
  idle_floor_kb_ = idle_peak_kb_ = lua_gc(L, LUA_GCCOUNT);
  idle_collections_++;
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
    arm_idle(L);
    if (heap_.idle(L, last_poll_ns_ >= HeapTrim::kQuietNs, watchers_)) {
      uv_timer_start(
          &trim_timer_, [](uv_timer_t*) {}, HeapTrim::kRecheckMs, 0);
    }
    iteration_++;
    const uint64_t before = uv_hrtime();
    uv_run(&loop_, UV_RUN_ONCE);
    last_poll_ns_ = uv_hrtime() - before;
    idle_ns_ += last_poll_ns_;
    expire_timers();
    if (idle_fired_) collect_idle(L);
  }
  running_ = false;
  uv_timer_stop(&idle_);
  idle_armed_ = idle_fired_ = false;
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

SignalWatch* Runtime::signal_watch(int signum) {
  if (signum <= 0 || signum >= kSignals) return nullptr;
  if (signals_[signum]) return signals_[signum];
  auto* w = new (std::nothrow) SignalWatch(this, signum);  // freed in shutdown()
  if (!w) return nullptr;
  if (!w->init(&loop_)) {
    delete w;
    return nullptr;
  }
  signals_[signum] = w;
  return w;
}

}  // namespace uvs::loop
