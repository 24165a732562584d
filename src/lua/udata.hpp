// udata.hpp: class registration and checked access for the userdata classes of the module.
// Layer: binding helpers (Lua only; no uv.h).
//
// Every class keeps LuaSocket's layout: a metatable registered under the class name (for
// luaL_setmetatable and for libraries that patch it), a plain table as __index holding every
// method of the family plus a `class` field, group names as boolean keys, and __gc/__tostring.
// Each metatable also stores a numeric class id under a private key, which is what the checks
// below compare: one metatable lookup per call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lua/lua_api.hpp"

namespace uvs::lua {

struct ClassSpec {
  const char* name;             // "tcp{client}"
  uint32_t id;                  // one bit per class
  const char* const* groups;    // null-terminated list, e.g. {"tcp{any}", "select{able}", nullptr}
};

// Registers the classes of one family. `methods` go into every class's __index table and
// `metamethods` into every metatable; all functions get the value at `upvalue` as their only
// upvalue.
void register_classes(lua_State* L, const ClassSpec* classes, size_t nclasses,
                      const luaL_Reg* methods, const luaL_Reg* metamethods, int upvalue);

// The class id of the userdata at `idx`, or 0 if it is not one of ours of size `size`.
[[nodiscard]] uint32_t class_id(lua_State* L, int idx, size_t size);

// Returns the userdata at `idx` if its class id is in `mask`; otherwise raises LuaSocket's
// "<expected> expected" argument error.
void* check_class(lua_State* L, int idx, uint32_t mask, size_t size, const char* expected);

// Gives the userdata at `idx` the class registered as `name`.
void set_class(lua_State* L, int idx, const char* name);

// __tostring for every class: "<class>: 0x...".
int class_tostring(lua_State* L);

}  // namespace uvs::lua
