// async_lua.cpp: the scheduler's Lua face: socket.async (run, spawn, sleep, timeout, signal,
// introspection, the parking primitives the Lua-side synchronisation is built on), the task
// handle class, and the runtime's coroutine.resume/wrap, which let a user coroutine inside a
// task pass its waits up to the scheduler. Layer: loop (Lua glue of the runtime).
#include <sys/resource.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>

#include "loop/runtime.hpp"
#include "loop/signal.hpp"
#include "loop/wait.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {

namespace {

constexpr const char* kTaskClass = "async.task";

Task* check_task(lua_State* L, int idx) {
  return static_cast<Task*>(luaL_checkudata(L, idx, kTaskClass));
}

// The result of a wait: true, or nil and why it ended otherwise.
int push_wake(lua_State* L, Wake why) {
  switch (why) {
    case Wake::kTimeout:
      lua_pushnil(L);
      lua_pushliteral(L, "timeout");
      return 2;
    case Wake::kCancelled:
      lua_pushnil(L);
      lua_pushliteral(L, "cancelled");
      return 2;
    case Wake::kClosed:
      lua_pushnil(L);
      lua_pushliteral(L, "closed");
      return 2;
    default:
      lua_pushboolean(L, 1);
      return 1;
  }
}

// Raises the error of a wait that only a task can make, made elsewhere.
[[noreturn]] void not_in_task(lua_State* L, const char* fname) {
  luaL_error(L, "%s must be called from a task (inside socket.async.run)", fname);
  for (;;) {
  }
}

// A wait that only the clock (or a cancellation, a deadline scope) ends.
class SleepWait final : public Waitable {
 public:
  bool attach(Runtime*, Task*, WaitSource**) override { return true; }
  Wake block(double timeout) override {
    if (!(timeout > 0)) return Wake::kTimeout;
    const double capped = timeout > 2147483647.0 ? 2147483647.0 : timeout;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(capped);
    ts.tv_nsec = static_cast<long>((capped - std::floor(capped)) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return Wake::kTimeout;
  }
};

// A wait that Lua code ends: async._wake, a finishing task (join).
class LuaWait final : public Waitable {
 public:
  explicit LuaWait(Task* target) : target_(target) {}
  bool attach(Runtime* rt, Task* t, WaitSource** src) override {
    if (target_) {
      rt->add_joiner(target_, t);
      *src = target_;
    } else {
      *src = rt->parking();
    }
    return true;
  }
  Wake block(double) override { return Wake::kRefused; }
  [[nodiscard]] bool can_block() const override { return false; }

