// async_lua.cpp: the scheduler's Lua face: socket.async.run, spawn, sleep, now, and the task
// handle class. Layer: loop (Lua glue of the runtime).
#include <cerrno>
#include <cmath>
#include <ctime>

#include "loop/runtime.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {

namespace {

constexpr const char* kTaskClass = "async.task";

Task* check_task(lua_State* L, int idx) {
  return static_cast<Task*>(luaL_checkudata(L, idx, kTaskClass));
}

// socket.async.run(main, ...) -> main's results
// Runs main as the first task and returns when main and every other task finished.
int async_run(lua_State* L) { return Runtime::of(L)->run(L); }

// socket.async.spawn(fn, ...) -> task
// Starts fn(...) as a new task; it first runs when the current task yields (or when run starts).
int async_spawn(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  Runtime::of(L)->spawn(L, 1, lua_gettop(L) - 1);
  return 1;
}

int sleep_k(lua_State* L, int status, lua_KContext ctx) {
  (void)L;
  (void)status;
  (void)ctx;
  return 0;
}

// socket.sleep(seconds) and socket.async.sleep(seconds)
// Yields to the scheduler in a task; blocks the thread (nanosleep) anywhere else.
int async_sleep(lua_State* L) {
  const lua_Number n = luaL_checknumber(L, 1);
  Runtime* rt = Runtime::of(L);
  if (Task* t = rt->yieldable_task(L)) {
    rt->suspend(t, nullptr, n > 0 ? n : 0.0, true);
    return lua_yieldk(L, 0, 0, sleep_k);
  }
  if (!(n > 0)) return 0;
  const double capped = n > 2147483647.0 ? 2147483647.0 : n;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(capped);
  ts.tv_nsec = static_cast<long>((capped - std::floor(capped)) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

// socket.async.now() -> monotonic time in seconds
int async_now(lua_State* L) {
  lua_pushnumber(L, Runtime::now());
  return 1;
}

// socket.async.running() -> true when called from a task that can yield to the scheduler.
int async_intask(lua_State* L) {
  lua_pushboolean(L, Runtime::of(L)->yieldable_task(L) != nullptr);
  return 1;
}

// socket.async._debug() -> table of runtime counters, for the tests' leak checks.
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

// task:status() -> "ready" | "running" | "waiting" | "done" | "failed"
int task_status(lua_State* L) {
  lua_pushstring(L, state_name(check_task(L, 1)->state));
  return 1;
}

int task_tostring(lua_State* L) {
  Task* t = check_task(L, 1);
  lua_pushfstring(L, "task %I (%s): %p", static_cast<lua_Integer>(t->id), state_name(t->state),
                  static_cast<void*>(t));
  return 1;
}

}  // namespace

// Adds the `async` table to the namespace at `ns` and `sleep` to the namespace itself.
void open_async(lua_State* L, int ns, int rt) {
  if (luaL_newmetatable(L, kTaskClass)) {
    const luaL_Reg methods[] = {
        {"status", task_status},
        {nullptr, nullptr},
    };
    luaL_newlib(L, methods);
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
      {"_debug", async_debug},
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
