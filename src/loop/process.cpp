// process.cpp: the process primitives under socket.async's worker processes
// (lua/async/workers.lua): a fork that renews the runtime's loop in the child, and a
// supervisor's signal and readiness channel. Layer: loop (Lua glue; POSIX and Linux calls,
// libuv only for uv_loop_fork). Nothing here is part of the public API: the functions are the
// fields of socket.async._process.
//
// Why a fork needs care here. The runtime's uv loop is made when socket.core loads, and a forked
// child shares its kernel objects with the parent (the epoll instance, the eventfd of the
// lookup queue's async handle, libuv's signal pipe): a watcher the child registers would be
// registered in the parent's epoll set. So the child calls uv_loop_fork before anything runs,
// which gives it kernel objects of its own; and forking is refused while the runtime holds
// anything a copy could not carry (live tasks, descriptor watchers, lookups in flight, active
// handles), since those would be duplicated in the child and keep running in the parent's
// kernel objects. The lookup pool resets itself in a child through its own pthread_atfork.
//
// The supervisor (the parent of the workers) runs no loop. Its signals (SIGTERM, SIGINT, SIGHUP,
// SIGCHLD) are caught by a handler that writes a record into a pipe; workers write their
// "ready" records into the same pipe; wait() polls it. A handler rather than signalfd because
// signalfd needs the signals blocked in every thread, and the lookup pool's threads, if the
// program made lookups before, do not block them.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "loop/runtime.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {

namespace {

// The signals the supervisor catches, in the order of `saved`.
constexpr int kCaught[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
constexpr int kNumCaught = sizeof(kCaught) / sizeof(kCaught[0]);

struct Supervisor {
  bool on = false;      // the handlers are installed in this process
  bool worker = false;  // this process is a worker forked by fork()
  int rd = -1;          // the pipe's read end (supervisor only; closed in a worker)
  int wr = -1;          // its write end (non-blocking; inherited by the workers)
  pid_t parent = 0;     // in a worker: the supervisor's pid
  struct sigaction saved[kNumCaught];
};

Supervisor g_sup;

// A record in the pipe is an int32: -signo from the handler, a worker's pid from ready().
void on_signal(int signo) {
  const int saved_errno = errno;
  const int32_t rec = -signo;
  // A full pipe drops the record: the supervisor is behind by 16,000 records then, and a
  // dropped SIGCHLD is made up by the next one (reaping checks every worker).
  ssize_t n = write(g_sup.wr, &rec, sizeof rec);
  (void)n;
  errno = saved_errno;
}

const char* signal_name(int signo) {
  switch (signo) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    case SIGCHLD:
      return "SIGCHLD";
    case SIGKILL:
      return "SIGKILL";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    default:
      return nullptr;
  }
}

int push_signal(lua_State* L, int signo) {
  const char* name = signal_name(signo);
  if (name) {
    lua_pushstring(L, name);
  } else {
    lua_pushfstring(L, "signal %d", signo);
  }
  return 1;
}

int check_signal(lua_State* L, int idx) {
  const char* name = luaL_checkstring(L, idx);
  static const char* const names[] = {"SIGTERM", "SIGINT",  "SIGHUP",  "SIGKILL", "SIGQUIT",
                                      "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGSTOP", nullptr};
  static const int numbers[] = {SIGTERM, SIGINT,  SIGHUP,  SIGKILL, SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGCONT, SIGSTOP};
  for (int i = 0; names[i]; i++) {
    if (strcmp(names[i], name) == 0) return numbers[i];
  }
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

int push_errno(lua_State* L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, strerror(err));
  return 2;
}

// Why the runtime cannot be copied into a child now, or nullptr when it can.
const char* unforkable(lua_State* L, Runtime* rt) {
  if (!rt) return "the runtime is closing";
  if (rt->live_tasks() > 0) {
    return lua_pushfstring(L,
                           "%d task(s) exist (start workers outside socket.async.run, "
                           "before any task is spawned or after every task has finished)",
                           static_cast<int>(rt->live_tasks()));
  }
  // Handles closed since the last run are freed by their close callbacks: let them run.
  rt->flush_closing();
  if (rt->live_watchers() > 0) {
    return lua_pushfstring(L,
                           "%d descriptor(s) are watched by the loop (close the sockets "
                           "that tasks used before starting workers)",
                           static_cast<int>(rt->live_watchers()));
  }
  if (rt->live_jobs() > 0) {
    return lua_pushfstring(L, "%d name lookup(s) are in flight", static_cast<int>(rt->live_jobs()));
  }
  if (rt->open_handles() > 0) {
    return lua_pushfstring(L, "%d libuv handle(s) or request(s) are active",
                           static_cast<int>(rt->open_handles()));
  }
  return nullptr;
}

// _process.fork() -> pid in the parent, 0 in the child; nil, err when fork fails.
// Raises, before forking, when the runtime holds what a child cannot carry (see the header).
// The child: dies with SIGKILL when the parent does (PR_SET_PDEATHSIG), gets the signal
// dispositions the process had before supervise() (with SIGINT and SIGHUP ignored: the
// supervisor handles the terminal's signals and forwards what the workers must do), and a
// renewed loop (uv_loop_fork). Never yields or blocks.
int process_fork(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  if (const char* why = unforkable(L, rt)) {
    return luaL_error(L, "cannot start workers: %s", why);
  }
  if (g_sup.worker) return luaL_error(L, "cannot start workers from a worker");
  const pid_t parent = getpid();
  // Nothing buffered in stdio may be written twice, by the parent and by the child.
  fflush(nullptr);
  // No signal may run the supervisor's handler in the child before its dispositions are
  // restored (it would write a record into the parent's pipe).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return push_errno(L, err);
  }
  if (pid > 0) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    lua_pushinteger(L, pid);
    return 1;
  }
  // The child. No worker outlives the supervisor: SIGKILL when it dies, and if it died before
  // the request was made, exit now.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  if (g_sup.on) {
    for (int i = 0; i < kNumCaught; i++)
      sigaction(kCaught[i], &g_sup.saved[i], nullptr);
    g_sup.on = false;
    close(g_sup.rd);
    g_sup.rd = -1;
  }
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGINT, &ign, nullptr);
  sigaction(SIGHUP, &ign, nullptr);
  g_sup.worker = true;
  g_sup.parent = parent;
  const int err = uv_loop_fork(rt->loop());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) {
    fprintf(stderr, "socket.async: worker %d: cannot renew the event loop (%s)\n",
            static_cast<int>(getpid()), uv_strerror(err));
    _exit(70);
  }
  if (Extension* e = rt->extension()) e->after_fork();
  lua_pushinteger(L, 0);
  return 1;
}