 private:
  Task* target_;  // the task to join, or nullptr for parking
};

WaitSpec spec_of(double timeout, const char* what, bool external) {
  WaitSpec spec;
  spec.timeout = timeout;
  spec.what = what;
  spec.external = external;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// run, spawn, sleep, now

// async.run(main, ...) -> main's results
int async_run(lua_State* L) { return Runtime::of(L)->run(L); }

// async.spawn(fn, ...) -> task
int async_spawn(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  Runtime::of(L)->spawn(L, 1, lua_gettop(L) - 1);
  return 1;
}

// Waking at the end of the sleep is the normal outcome; a deadline scope or a cancellation
// cutting it short is reported.
int sleep_result(lua_State* L, Task* t, Wake why) {
  if (why == Wake::kCancelled) return push_wake(L, why);
  if (why == Wake::kTimeout && t && t->clamped) return push_wake(L, why);
  return 0;
}

int sleep_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  Runtime* rt = Runtime::of(L);
  return sleep_result(L, rt->task_of(L), resumed(L, rt));
}

// socket.sleep(seconds), async.sleep(seconds) -> nothing | nil, "timeout" | nil, "cancelled"
// Yields in a task; blocks the thread (nanosleep) anywhere else.
int async_sleep(lua_State* L) {
  const lua_Number n = luaL_checknumber(L, 1);
  Runtime* rt = Runtime::of(L);
  SleepWait w;
  const Wake r = wait(L, rt, w, spec_of(n > 0 ? n : 0.0, "sleep", true));
  if (r == Wake::kNone) return yield(L, rt, 0, sleep_k);
  return sleep_result(L, rt->task_of(L), r);
}

int async_now(lua_State* L) {
  lua_pushnumber(L, Runtime::now());
  return 1;
}

int async_intask(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  lua_pushboolean(L, yielding_task(L, rt) != nullptr);
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Deadline scopes

int timeout_k(lua_State* L, int status, lua_KContext ctx) {
  if (Task* t = Runtime::of(L)->task_of(L)) t->deadline = static_cast<uint64_t>(ctx);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L);
}

// async.timeout(seconds, fn, ...) -> fn's results
// Every wait inside fn (in this task) ends with "timeout" once `seconds` have passed.
int async_timeout(lua_State* L) {
  const lua_Number secs = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  Task* t = Runtime::of(L)->task_of(L);
  if (!t) return luaL_error(L, "socket.async.timeout must be called from a task");
  const uint64_t outer = t->deadline;
  const double ns = secs > 0 ? std::ceil(secs * 1e9) : 0.0;
  const uint64_t mine = uv_hrtime() + (ns >= 1.8e19 ? UINT64_MAX / 2 : static_cast<uint64_t>(ns));
  t->deadline = (outer && outer < mine) ? outer : mine;
  lua_remove(L, 1);
  const auto ctx = static_cast<lua_KContext>(outer);
  const int status = lua_pcallk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, ctx, timeout_k);
  return timeout_k(L, status, ctx);
}

// async.deadline() -> seconds left in the current deadline scope, or nil
int async_deadline(lua_State* L) {
  Task* t = Runtime::of(L)->task_of(L);
  if (!t || !t->deadline) return 0;
  const uint64_t now = uv_hrtime();
  lua_pushnumber(L, t->deadline > now ? static_cast<double>(t->deadline - now) * 1e-9 : 0.0);
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Parking: the primitive under the Lua synchronisation objects

int wait_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  Runtime* rt = Runtime::of(L);
  return push_wake(L, resumed(L, rt));
}

// async._wait([timeout]) -> true | nil, "timeout" | nil, "cancelled"
// Parks the calling task until async._wake(task), its timeout, or its cancellation.
int async_wait(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  LuaWait w(nullptr);
  const Wake r = wait(L, rt, w, spec_of(luaL_optnumber(L, 1, -1), "wait", false));
  if (r == Wake::kNone) return yield(L, rt, 0, wait_k);
  if (r == Wake::kRefused) not_in_task(L, "this wait");
  return push_wake(L, r);
}

// async._wake(task) -> true if the task was parked and is now ready
int async_wake(lua_State* L) {
  lua_pushboolean(L, Runtime::of(L)->unpark(check_task(L, 1)));
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Signals

struct SignalName {
  const char* name;
  int num;
};
const SignalName kSignals[] = {
    {"SIGINT", SIGINT},   {"SIGTERM", SIGTERM}, {"SIGHUP", SIGHUP},     {"SIGQUIT", SIGQUIT},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {nullptr, 0},
};

int signal_result(lua_State* L, Wake why, lua_KContext which) {
  if (why != Wake::kReady) return push_wake(L, why);
  lua_pushstring(L, kSignals[which].name);
  return 1;
}

int signal_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  Runtime* rt = Runtime::of(L);
  return signal_result(L, resumed(L, rt), ctx);
}

// async.signal(name [, timeout]) -> name | nil, "timeout" | nil, "cancelled"
// Waits until the process receives the signal ("SIGINT", "SIGTERM", ...). While some task
// waits, the signal no longer has its default action.
int async_signal(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  lua_KContext which = -1;
  for (lua_KContext i = 0; kSignals[i].name; i++) {
    if (std::strcmp(name, kSignals[i].name) == 0) which = i;
  }
  luaL_argcheck(L, which >= 0, 1, "unknown signal name");
  const lua_Number timeout = luaL_optnumber(L, 2, -1);
  Runtime* rt = Runtime::of(L);
  SignalWatch* w = rt->signal_watch(kSignals[which].num);
  const Wake r = w ? wait(L, rt, *w, spec_of(timeout, "signal", true)) : Wake::kFailed;
  if (r == Wake::kNone) return yield(L, rt, which, signal_k);
  if (r == Wake::kRefused) not_in_task(L, "socket.async.signal");
  if (r == Wake::kFailed) {
    lua_pushnil(L);
    lua_pushliteral(L, "cannot watch this signal");
    return 2;
  }
  return signal_result(L, r, which);
}

// ---------------------------------------------------------------------------------------------
// Introspection

const char* state_name(TaskState s) {
  switch (s) {
    case TaskState::kReady:
      return "ready";
    case TaskState::kRunning:
      return "running";
    case TaskState::kWaiting:
      return "waiting";
    case TaskState::kDone:
      return "done";
    case TaskState::kFailed:
      return "failed";
  }
  return "unknown";
}

int async_current(lua_State* L) {
  Task* t = Runtime::of(L)->task_of(L);
  if (!t || t->ref == LUA_NOREF) return 0;
  Runtime::of(L)->push_task(L, t);
  return 1;
}

int async_tasks(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  lua_createtable(L, static_cast<int>(rt->live_tasks()), 0);
  lua_Integer i = 1;
  for (Task* t = rt->first_live(); t; t = t->live_next) {
    rt->push_task(L, t);
    lua_rawseti(L, -2, i++);
  }
  return 1;
}

// Describes one task into the table on top.
void describe(lua_State* L, Runtime* rt, Task* t, uint64_t now) {
  lua_createtable(L, 0, 9);
  lua_pushinteger(L, static_cast<lua_Integer>(t->id));
  lua_setfield(L, -2, "id");
  lua_pushstring(L, state_name(t->state));
  lua_setfield(L, -2, "state");
  rt->push_task(L, t);
  const int h = lua_gettop(L);
  push_task_detail(L, h, t, TaskDetail::kName);
  lua_setfield(L, -3, "name");
  push_task_detail(L, h, t, TaskDetail::kSpawnedAt);
  lua_setfield(L, -3, "spawned_at");
  lua_pop(L, 1);
  if (t->state == TaskState::kWaiting) {
    if (t->wait_what) {
      if (t->wait_fd >= 0) {
        lua_pushfstring(L, "%s (fd %d)", t->wait_what, t->wait_fd);
      } else {
        lua_pushstring(L, t->wait_what);
      }
      lua_setfield(L, -2, "waiting_for");
    }
    // Unsigned 32-bit arithmetic: right across a wrap of the low bits of the loop's clock.
    const uint32_t waited = static_cast<uint32_t>(uv_now(rt->loop())) - t->wait_since;
    lua_pushnumber(L, static_cast<double>(waited) * 1e-3);
    lua_setfield(L, -2, "waited");
  }
  if (t->cancelled) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "cancelled");
  }
}

