// socket.hpp: the state behind every socket object, and the operations all classes share.
// Layer: transport (uses lua.h for the wait protocol and uv.h through the runtime).
//
// A Socket lives in the memory of its Lua userdata, like a FILE* in liolib's LStream. It owns a
// non-blocking, close-on-exec descriptor and, once a task has waited on it, an FdWatch on the
// heap (which libuv references; it is freed in its close callback, never with the userdata).
// Nothing libuv calls back into points at the Socket itself, so the userdata can be collected
// at any time: __gc closes the descriptor and the watcher, and any waiting task wakes with
// "closed".
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "loop/deadline.hpp"
#include "loop/runtime.hpp"
#include "lua/lua_api.hpp"
#include "socket/pattern.hpp"
#include "socket/recv_buffer.hpp"

namespace uvs::socket {

// One bit per class; groups are unions of bits.
enum ClassBits : uint32_t {
  kTcpMaster = 1u << 0,
  kTcpClient = 1u << 1,
  kTcpServer = 1u << 2,
  kUdpUnconnected = 1u << 3,
  kUdpConnected = 1u << 4,
  kUnixStreamMaster = 1u << 5,
  kUnixStreamClient = 1u << 6,
  kUnixStreamServer = 1u << 7,
  kUnixDgramUnconnected = 1u << 8,
  kUnixDgramConnected = 1u << 9,

  kTcpAny = kTcpMaster | kTcpClient | kTcpServer,
  kUdpAny = kUdpUnconnected | kUdpConnected,
  kUnixStreamAny = kUnixStreamMaster | kUnixStreamClient | kUnixStreamServer,
  kUnixDgramAny = kUnixDgramUnconnected | kUnixDgramConnected,
  kStreamClient = kTcpClient | kUnixStreamClient,
  kAnySocket = kTcpAny | kUdpAny | kUnixStreamAny | kUnixDgramAny,
};

// Returned by wait_fd() and friends when the caller must yield: `return lua_yieldk(...)`.
constexpr int kYield = -100;

// What a connect/bind call is doing between a yield and its resumption.
enum class Phase : uint8_t { kIdle, kResolving, kConnecting };

// Every Socket starts with this value, so that a userdata can be recognised as one without a
// metatable lookup (its size is checked too).
constexpr uint32_t kSocketMagic = 0x75767363;  // "uvsc"

struct Socket {
  uint32_t magic = kSocketMagic;
  uint32_t cls = 0;  // the ClassBits bit of the object's current class
  loop::Runtime* rt = nullptr;  // the runtime that created it (lives longer than any socket)
  int fd = -1;
  int family = AF_UNSPEC;
  loop::Timeouts tm;
  RecvBuffer buf;
  Matcher matcher;
  double rd_start = 0.0;  // start of the receive/accept in progress (monotonic seconds)
  double wr_start = 0.0;  // start of the send/connect in progress
  size_t wr_first = 0;    // the send in progress: offset of its first byte in the string
  size_t wr_count = 0;    // the send in progress: bytes to send
  size_t wr_done = 0;     // bytes written by the send in progress
  double received = 0.0;  // getstats: bytes handed to the caller
  double sent = 0.0;      // getstats: bytes sent
  double birthday = 0.0;  // getstats: creation time (monotonic seconds)
  loop::FdWatch* watch = nullptr;
  int pending = 0;  // what a read in the poll callback met (end of stream, an error) for receive
  addrinfo* ai = nullptr;       // connect: the addresses being tried (freed by free_addresses)
  addrinfo* ai_next = nullptr;  // connect: the address tried now
  Phase phase = Phase::kIdle;
};

// The start time of a call, for its Deadline. Without any timeout set nothing reads it, so the
// clock is not asked.
inline double call_start(const Socket* s) {
  return (s->tm.block < 0.0 && s->tm.total < 0.0) ? 0.0 : loop::Runtime::now();
}

// Pushes a new socket object of class `cls` holding `fd` (may be -1).
Socket* push_socket(lua_State* L, const char* cls, int fd, int family);

// The socket at `idx` if it is one whose class is in `mask`, else nullptr. No Lua call, no
// metatable lookup: the cost of every method's argument check.
inline Socket* test_socket(lua_State* L, int idx, uint32_t mask) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, idx));
  if (s && lua_rawlen(L, idx) == sizeof(Socket) && s->magic == kSocketMagic && (s->cls & mask)) {
    return s;
  }
  return nullptr;
}

// Changes the class of the socket at `idx` (metatable and class bit), by class name.
void set_class(lua_State* L, int idx, const char* cls);

// Creates a non-blocking, close-on-exec descriptor; IPv6 sockets get IPV6_V6ONLY as in
// LuaSocket. Returns 0 or an errno value.
[[nodiscard]] int open_fd(int family, int type, int protocol, int* fd);

// Stops watching the descriptor (waiters wake with "closed") without closing it.
void drop_watch(Socket* s);
// Closes the descriptor and releases everything the socket holds. Idempotent.
void close_socket(loop::Runtime* rt, Socket* s);
// Replaces the descriptor after closing the current one (connect trying another family).
void replace_fd(Socket* s, int fd, int family);
void free_addresses(Socket* s);

// Waits until the socket is ready for `dir` (FdWatch::kRead or kWrite) within deadline `d`; `what`
// names the operation for async.status(). In a task that can yield it registers the wait and
// returns kYield (the caller then returns Runtime::yield(...)); in any other context it blocks
// in poll(2). Otherwise returns kIoDone (ready: retry the call), kIoTimeout, kIoBusy or an errno
// value.
[[nodiscard]] int wait_fd(lua_State* L, loop::Runtime* rt, Socket* s, int dir,
                          const loop::Deadline& d, const char* what,
                          loop::FdWatch::Prefetch prefetch = nullptr);

// After a yield: the I/O status the wake-up means (kIoDone to retry, timeout, closed, ...).
[[nodiscard]] int resume_status(lua_State* L, loop::Runtime* rt);

// Pushes nil and LuaSocket's message for `err`; returns 2.
int push_error(lua_State* L, int err);
// Pushes LuaSocket's success value, the float 1; returns 1.
int push_ok(lua_State* L);

}  // namespace uvs::socket
