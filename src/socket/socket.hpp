// socket.hpp: the state behind every socket object, and the operations all classes share.
// Layer: transport (uses lua.h for the wait protocol and uv.h through the runtime).
//
// A Socket lives in the memory of its Lua userdata, like a FILE* in liolib's LStream. It owns a
// non-blocking, close-on-exec descriptor and, once a task has waited on it, the descriptor's
// FdWatch (on the heap, found by descriptor; freed when the descriptor is closed, never with
// the userdata). Nothing libuv calls back into points at the Socket itself, so the userdata can be
// collected at any time: __gc closes the descriptor and the watcher, and any waiting task wakes
// with "closed".
//
// Each direction of a socket (reads: receive, receivefrom, accept; writes: send, sendto,
// connect, bind) is an OpSlot that an operation claims at its entry, before it writes any of
// the state below, and releases when it returns: the fields of one direction belong to the
// operation that owns it. A closed socket stays closed: it never gets a descriptor again.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "loop/deadline.hpp"
#include "loop/op_slot.hpp"
#include "loop/wait.hpp"
#include "lua/lua_api.hpp"
#include "socket/fd_watch.hpp"
#include "socket/pattern.hpp"
#include "socket/recv_buffer.hpp"
#include "socket/socket_runtime.hpp"

namespace uvs::socket {

struct TlsSession;

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
  kTlsClient = 1u << 10,  // a tcp{client} carrying TLS (socket.tls.wrap), either side
  // (Socket::cls keeps one bit in 16)

  kTcpAny = kTcpMaster | kTcpClient | kTcpServer,
  kUdpAny = kUdpUnconnected | kUdpConnected,
  kUnixStreamAny = kUnixStreamMaster | kUnixStreamClient | kUnixStreamServer,
  kUnixDgramAny = kUnixDgramUnconnected | kUnixDgramConnected,
  kStreamClient = kTcpClient | kUnixStreamClient,
  kAnySocket = kTcpAny | kUdpAny | kUnixStreamAny | kUnixDgramAny | kTlsClient,
};

// Returned by wait_fd() and claim() when the caller must yield:
// `return loop::yield(L, rt, ctx, k)`.
constexpr int kYield = -100;

// What a connect/bind call is doing between a yield and its resumption.
enum class Phase : uint8_t { kIdle, kResolving, kConnecting };

// Every Socket starts with this value, so that a userdata can be recognised as one without a
// metatable lookup (its size is checked too).
constexpr uint32_t kSocketMagic = 0x75767363;  // "uvsc"

struct Socket {
  uint32_t magic = kSocketMagic;
  uint16_t cls = 0;  // the ClassBits bit of the object's current class
  sa_family_t family = AF_UNSPEC;
  SocketRuntime* sr = nullptr;  // the socket layer of the runtime that created it
  int fd = -1;
  // Reads: what a read in the poll callback met (end of stream: kIoClosed; an errno value).
  int16_t pending = 0;
  bool closed = false;         // close() or collection happened: no descriptor ever again
  Phase phase = Phase::kIdle;  // writes: the connect or bind in progress
  loop::Timeouts tm;
  RecvBuffer buf;
  Matcher matcher;              // reads: the receive in progress
  double rd_start = 0.0;        // reads: start of the call in progress (monotonic seconds)
  double wr_start = 0.0;        // writes: start of the call in progress
  double received = 0.0;        // getstats: bytes handed to the caller
  double sent = 0.0;            // getstats: bytes sent
  double birthday = 0.0;        // getstats: creation time (monotonic seconds)
  addrinfo* ai = nullptr;       // writes: the addresses a connect is trying (free_addresses)
  addrinfo* ai_next = nullptr;  // writes: the address tried now
  loop::OpSlot reading;
  loop::OpSlot writing;
  // The TLS transport of a tls{client} (tls_session.hpp; freed by close_socket), null for every
  // other socket. Only the tls{client} methods' own continuations (stream.cpp, instantiated for
  // TLS) read it, so plain sockets never test it on their I/O paths.
  TlsSession* tls = nullptr;
};