// async.status() -> {tasks, ready, running, waiting, lag, idle, cpu, watchdog, list = {...}}
int async_status(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  const uint64_t now = uv_hrtime();
  lua_createtable(L, 0, 10);
  int ready = 0, running = 0, waiting = 0;
  lua_createtable(L, static_cast<int>(rt->live_tasks()), 0);
  lua_Integer i = 1;
  for (Task* t = rt->first_live(); t; t = t->live_next) {
    if (t->state == TaskState::kReady) ready++;
    if (t->state == TaskState::kRunning) running++;
    if (t->state == TaskState::kWaiting) waiting++;
    describe(L, rt, t, now);
    lua_rawseti(L, -2, i++);
  }
  lua_setfield(L, -2, "list");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->live_tasks()));
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, ready);
  lua_setfield(L, -2, "ready");
  lua_pushinteger(L, running);
  lua_setfield(L, -2, "running");
  lua_pushinteger(L, waiting);
  lua_setfield(L, -2, "waiting");
  lua_pushnumber(L, static_cast<double>(rt->max_lag()) * 1e-9);
  lua_setfield(L, -2, "lag");
  rt->reset_lag();
  lua_pushnumber(L, static_cast<double>(rt->idle_ns()) * 1e-9);
  lua_setfield(L, -2, "idle");
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  lua_pushnumber(L, static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                        static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
  lua_setfield(L, -2, "cpu");
  lua_pushnumber(L, rt->watchdog());
  lua_setfield(L, -2, "watchdog");
  return 1;
}