// _process.supervise(on) -> true: installs (true) or removes (false) the supervisor's signal
// handlers and its pipe. Raises when the system refuses.
int process_supervise(lua_State* L) {
  const bool on = lua_toboolean(L, 1);
  if (on == g_sup.on) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (on) {
    if (g_sup.worker) return luaL_error(L, "cannot supervise workers from a worker");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      return luaL_error(L, "cannot start workers: pipe: %s", strerror(errno));
    }
    g_sup.rd = fds[0];
    g_sup.wr = fds[1];
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    for (int i = 0; i < kNumCaught; i++)
      sigaction(kCaught[i], &sa, &g_sup.saved[i]);
    g_sup.on = true;
  } else {
    for (int i = 0; i < kNumCaught; i++)
      sigaction(kCaught[i], &g_sup.saved[i], nullptr);
    close(g_sup.rd);
    close(g_sup.wr);
    g_sup.rd = g_sup.wr = -1;
    g_sup.on = false;
  }
  lua_pushboolean(L, 1);
  return 1;
}

// _process.wait([timeout]) -> "signal", name | "ready", pid | nil (the timeout passed).
// Blocks the thread in poll(2) on the supervisor's pipe, for at most `timeout` seconds (nil or
// negative: no limit). Raises unless supervise(true) was called.
int process_wait(lua_State* L) {
  if (!g_sup.on) return luaL_error(L, "not supervising");
  const double timeout = luaL_optnumber(L, 1, -1);
  int ms = -1;
  if (timeout >= 0) ms = timeout > 86400 ? 86400000 : static_cast<int>(timeout * 1000 + 0.999);
  const double until = Runtime::now() + (timeout >= 0 ? timeout : 0);
  for (;;) {
    int32_t rec = 0;
    const ssize_t n = read(g_sup.rd, &rec, sizeof rec);
    if (n == static_cast<ssize_t>(sizeof rec)) {
      if (rec < 0) {
        lua_pushliteral(L, "signal");
        push_signal(L, -rec);
      } else {
        lua_pushliteral(L, "ready");
        lua_pushinteger(L, rec);
      }
      return 2;
    }
    pollfd p{g_sup.rd, POLLIN, 0};
    const int r = poll(&p, 1, ms);
    if (r == 0) return 0;
    if (r < 0 && errno == EINTR && timeout >= 0) {
      const double left = until - Runtime::now();
      if (left <= 0) return 0;
      ms = static_cast<int>(left * 1000 + 0.999);
    }
  }
}

