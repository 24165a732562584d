// inet.hpp: connect and bind for IP sockets (TCP and UDP), with name resolution that yields in
// tasks. Layer: transport.
#pragma once

#include "lua/lua_api.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

// sock:connect(address, port) / sock:setpeername(address, port) -> 1 | nil, err
// Resolves `address` (on the thread pool in a task), then tries each address in turn, each
// with its own deadline as LuaSocket does. On success the object takes class
// `connected_class`; with `always` it takes it on failure too (a non-blocking TCP connect that
// returned "timeout" is still under way).
int inet_connect(lua_State* L, Socket* s, int socktype, const char* connected_class, bool always);

// sock:bind(address, port) / sock:setsockname(address, port) -> 1 | nil, err
// "*" is the wildcard address. A socket created without a family gets its descriptor here.
int inet_bind(lua_State* L, Socket* s, int socktype);

}  // namespace uvs::socket