// async.onerror(handler | nil) -> the previous handler (nil for the default report)
int async_onerror(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  int& ref = rt->onerror_ref();
  if (ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    ref = LUA_NOREF;
  } else {
    lua_pushnil(L);
  }
  if (!lua_isnoneornil(L, 1)) {
    lua_pushvalue(L, 1);
    ref = luaL_ref(L, LUA_REGISTRYINDEX);  // released by the next call, or with the registry
  }
  return 1;
}

// async.watchdog([seconds | false]) -> the previous threshold (0 when off)
int async_watchdog(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  lua_pushnumber(L, rt->watchdog());
  if (!lua_isnone(L, 1)) rt->set_watchdog(lua_toboolean(L, 1) ? luaL_checknumber(L, 1) : 0);
  return 1;
}

// async._debug() -> table of runtime counters, for the tests' leak checks.
int async_debug(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  rt->flush_closing();
  lua_createtable(L, 0, 9);
  lua_pushinteger(L, static_cast<lua_Integer>(rt->live_tasks()));
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->live_watchers()));
  lua_setfield(L, -2, "watchers");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->pending_timers()));
  lua_setfield(L, -2, "timers");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->live_jobs()));
  lua_setfield(L, -2, "jobs");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->open_handles()));
  lua_setfield(L, -2, "handles");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->heap().trims()));
  lua_setfield(L, -2, "heap_trims");
  lua_pushnumber(L, static_cast<lua_Number>(rt->heap().trim_ns()) * 1e-6);
  lua_setfield(L, -2, "heap_trim_ms");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->idle_collections()));
  lua_setfield(L, -2, "idle_collections");
  if (Extension* e = rt->extension()) e->describe(L);
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Task handles

int task_status(lua_State* L) {
  lua_pushstring(L, state_name(check_task(L, 1)->state));
  return 1;
}

// Pushes a finished task's outcome: its results, or nil and its error.
int push_outcome(lua_State* L, Task* t) {
  lua_State* co = t->co;
  const int n = t->nresults;
  if (t->state == TaskState::kFailed) {
    lua_pushnil(L);
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
    return 2;
  }
  luaL_checkstack(L, n, "too many results to join");
  const int top = lua_gettop(co);
  for (int i = top - n + 1; i <= top; i++) {
    lua_pushvalue(co, i);
    lua_xmove(co, L, 1);
  }
  return n;
}

int join_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  Runtime* rt = Runtime::of(L);
  Task* t = check_task(L, 1);
  if (t->state == TaskState::kDone || t->state == TaskState::kFailed) return push_outcome(L, t);
  return push_wake(L, resumed(L, rt));
}

// task:join([timeout]) -> the task's results | nil, its error | nil, "timeout" | nil, "cancelled"
int task_join(lua_State* L) {
  Task* t = check_task(L, 1);
  const lua_Number timeout = luaL_optnumber(L, 2, -1);
  lua_settop(L, 1);
  if (t->state == TaskState::kDone || t->state == TaskState::kFailed) return push_outcome(L, t);
  Runtime* rt = Runtime::of(L);
  if (rt->task_of(L) == t) return luaL_error(L, "a task cannot join itself");
  LuaWait w(t);
  const Wake r = wait(L, rt, w, spec_of(timeout, "join", false));
  if (r == Wake::kNone) return yield(L, rt, 0, join_k);
  if (r == Wake::kRefused) not_in_task(L, "task:join");
  return push_wake(L, r);
}

// task:cancel([reason]) -> true if the task was still alive
int task_cancel(lua_State* L) {
  Task* t = check_task(L, 1);
  if (t->state != TaskState::kDone && t->state != TaskState::kFailed) {
    if (lua_isnoneornil(L, 2)) {
      lua_pushboolean(L, 1);
    } else {
      lua_pushvalue(L, 2);
    }
    set_task_detail(L, 1, t, TaskDetail::kReason);
  }
  lua_pushboolean(L, Runtime::of(L)->cancel(t));
  return 1;
}

// task:cancelled() -> the reason given to cancel (true without one), or nil
int task_cancelled(lua_State* L) {
  Task* t = check_task(L, 1);
  if (!t->cancelled) return 0;
  push_task_detail(L, 1, t, TaskDetail::kReason);
  return 1;
}

int task_name(lua_State* L) {
  push_task_detail(L, 1, check_task(L, 1), TaskDetail::kName);
  return 1;
}

