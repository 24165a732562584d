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
#include "lua/lua_api.hpp"

namespace uvs::loop {

namespace {

constexpr const char* kTaskClass = "async.task";

Task* check_task(lua_State* L, int idx) {
  return static_cast<Task*>(luaL_checkudata(L, idx, kTaskClass));
}

// The result of a wait in a continuation: true, or nil and why it ended otherwise.
int push_wait_result(lua_State* L, Task* t) {
  switch (t ? t->wake : Wake::kReady) {
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

// The task calling a function that must wait; raises outside tasks.
Task* need_task(lua_State* L, const char* fname) {
  Task* t = Runtime::of(L)->yieldable_task(L);
  if (!t) luaL_error(L, "%s must be called from a task (inside socket.async.run)", fname);
  return t;
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

int sleep_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  Task* t = Runtime::of(L)->task_of(L);
  // Waking at the end of the sleep is the normal outcome; a deadline scope or a cancellation
  // cutting it short is reported.
  if (t && t->wake == Wake::kCancelled) return push_wait_result(L, t);
  if (t && t->wake == Wake::kTimeout && t->clamped) return push_wait_result(L, t);
  return 0;
}

// socket.sleep(seconds), async.sleep(seconds) -> nothing | nil, "timeout" | nil, "cancelled"
// Yields in a task; blocks the thread (nanosleep) anywhere else.
int async_sleep(lua_State* L) {
  const lua_Number n = luaL_checknumber(L, 1);
  Runtime* rt = Runtime::of(L);
  if (Task* t = rt->yieldable_task(L)) {
    rt->suspend(t, nullptr, n > 0 ? n : 0.0, true, "sleep");
    return Runtime::yield(L, 0, sleep_k);
  }
  rt->warn_blocking(L);
  if (!(n > 0)) return 0;
  const double capped = n > 2147483647.0 ? 2147483647.0 : n;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(capped);
  ts.tv_nsec = static_cast<long>((capped - std::floor(capped)) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

int async_now(lua_State* L) {
  lua_pushnumber(L, Runtime::now());
  return 1;
}

int async_intask(lua_State* L) {
  lua_pushboolean(L, Runtime::of(L)->yieldable_task(L) != nullptr);
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
  return push_wait_result(L, Runtime::of(L)->task_of(L));
}

// async._wait([timeout]) -> true | nil, "timeout" | nil, "cancelled"
// Parks the calling task until async._wake(task), its timeout, or its cancellation.
int async_wait(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  Task* t = need_task(L, "this wait");
  rt->park(t, luaL_optnumber(L, 1, -1));
  return Runtime::yield(L, 0, wait_k);
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
    {"SIGINT", SIGINT},   {"SIGTERM", SIGTERM}, {"SIGHUP", SIGHUP},   {"SIGQUIT", SIGQUIT},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {nullptr, 0},
};

int signal_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  Task* t = Runtime::of(L)->task_of(L);
  if (t && t->wake != Wake::kReady) return push_wait_result(L, t);
  lua_pushstring(L, kSignals[ctx].name);
  return 1;
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
  Runtime* rt = Runtime::of(L);
  Task* t = need_task(L, "socket.async.signal");
  SignalWatch* w = rt->signal_watch(kSignals[which].num);
  if (!w || !w->add_waiter(t, luaL_optnumber(L, 2, -1))) {
    lua_pushnil(L);
    lua_pushliteral(L, "cannot watch this signal");
    return 2;
  }
  return Runtime::yield(L, which, signal_k);
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
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, static_cast<lua_Integer>(t->id));
  lua_setfield(L, -2, "id");
  lua_pushstring(L, state_name(t->state));
  lua_setfield(L, -2, "state");
  rt->push_task(L, t);
  lua_getiuservalue(L, -1, 3);
  lua_setfield(L, -3, "name");
  lua_getiuservalue(L, -1, 4);
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
    const uint64_t since = uv_now(rt->loop());
    lua_pushnumber(L, since > t->wait_since ? static_cast<double>(since - t->wait_since) * 1e-3 : 0.0);
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
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, static_cast<lua_Integer>(rt->live_tasks()));
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->live_watchers()));
  lua_setfield(L, -2, "watchers");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->pending_timers()));
  lua_setfield(L, -2, "timers");
  lua_pushinteger(L, static_cast<lua_Integer>(rt->pool().cached_bytes()));
  lua_setfield(L, -2, "pooled_bytes");
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
  Task* me = Runtime::of(L)->task_of(L);
  Task* t = check_task(L, 1);
  if (t->state == TaskState::kDone || t->state == TaskState::kFailed) return push_outcome(L, t);
  return push_wait_result(L, me);
}

