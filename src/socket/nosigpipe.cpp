// nosigpipe.cpp: socket._nosigpipe(f, ...), a call during which a write to a closed connection
// cannot kill the process with SIGPIPE. Layer: glue.
//
// uvsocket's own writes use MSG_NOSIGNAL and never raise SIGPIPE, so uvsocket leaves the
// process's signal disposition alone (socket.ignoresigpipe() is the opt-in). Libraries that
// write to descriptors themselves and count on LuaSocket having ignored SIGPIPE process-wide
// (LuaSec) are called through this: SIGPIPE is blocked in the calling thread for the duration
// of the call, and one raised meanwhile is consumed before the mask is restored, so that it is
// never delivered. The caller's disposition and mask are as they were afterwards.
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

#include "lua/lua_api.hpp"

namespace uvs::socket {

namespace {

bool sigpipe_pending() {
  sigset_t set;
  sigemptyset(&set);
  return sigpending(&set) == 0 && sigismember(&set, SIGPIPE) == 1;
}

// socket._nosigpipe(f, ...) -> f(...)
// Calls f with SIGPIPE blocked in this thread; f must not yield. Errors propagate.
int nosigpipe(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  sigset_t pipe;
  sigset_t old;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  (void)pthread_sigmask(SIG_BLOCK, &pipe, &old);
  const bool was_blocked = sigismember(&old, SIGPIPE) == 1;
  // A SIGPIPE that was already pending (blocked by the program itself) is not ours to take.
  const bool before = was_blocked && sigpipe_pending();
  const int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (!before && sigpipe_pending()) {
    const timespec zero{};
    while (sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  if (!was_blocked) (void)pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

}  // namespace

// Sets socket._nosigpipe in the namespace table at `ns`.
void open_nosigpipe(lua_State* L, int ns) {
  lua_pushcfunction(L, nosigpipe);
  lua_setfield(L, ns, "_nosigpipe");
}

}  // namespace uvs::socket
