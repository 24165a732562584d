// dgram.hpp: receive and send for datagram sockets (UDP and Unix-domain datagrams), written
// once for both modes. Layer: transport.
#pragma once

#include <sys/socket.h>

#include "lua/lua_api.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

// How receivefrom reports the sender.
enum class Sender : uint8_t { kNone, kInet, kUnix };

// sock:receive([size]) -> datagram | nil, err
// sock:receivefrom([size]) -> datagram, ip, port | datagram, path | nil, err
// A datagram longer than `size` (default 8192) is truncated and the rest dropped. Yields in a
// task until one arrives; blocks in poll(2) elsewhere.
int dgram_receive(lua_State* L, Socket* s, Sender from);

// sock:send(datagram) on a connected socket -> bytes sent | nil, err
int dgram_send(lua_State* L, Socket* s);

// Sends the datagram at index 2 to `addr`. Returns bytes sent | nil, err.
int dgram_sendto(lua_State* L, Socket* s, const sockaddr* addr, socklen_t len);

}  // namespace uvs::socket
