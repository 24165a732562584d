// udata.cpp: see udata.hpp. Layer: binding helpers.
#include "lua/udata.hpp"

namespace uvs::lua {

void register_classes(lua_State* L, const ClassSpec* classes, size_t nclasses,
                      const luaL_Reg* methods, const luaL_Reg* metamethods, int upvalue) {
  upvalue = lua_absindex(L, upvalue);
  for (size_t c = 0; c < nclasses; c++) {
    luaL_newmetatable(L, classes[c].name);  // mt
    lua_pushvalue(L, upvalue);
    luaL_setfuncs(L, metamethods, 1);
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

void class_error(lua_State* L, int idx, const char* expected) {
  lua_pushfstring(L, "%s expected", expected);
  luaL_argerror(L, idx, lua_tostring(L, -1));
  __builtin_unreachable();
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
