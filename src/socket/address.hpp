// address.hpp: socket addresses to and from LuaSocket's text forms.
// Layer: pure (no lua.h, no uv.h).
#pragma once

#include <sys/socket.h>

#include <cstddef>

namespace uvs::socket {

// Text of an address family as getsockname()/getpeername() report it: "inet", "inet6",
// "unspec" or "unknown".
[[nodiscard]] const char* family_name(int family);

// Writes the numeric host of `sa` into `host` (at least 64 bytes) and its port into `*port`.
// Returns 0, or a getnameinfo() error code.
[[nodiscard]] int numeric_name(const sockaddr* sa, socklen_t len, char* host, size_t hostlen,
                               int* port);

// Parses LuaSocket's family argument ("inet", "inet6", "unspec"); returns -1 if unknown.
[[nodiscard]] int parse_family(const char* name);

}  // namespace uvs::socket
