// heap_trim.hpp: gives the C allocator's free memory back to the system after a burst.
// Layer: loop (Lua and the C library only).
//
// A server that held ten thousand connections keeps, once they closed, the memory their
// objects took: glibc's malloc returns to the system only the free space at the top of its
// heap, and the free chunks below stay resident. malloc_trim(0) gives every whole free page
// back, but it walks every free chunk: on a fragmented heap of 50 MB it took 50 to 150 ms. So
// the trimmer decides cheaply and trims only where waiting costs nothing:
// - a sentinel object, remade by its own finalizer, counts the collector's cycles;
// - at the runtime's idle points (before a wait blocks the thread, and before the scheduler
//   polls with no task ready) the first look after a cycle reads the Lua heap's size, which is
//   then at the low point of the collector's sawtooth; when it fell by an eighth of its highest
//   such figure since the last trim, and by 256 KiB or more, a trim is due; so it is when the
//   descriptor watchers (about one per connection) fell by an eighth of their highest count
//   since the last trim, and by 64 or more, since what the C side frees (receive buffers,
//   watchers) does not show in the Lua heap;
// - a due trim runs at the next idle point where waiting is free: any wait outside the
//   scheduler, and in the scheduler a poll that follows one that waited 100 ms or more (a busy
//   loop never does; the scheduler then polls for at most 250 ms, to look again).
// A steady load pays a counter comparison per idle point. Without glibc it never trims.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lua/lua_api.hpp"

namespace uvs::loop {

class HeapTrim {
 public:
  // A poll that waited this long means the loop is quiet.
  static constexpr uint64_t kQuietNs = 100000000;
  // How long the scheduler polls at most while a trim is due.
  static constexpr uint64_t kRecheckMs = 250;

  // Arms the cycle sentinel; `handle` is the stack index of the runtime's handle, which the
  // finalizer keeps as its upvalue to find the runtime.
  static void install(lua_State* L, int handle);
  // A collection cycle ended (the sentinel's finalizer).
  void cycle_ended() { cycles_++; }
  // An idle point; `quiet` says whether waiting now costs nothing, `watchers` is the number of
  // live descriptor watchers. Returns whether a trim is still due.
  bool idle(lua_State* L, bool quiet, size_t watchers);
  // Trims now (the idle collection of the scheduler, which has just freed what it could).
  void trim(lua_State* L, size_t watchers);
  [[nodiscard]] uint64_t trims() const { return trims_; }
  [[nodiscard]] uint64_t trim_ns() const { return trim_ns_; }  // time spent trimming

 private:
  uint64_t cycles_ = 0;
  uint64_t seen_ = 0;  // cycles_ at the last look at the heap
  uint64_t trims_ = 0;
  uint64_t trim_ns_ = 0;
  size_t peak_kb_ = 0;
  size_t peak_watchers_ = 0;
  bool due_ = false;
};

}  // namespace uvs::loop
