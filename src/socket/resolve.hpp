// resolve.hpp: name resolution that blocks in a plain script and yields in a task.
// Layer: transport.
//
// Numeric addresses never leave the calling thread (getaddrinfo with AI_NUMERICHOST answers
// without I/O). Host names are resolved by getaddrinfo() itself, so /etc/hosts, nsswitch and
// search domains work as everywhere else: directly in blocking mode, on libuv's thread pool
// while the task waits in task mode.
#pragma once

#include <netdb.h>

#include <string>

#include "loop/job.hpp"
#include "lua/lua_api.hpp"
#include "socket/socket_runtime.hpp"

namespace uvs::socket {

struct Resolved {
  addrinfo* ai = nullptr;  // owned by the caller: freeaddrinfo()
  int gai = 0;             // getaddrinfo() error, 0 if none
  int sys = 0;             // errno for EAI_SYSTEM
  int io = 0;              // an I/O status when the wait itself ended otherwise (closed, ...)
  [[nodiscard]] bool ok() const { return gai == 0 && io == 0; }
  [[nodiscard]] const char* message() const;
};

// Runs getaddrinfo() on the thread pool.
class ResolveJob : public loop::Job {
 public:
  ResolveJob(const char* host, const char* serv, const addrinfo& hints);
  ~ResolveJob() override;
  void work() noexcept override;
  Resolved take();

 private:
  std::string host_;
  std::string serv_;
  bool has_host_;
  bool has_serv_;
  addrinfo hints_;
  Resolved result_;
};

// One step of a lookup inside a call that may yield. `*waiting` is kept by the caller between
// the yield and its resumption (false on the first call). Returns true when `*out` holds the
// answer; false when the caller must yield and call again once resumed.
[[nodiscard]] bool resolve_step(lua_State* L, SocketRuntime* sr, bool* waiting, const char* host,
                                const char* serv, const addrinfo& hints, Resolved* out);

}  // namespace uvs::socket