// task:setname(name) -> task
int task_setname(lua_State* L) {
  Task* t = check_task(L, 1);
  luaL_checkstring(L, 2);
  lua_pushvalue(L, 2);
  set_task_detail(L, 1, t, TaskDetail::kName);
  lua_settop(L, 1);
  return 1;
}

int task_id(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(check_task(L, 1)->id));
  return 1;
}

int task_tostring(lua_State* L) {
  Task* t = check_task(L, 1);
  push_task_detail(L, 1, t, TaskDetail::kName);
  if (lua_isstring(L, -1)) {
    lua_pushfstring(L, "task %I '%s' (%s): %p", static_cast<lua_Integer>(t->id),
                    lua_tostring(L, -1), state_name(t->state), static_cast<void*>(t));
  } else {
    lua_pushfstring(L, "task %I (%s): %p", static_cast<lua_Integer>(t->id), state_name(t->state),
                    static_cast<void*>(t));
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------
// coroutine.resume, coroutine.wrap and coroutine.close, able to pass a wait up
//
// Without a wait involved they give exactly what Lua's own give (the steps and messages of
// lbaselib's auxresume, luaB_coresume, auxwrap and luaB_close). A coroutine resumed from a task
// becomes the task's proxy while it runs, so its waits are the task's; when it yields the
// pass-through marker, the resume yields the task in turn and resumes the coroutine again once
// the task is woken.

// Resumes `co` with the `narg` values on top of L. Returns the number of values it pushed on L
// (its yields or results), -1 after an error (the message is on L's top), or -2 when `co`
// passed a wait up: L must then yield in turn and resume `co` again when woken.
int resume_once(lua_State* L, lua_State* co, int narg) {
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  Runtime* rt = Runtime::of(L);
  Task* t = yielding_task(L, rt);  // can L itself pass a wait up? then so can co
  lua_State* outer = nullptr;
  if (t) {
    outer = t->proxy;
    t->proxy = co;
  }
  int nres = 0;
  const int status = lua_resume(co, L, narg, &nres);
  if (t) t->proxy = outer;
  if (status == LUA_OK || status == LUA_YIELD) {
    if (status == LUA_YIELD && t && nres == 1 && lua_touserdata(co, -1) == passthrough_marker()) {
      lua_pop(co, 1);
      return -2;
    }
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

// Stack of coroutine.resume: co, args... ; of the wrapped function: args...
int resume_k(lua_State* L, int status, lua_KContext ctx);

int finish_resume(lua_State* L, lua_State* co, int r, lua_KContext ctx) {
  if (r == -2) return yield(L, Runtime::of(L), ctx, resume_k);
  if (ctx == 0) {  // coroutine.resume: true, values... | false, error
    if (r < 0) {
      lua_pushboolean(L, 0);
      lua_insert(L, -2);
      return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
  }
  // a wrapped coroutine: values..., or the error raised in the caller
  if (r < 0) {
    int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD) {  // an error in the coroutine
      stat = lua::close_thread(co, L);          // runs its to-be-closed variables
      lua_xmove(co, L, 1);
    }
    if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  return r;
}

lua_State* resumed_co(lua_State* L, lua_KContext ctx) {
  return ctx == 0 ? lua_tothread(L, 1) : lua_tothread(L, lua_upvalueindex(2));
}

int resume_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  // Woken: resume the coroutine that passed its wait up; it finds why in the task's state.
  // Values below the results on L's stack (the coroutine, for coroutine.resume) are ignored.
  lua_State* co = resumed_co(L, ctx);
  if (lua_status(co) != LUA_YIELD) {
    // It was closed while the task waited for it: its call will never finish, so what the
    // call held is given up here. Resuming it then fails as Lua's resume would.
    Runtime* rt = Runtime::of(L);
    if (Task* t = rt->task_of(L)) rt->abandon_call(t);
  }
  return finish_resume(L, co, resume_once(L, co, 0), ctx);
}

// The word Lua's own coroutine functions use for a coroutine argument in their errors: Lua
// 5.4 releases differ ("thread" or "coroutine"); found out when the module loads.
const char* g_coroutine_word = "coroutine";

void learn_coroutine_word(lua_State* L, int stock_resume) {
  lua_pushvalue(L, stock_resume);
  lua_pushinteger(L, 0);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char* msg = lua_tostring(L, -1);
    if (msg && std::strstr(msg, "(thread expected")) g_coroutine_word = "thread";
  }
  lua_pop(L, 1);
}

lua_State* check_co(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  if (!co) luaL_typeerror(L, 1, g_coroutine_word);
  return co;
}

// coroutine.resume(co, ...)
int co_resume(lua_State* L) {
  lua_State* co = check_co(L);
  const int r = resume_once(L, co, lua_gettop(L) - 1);
  return finish_resume(L, co, r, 0);
}

int co_wrapped(lua_State* L) {
  lua_State* co = lua_tothread(L, lua_upvalueindex(2));
  const int r = resume_once(L, co, lua_gettop(L));
  return finish_resume(L, co, r, 1);
}

// coroutine.wrap(f)
int co_wrap(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, lua_upvalueindex(1));  // the runtime handle
  lua_State* co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, co_wrapped, 2);
  return 1;
}

// coroutine.close(co): Lua's, except that closing the coroutine of a task that is not running
// ends the task cleanly (its wait abandoned, joiners told "coroutine closed") instead of
// leaving the scheduler a dead coroutine to resume. Upvalue 2: Lua's own close.
int co_close(lua_State* L) {
  lua_State* co = check_co(L);
  Runtime* rt = Runtime::of(L);
  const int st = lua_status(co);
  lua_Debug ar;
  const bool suspended =
      st == LUA_YIELD || (st == LUA_OK && !lua_getstack(co, 0, &ar) && lua_gettop(co) > 0);
  Task* t = (rt && suspended && co != L) ? rt->task_with_coroutine(co) : nullptr;
  if (!t || t->state == TaskState::kRunning) {
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
  }
  if (rt->kill(L, t) == LUA_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

}  // namespace

// Adds the `async` table to the namespace at `ns` and `sleep` to the namespace itself.
void open_async(lua_State* L, int ns, int rt) {
  if (luaL_newmetatable(L, kTaskClass)) {
    const luaL_Reg methods[] = {
        {"status", task_status}, {"join", task_join},
        {"cancel", task_cancel}, {"cancelled", task_cancelled},
        {"name", task_name},     {"setname", task_setname},
        {"id", task_id},         {nullptr, nullptr},
    };
    lua_newtable(L);
    lua_pushvalue(L, rt);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, task_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  const luaL_Reg funcs[] = {
      {"run", async_run},           {"spawn", async_spawn},   {"sleep", async_sleep},
      {"now", async_now},           {"intask", async_intask}, {"timeout", async_timeout},
      {"deadline", async_deadline}, {"signal", async_signal}, {"current", async_current},
      {"tasks", async_tasks},       {"status", async_status}, {"onerror", async_onerror},
      {"watchdog", async_watchdog}, {"_wait", async_wait},    {"_wake", async_wake},
      {"_debug", async_debug},      {nullptr, nullptr},
  };
  lua_newtable(L);
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  // _coroutine: the coroutine functions socket.async installs. They are one level deeper than
  // the module's functions so that Lua's error messages, which name a function by where it is
  // found in package.loaded, find them as coroutine.resume and so on, as they find Lua's own.
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, rt);
  lua_pushcclosure(L, co_resume, 1);
  lua_setfield(L, -2, "resume");
  lua_pushvalue(L, rt);
  lua_pushcclosure(L, co_wrap, 1);
  lua_setfield(L, -2, "wrap");
  if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "resume") == LUA_TFUNCTION) learn_coroutine_word(L, lua_gettop(L));
    lua_pop(L, 1);
    // close wraps Lua's own coroutine.close, taken now.
    if (lua_getfield(L, -1, "close") == LUA_TFUNCTION) {
      lua_pushvalue(L, rt);
      lua_insert(L, -2);
      lua_pushcclosure(L, co_close, 2);
      lua_setfield(L, -3, "close");
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_setfield(L, -2, "_coroutine");
  lua_getfield(L, -1, "sleep");
  lua_setfield(L, ns, "sleep");
  lua_setfield(L, ns, "async");
}

}  // namespace uvs::loop