// _process.ready() -> true, or nil, err: in a worker, tells the supervisor that this worker
// serves (a record with its pid in the supervisor's pipe).
int process_ready(lua_State* L) {
  if (!g_sup.worker || g_sup.wr < 0) return push_errno(L, EINVAL);
  const int32_t rec = static_cast<int32_t>(getpid());
  for (;;) {
    const ssize_t n = write(g_sup.wr, &rec, sizeof rec);
    if (n == static_cast<ssize_t>(sizeof rec)) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {  // the supervisor is behind: wait for room
      pollfd p{g_sup.wr, POLLOUT, 0};
      poll(&p, 1, 100);
      continue;
    }
    return push_errno(L, n < 0 ? errno : EIO);
  }
  lua_pushboolean(L, 1);
  return 1;
}

// _process.reap(pid) -> nil while `pid` runs; "exit", code or "signal", name once it ended
// (the child is then reaped); nil, "unknown" when it is not a child of this process.
int process_reap(lua_State* L) {
  const auto pid = static_cast<pid_t>(luaL_checkinteger(L, 1));
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return 0;
  if (r < 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "unknown");
    return 2;
  }
  if (WIFSIGNALED(status)) {
    lua_pushliteral(L, "signal");
    push_signal(L, WTERMSIG(status));
  } else {
    lua_pushliteral(L, "exit");
    lua_pushinteger(L, WEXITSTATUS(status));
  }
  return 2;
}

// _process.kill(pid, signal) -> true, or nil, err
int process_kill(lua_State* L) {
  const auto pid = static_cast<pid_t>(luaL_checkinteger(L, 1));
  const int sig = check_signal(L, 2);
  if (pid <= 0) return luaL_argerror(L, 1, "pid must be positive");
  if (kill(pid, sig) != 0) return push_errno(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

// _process.ncpu() -> the number of CPUs this process may run on (its affinity mask).
int process_ncpu(lua_State* L) {
  cpu_set_t set;
  CPU_ZERO(&set);
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

// _process.getpid() -> this process's id; _process.getppid() -> its parent's.
int process_getpid(lua_State* L) {
  lua_pushinteger(L, getpid());
  return 1;
}

int process_getppid(lua_State* L) {
  lua_pushinteger(L, getppid());
  return 1;
}

// _process.forkable() -> true, or false and why the runtime could not be forked now.
int process_forkable(lua_State* L) {
  const char* why = unforkable(L, Runtime::of(L));
  lua_pushboolean(L, why == nullptr);
  if (!why) return 1;
  lua_pushstring(L, why);
  return 2;
}

}  // namespace

// Adds socket.async._process to the async table at index `async`; every function has the
// runtime handle at `rt` as upvalue 1.
void open_process(lua_State* L, int async, int rt) {
  static const luaL_Reg funcs[] = {{"fork", process_fork},
                                   {"supervise", process_supervise},
                                   {"wait", process_wait},
                                   {"ready", process_ready},
                                   {"reap", process_reap},
                                   {"kill", process_kill},
                                   {"ncpu", process_ncpu},
                                   {"getpid", process_getpid},
                                   {"getppid", process_getppid},
                                   {"forkable", process_forkable},
                                   {nullptr, nullptr}};
  lua_newtable(L);
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_setfield(L, async, "_process");
}

}  // namespace uvs::loop
