// udata.cpp: see udata.hpp. Layer: binding helpers.
#include "lua/udata.hpp"

namespace uvs::lua {

namespace {
// Address used as the private key of the class id in every metatable.
const char kClassIdKey = 0;
}  // namespace

void register_classes(lua_State* L, const ClassSpec* classes, size_t nclasses,
                      const luaL_Reg* methods, const luaL_Reg* metamethods, int upvalue) {
  upvalue = lua_absindex(L, upvalue);
  for (size_t c = 0; c < nclasses; c++) {
    luaL_newmetatable(L, classes[c].name);  // mt
    lua_pushvalue(L, upvalue);
    luaL_setfuncs(L, metamethods, 1);
    lua_pushinteger(L, classes[c].id);
    lua_rawsetp(L, -2, &kClassIdKey);
    for (const char* const* g = classes[c].groups; g && *g; g++) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, *g);
    }
    lua_newtable(L);  // mt index
    lua_pushvalue(L, upvalue);
    luaL_setfuncs(L, methods, 1);
    lua_pushstring(L, classes[c].name);
    lua_setfield(L, -2, "class");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
}

uint32_t class_id(lua_State* L, int idx, size_t size) {
  if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != size) return 0;
  if (!lua_getmetatable(L, idx)) return 0;
  lua_rawgetp(L, -1, &kClassIdKey);
  const auto id = static_cast<uint32_t>(lua_tointeger(L, -1));
  lua_pop(L, 2);
  return id;
}

void* check_class(lua_State* L, int idx, uint32_t mask, size_t size, const char* expected) {
  if (!(class_id(L, idx, size) & mask)) {
    lua_pushfstring(L, "%s expected", expected);
    luaL_argerror(L, idx, lua_tostring(L, -1));
  }
  return lua_touserdata(L, idx);
}

void set_class(lua_State* L, int idx, const char* name) {
  idx = lua_absindex(L, idx);
  luaL_getmetatable(L, name);
  lua_setmetatable(L, idx);
}

int class_tostring(lua_State* L) {
  const char* name = "object";
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__name");
    if (lua_type(L, -1) == LUA_TSTRING) name = lua_tostring(L, -1);
  }
  lua_pushfstring(L, "%s: %p", name, lua_touserdata(L, 1));
  return 1;
}

}  // namespace uvs::lua