// task:join([timeout]) -> the task's results | nil, its error | nil, "timeout" | nil, "cancelled"
int task_join(lua_State* L) {
  Task* t = check_task(L, 1);
  const lua_Number timeout = luaL_optnumber(L, 2, -1);
  lua_settop(L, 1);
  if (t->state == TaskState::kDone || t->state == TaskState::kFailed) return push_outcome(L, t);
  Runtime* rt = Runtime::of(L);
  Task* me = need_task(L, "task:join");
  if (me == t) return luaL_error(L, "a task cannot join itself");
  rt->join(t, me, timeout);
  return Runtime::yield(L, 0, join_k);
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
    lua_setiuservalue(L, 1, 2);
  }
  lua_pushboolean(L, Runtime::of(L)->cancel(t));
  return 1;
}

// task:cancelled() -> the reason given to cancel (true without one), or nil
int task_cancelled(lua_State* L) {
  Task* t = check_task(L, 1);
  if (!t->cancelled) return 0;
  lua_getiuservalue(L, 1, 2);
  return 1;
}

int task_name(lua_State* L) {
  check_task(L, 1);
  lua_getiuservalue(L, 1, 3);
  return 1;
}

// task:setname(name) -> task
int task_setname(lua_State* L) {
  check_task(L, 1);
  luaL_checkstring(L, 2);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 1, 3);
  lua_settop(L, 1);
  return 1;
}

int task_id(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(check_task(L, 1)->id));
  return 1;
}

int task_tostring(lua_State* L) {
  Task* t = check_task(L, 1);
  lua_getiuservalue(L, 1, 3);
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
// coroutine.resume and coroutine.wrap, able to pass a wait up

enum class CoStatus { kRunning, kSuspended, kNormal, kDead };

CoStatus co_status(lua_State* L, lua_State* co) {
  if (L == co) return CoStatus::kRunning;
  switch (lua_status(co)) {
    case LUA_YIELD:
      return CoStatus::kSuspended;
    case LUA_OK: {
      lua_Debug ar;
      if (lua_getstack(co, 0, &ar)) return CoStatus::kNormal;
      return lua_gettop(co) == 0 ? CoStatus::kDead : CoStatus::kSuspended;
    }
    default:
      return CoStatus::kDead;
  }
}

// Resumes `co` with the `narg` values on top of L. Returns the number of values it pushed on L
// (its yields or results), -1 after an error (the message is on L's top), or -2 when `co`
// passed a wait up: L must then yield in turn and resume `co` again when woken.
int resume_once(lua_State* L, lua_State* co, int narg) {
  const CoStatus st = co_status(L, co);
  if (st != CoStatus::kSuspended) {
    lua_pushstring(L, st == CoStatus::kDead ? "cannot resume dead coroutine"
                                            : "cannot resume non-suspended coroutine");
    return -1;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  Runtime* rt = Runtime::of(L);
  Task* t = rt->yieldable_task(L);  // can L itself pass a wait up? then so can co
  void* previous = rt->mark_proxy(co, t);
  int nres = 0;
  const int status = lua_resume(co, L, narg, &nres);
  rt->unmark_proxy(co, previous);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (status == LUA_YIELD && t && nres == 1 &&
        lua_touserdata(co, -1) == Runtime::passthrough_marker()) {
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
  if (r == -2) return Runtime::yield(L, ctx, resume_k);
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
    const int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD) {
      lua_pop(L, 1);
      lua::close_thread(co, L);  // runs its to-be-closed variables
      lua_xmove(co, L, 1);
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
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
  return finish_resume(L, co, resume_once(L, co, 0), ctx);
}

// coroutine.resume(co, ...)
int co_resume(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "coroutine");
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

}  // namespace

// Adds the `async` table to the namespace at `ns` and `sleep` to the namespace itself.
void open_async(lua_State* L, int ns, int rt) {
  if (luaL_newmetatable(L, kTaskClass)) {
    const luaL_Reg methods[] = {
        {"status", task_status},       {"join", task_join},   {"cancel", task_cancel},
        {"cancelled", task_cancelled}, {"name", task_name},   {"setname", task_setname},
        {"id", task_id},               {nullptr, nullptr},
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
      {"run", async_run},
      {"spawn", async_spawn},
      {"sleep", async_sleep},
      {"now", async_now},
      {"intask", async_intask},
      {"timeout", async_timeout},
      {"deadline", async_deadline},
      {"signal", async_signal},
      {"current", async_current},
      {"tasks", async_tasks},
      {"status", async_status},
      {"onerror", async_onerror},
      {"watchdog", async_watchdog},
      {"_wait", async_wait},
      {"_wake", async_wake},
      {"_debug", async_debug},
      {"_resume", co_resume},
      {"_wrap", co_wrap},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_getfield(L, -1, "sleep");
  lua_setfield(L, ns, "sleep");
  lua_setfield(L, ns, "async");
}

}  // namespace uvs::loop
