// heap_trim.hpp: gives the C allocator's free memory back to the system after a burst.
// Layer: loop (Lua and the C library only).
//
// A server that held ten thousand connections keeps, once they closed, the memory their
// objects took: glibc's malloc returns to the system only the free space at the top of its
// heap, and the free chunks below stay resident. After every cycle of the Lua collector (which
// is when closed connections' objects are freed), the trimmer compares the allocator's bytes
// in use with their highest figure at a cycle's end since the last trim; when they fell by a
// sixteenth of it and by 256 KiB or more, it calls malloc_trim(0), which releases every whole
// free page. A burst's end takes a few trims (objects that lived among the freed ones die a
// cycle later, and then whole pages come free); a steady load takes none and pays one
// mallinfo2() per cycle. Without glibc (2.33 or later) it does nothing.
#pragma once

#include "lua/lua_api.hpp"

namespace uvs::loop {

// Arms the trimmer in L's state: a sentinel object whose finalizer runs once per collection
// cycle and makes its successor. Once per state (the runtime calls it when it is created).
void install_heap_trim(lua_State* L);

}  // namespace uvs::loop