// Lua frees a socket's memory without running any destructor.
static_assert(std::is_trivially_destructible_v<Socket>);
// With its userdata header, 248 bytes: an allocation of 256 (glibc's classes are 16 bytes
// apart). A field added here costs every connection 16 bytes.
static_assert(sizeof(Socket) <= 216);

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

// The watcher of the socket's descriptor, if somebody waits or waited on it. Found by
// descriptor rather than kept: another object may close the watcher (a socket given the same
// descriptor with setfd, closing it).
inline FdWatch* watch_of(const Socket* s) { return s->sr->watcher(s->fd); }

// Stops using the descriptor's watcher (the socket's own waiters wake with "closed") without
// closing the descriptor.
void drop_watch(Socket* s);
// close(): closes the descriptor and releases everything the socket holds; every operation in
// flight or waiting its turn ends with "closed". With `collected` (from __gc) nothing may keep
// pointing at the socket's memory afterwards. Idempotent.
void close_socket(Socket* s, bool collected);
// Gives the socket descriptor `fd` of `family` in place of its current one (closed): a connect
// or bind trying another family. Returns 0, or kIoClosed for a closed socket (`fd` is closed).
[[nodiscard]] int replace_fd(Socket* s, int fd, int family);
void free_addresses(Socket* s);

// Claims one direction of `s` at the entry of an operation, before it writes any state. The
// wait for a turn is bounded by the call's own timeouts, from its own `start`. Returns kIoDone
// when the caller owns the direction; kYield when the caller (a task) was queued: it yields,
// and its continuation asks turn_status(); kIoTimeout, kIoCancelled or kIoClosed when it never
// got it. Raises a Lua error when the direction is busy and the caller is not a task that can
// wait its turn.
[[nodiscard]] int wait_turn(lua_State* L, Socket* s, loop::OpSlot& slot, double start,
                            const char* what);
[[nodiscard]] inline int claim(lua_State* L, Socket* s, loop::OpSlot& slot, double start,
                               const char* what) {
  if (!s->closed && slot.try_take(loop::OpSlot::caller(L, s->sr->rt()))) return 0;
  return wait_turn(L, s, slot, start, what);
}
// In the continuation of a queued claim: kIoDone when the turn came, or why it never did.
[[nodiscard]] int turn_status(lua_State* L, Socket* s);
// Releases the direction at every exit of the operation that claimed it. It only hands the
// direction to the next queued task (made ready), so the caller may still read its own state.
inline void release(lua_State* L, Socket* s, loop::OpSlot& slot) { slot.release(L, s->sr->rt()); }

// Waits until the socket is ready for `dir` (FdWatch::kRead or kWrite) within deadline `d`;
// `what` names the operation for async.status(). Through loop::wait(): in a task that can yield
// it registers the wait and returns kYield (the caller then returns loop::yield(...)); in any
// other context it blocks in poll(2). Otherwise returns kIoDone (ready: retry the call),
// kIoTimeout, kIoClosed or kIoCancelled.
[[nodiscard]] int wait_fd(lua_State* L, Socket* s, int dir, const loop::Deadline& d,
                          const char* what, FdWatch::Prefetch prefetch = nullptr);

// After a yield: the I/O status the wake-up means (kIoDone to retry, timeout, closed, ...).
[[nodiscard]] int resume_status(lua_State* L, SocketRuntime* sr);
// The I/O status of a wait's outcome.
[[nodiscard]] int io_status(loop::Wake w);

// Pushes nil and LuaSocket's message for `err`; returns 2.
int push_error(lua_State* L, int err);
// Pushes LuaSocket's success value, the float 1; returns 1.
int push_ok(lua_State* L);

// The call start time carried in a continuation context, and back.
inline lua_KContext start_ctx(double start) {
  lua_KContext c = 0;
  static_assert(sizeof c >= sizeof start);
  __builtin_memcpy(&c, &start, sizeof start);
  return c;
}
inline double ctx_start(lua_KContext c) {
  double start = 0;
  __builtin_memcpy(&start, &c, sizeof start);
  return start;
}

}  // namespace uvs::socket
