// options.hpp: getoption/setoption tables with LuaSocket's option names and value types.
// Layer: transport (glue shared by the socket classes).
#pragma once

#include "lua/lua_api.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

struct Option {
  const char* name;
  int (*fn)(lua_State* L, Socket* s);  // value at index 3 for setters; pushes the results
};

// Finds the option named by argument 2 in `table` (terminated by a null name) and runs it.
// An unknown name raises "unsupported option `NAME'", as LuaSocket does.
int dispatch_option(lua_State* L, Socket* s, const Option* table);

extern const Option kTcpGetOptions[];
extern const Option kTcpSetOptions[];
extern const Option kUdpGetOptions[];
extern const Option kUdpSetOptions[];
extern const Option kUnixGetOptions[];
extern const Option kUnixSetOptions[];

}  // namespace uvs::socket
