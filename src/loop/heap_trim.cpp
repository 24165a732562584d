// heap_trim.cpp: see heap_trim.hpp. Layer: loop.
#include "loop/heap_trim.hpp"

#include <cstddef>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define UVS_HEAP_TRIM 1
#endif

namespace uvs::loop {

namespace {

constexpr const char* kSentinelClass = "uvsocket.heaptrim";
// A sixteenth of the peak and at least 256 KiB: a burst's end frees more, and the cycles of a
// steady load differ by less. Measured at cycle ends only, where the heap holds no garbage of
// the cycle, so the collector's own sawtooth is never taken for a drop.
constexpr size_t kMinDrop = size_t{1} << 18;

// Carried from each sentinel to its successor: the most bytes in use since the last trim.
struct Sentinel {
  size_t peak_used;
};

void make_sentinel(lua_State* L, size_t peak_used) {
  auto* s = static_cast<Sentinel*>(lua_newuserdatauv(L, sizeof(Sentinel), 0));
  s->peak_used = peak_used;
  luaL_setmetatable(L, kSentinelClass);
  lua_pop(L, 1);  // unreferenced: collected, and so finalized, by the next cycle
}

int on_cycle(lua_State* L) {
  auto* s = static_cast<Sentinel*>(luaL_checkudata(L, 1, kSentinelClass));
  size_t peak = s->peak_used;
#ifdef UVS_HEAP_TRIM
  const size_t used = mallinfo2().uordblks;
  if (used > peak) peak = used;
  if (peak - used >= kMinDrop && peak - used >= peak / 16) {
    malloc_trim(0);
    peak = used;
  }
#endif
  // A state being closed does not finalize objects made now, so the chain ends with it.
  make_sentinel(L, peak);
  return 0;
}

}  // namespace

void install_heap_trim(lua_State* L) {
  if (luaL_newmetatable(L, kSentinelClass)) {
    lua_pushcfunction(L, on_cycle);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    return;  // armed already
  }
  make_sentinel(L, 0);
}

}  // namespace uvs::loop
