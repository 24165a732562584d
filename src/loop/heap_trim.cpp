// heap_trim.cpp: see heap_trim.hpp. Layer: loop.
#include "loop/heap_trim.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#define UVS_HEAP_TRIM 1
#endif

#include <uv.h>

#include "loop/runtime.hpp"

namespace uvs::loop {

namespace {

constexpr const char* kSentinelClass = "uvsocket.heaptrim";
constexpr size_t kMinDropKb = 256;
constexpr size_t kMinDropWatchers = 64;

void make_sentinel(lua_State* L) {
  lua_newuserdatauv(L, 1, 0);
  luaL_setmetatable(L, kSentinelClass);
  lua_pop(L, 1);  // unreferenced: collected, and so finalized, at the end of the next cycle
}

int on_cycle(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  if (!rt || rt->closing()) return 0;  // the chain ends with the runtime
  rt->heap().cycle_ended();
  make_sentinel(L);
  return 0;
}

}  // namespace

void HeapTrim::install(lua_State* L, int handle) {
  handle = lua_absindex(L, handle);
  if (!luaL_newmetatable(L, kSentinelClass)) {
    lua_pop(L, 1);
    return;  // armed already
  }
  lua_pushvalue(L, handle);
  lua_pushcclosure(L, on_cycle, 1);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  make_sentinel(L);
}

bool HeapTrim::idle(lua_State* L, bool quiet, size_t watchers) {
  if (watchers > peak_watchers_) {
    peak_watchers_ = watchers;
  } else if (peak_watchers_ - watchers >= kMinDropWatchers &&
             peak_watchers_ - watchers >= peak_watchers_ / 8) {
    due_ = true;
  }
  if (cycles_ != seen_) {
    seen_ = cycles_;
    const int kb = lua_gc(L, LUA_GCCOUNT);
    if (kb >= 0) {
      const auto now = static_cast<size_t>(kb);
      if (now > peak_kb_) peak_kb_ = now;
      const size_t drop = peak_kb_ - now;
      if (drop >= kMinDropKb && drop >= peak_kb_ / 8) due_ = true;
    }
  }
  if (!due_ || !quiet) return due_;
  trim(L, watchers);
  return false;
}

void HeapTrim::trim(lua_State* L, size_t watchers) {
#ifdef UVS_HEAP_TRIM
  const uint64_t t0 = uv_hrtime();
  malloc_trim(0);
  trim_ns_ += uv_hrtime() - t0;
  trims_++;
#endif
  due_ = false;
  peak_watchers_ = watchers;
  const int kb = lua_gc(L, LUA_GCCOUNT);
  peak_kb_ = kb >= 0 ? static_cast<size_t>(kb) : 0;
}

}  // namespace uvs::loop
