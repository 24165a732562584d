// udata.hpp: class registration and checked access for the userdata classes of the module.
// Layer: binding helpers (Lua only; no uv.h).
//
// Every class keeps LuaSocket's layout: a metatable registered under the class name (for
// luaL_setmetatable and for libraries that patch it), a plain table as __index holding every
// method of the family plus a `class` field, group names as boolean keys, and __gc/__tostring.
// The objects themselves carry their class (see socket.hpp), so checking an argument needs no
// metatable lookup.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lua/lua_api.hpp"

namespace uvs::lua {

struct ClassSpec {
  const char* name;           // "tcp{client}"
  const char* const* groups;  // null-terminated list, e.g. {"tcp{any}", "select{able}", nullptr}
};

// Registers the classes of one family. `methods` go into every class's __index table and
// `metamethods` into every metatable; all functions get the value at `upvalue` as their only
// upvalue.
void register_classes(lua_State* L, const ClassSpec* classes, size_t nclasses,
                      const luaL_Reg* methods, const luaL_Reg* metamethods, int upvalue);

// Raises LuaSocket's "<expected> expected" argument error for argument `idx`.
[[noreturn]] void class_error(lua_State* L, int idx, const char* expected);

// __tostring for every class: "<class>: 0x...".
int class_tostring(lua_State* L);

}  // namespace uvs::lua
