// stream.hpp: receive and send for stream sockets (TCP and Unix-domain), written once for both
// modes. Layer: transport.
#pragma once

#include "lua/lua_api.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

// client:receive([pattern [, prefix [, maxsize]]]) -> data | nil, err, partial
// Yields in a task while the pattern is incomplete; blocks in poll(2) elsewhere. With maxsize, a
// line or "*a" that would gather more fails with "oversized", its first maxsize bytes (prefix
// included) as the partial result, and the rest stays for the next call.
int stream_receive(lua_State* L, Socket* s);

// client:receiveany([max]) -> data | nil, err, ""
// Whatever has arrived, at most `max` bytes (default 8192), once at least one byte is there.
int stream_receive_any(lua_State* L, Socket* s);

// client:_headers(max_line, max_bytes) -> fields | false   (socket.http's, not documented)
// A response's header block already in the receive buffer, taken whole when it is plain
// (fields_scan.hpp): a table of lower-case names and values, the block consumed. False, and
// nothing consumed, when it is not all there, not plain, or another call is receiving: the
// caller then reads line by line. Never waits, so it is the same in tasks and outside them.
int stream_take_headers(lua_State* L, Socket* s);

// client:send(data [, i [, j]]) -> last | nil, err, last
// Yields in a task while the kernel's send buffer is full; blocks in poll(2) elsewhere.
int stream_send(lua_State* L, Socket* s);

// The same three for a tls{client}: the bytes go through its TLS session (tls_session.hpp) and
// the receive buffer holds decrypted data; waits are for what the session wants (a receive may
// wait for the socket to be writable, and a send for it to be readable).
int tls_stream_receive(lua_State* L, Socket* s);
int tls_stream_receive_any(lua_State* L, Socket* s);
int tls_stream_send(lua_State* L, Socket* s);

// server:accept() -> client | nil, err, for a server of class `client_class`'s family.
// server:refuse() -> true if a waiting connection was accepted and closed at once (on the
// runtime's spare descriptor, so even out of descriptors), false if none waited. Never waits.
int stream_refuse(lua_State* L, Socket* s);
int stream_accept(lua_State* L, Socket* s, const char* client_class);

}  // namespace uvs::socket
