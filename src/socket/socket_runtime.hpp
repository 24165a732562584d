// socket_runtime.hpp: what the socket layer keeps per runtime: the descriptor watchers (one per
// descriptor, found by descriptor), the receive-buffer pool and a scratch area for reads made
// in poll callbacks. Layer: transport. It is the runtime's extension (loop::Extension): the
// loop knows it only through that interface and never includes this file.
#pragma once

#include <cstddef>
#include <vector>

#include "loop/runtime.hpp"
#include "socket/recv_buffer.hpp"

namespace uvs::socket {

class FdWatch;

class SocketRuntime final : public loop::Extension {
 public:
  // Creates the socket layer's state for `rt` and installs it as rt's extension.
  [[nodiscard]] static SocketRuntime* install(lua_State* L, loop::Runtime* rt);
  // The state of the runtime of the C closure being executed.
  static SocketRuntime* of(lua_State* L) {
    loop::Runtime* rt = loop::Runtime::of(L);
    return rt ? static_cast<SocketRuntime*>(rt->extension()) : nullptr;
  }

  loop::Runtime* rt() const { return rt_; }
  BufferPool& pool() { return pool_; }
  static constexpr size_t kScratchSize = 65536;
  char* scratch() { return scratch_; }

  // The watcher registered for `fd`, or nullptr.
  [[nodiscard]] FdWatch* watcher(int fd) const {
    return fd >= 0 && static_cast<size_t>(fd) < by_fd_.size() ? by_fd_[fd] : nullptr;
  }
  // Registers (or, with nullptr, forgets) the watcher of `fd`; false if the table cannot grow.
  [[nodiscard]] bool set_watcher(int fd, FdWatch* w);

  void shutdown() override;
  void describe(lua_State* L) override;

 private:
  explicit SocketRuntime(loop::Runtime* rt) : rt_(rt) {}
  loop::Runtime* rt_;
  std::vector<FdWatch*> by_fd_;
  BufferPool pool_;
  char scratch_[kScratchSize];
};

}  // namespace uvs::socket
