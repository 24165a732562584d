// errors.hpp: the error strings that are part of LuaSocket's API.
// Layer: pure (no lua.h, no uv.h).
//
// Lua code compares these strings ("timeout", "closed", "connection refused"), so they are
// fixed. An I/O status is 0 for done, one of the negative codes below, or a positive errno.
#pragma once

namespace uvs::socket {

enum IoStatus : int {
  kIoDone = 0,
  kIoTimeout = -1,
  kIoClosed = -2,
  kIoCancelled = -3,  // the waiting task was cancelled
  kIoUnknown = -5,
  kIoOversized = -6,  // a bounded receive (maxsize) met more than it may hold
};

// The message for an I/O status or errno value, as LuaSocket words it (strerror otherwise).
// Returns nullptr for kIoDone.
[[nodiscard]] const char* io_error(int status);

// The message for a getaddrinfo()/getnameinfo() error code; `sys_errno` is used for EAI_SYSTEM.
[[nodiscard]] const char* gai_error(int code, int sys_errno);

// The message for a gethostbyname()-style failure (h_errno), used by the DNS functions.
[[nodiscard]] const char* host_error(int herr);

}  // namespace uvs::socket
