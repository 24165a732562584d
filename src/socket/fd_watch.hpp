// fd_watch.hpp: the one watcher of a descriptor, shared by the socket that owns it and by the
// tasks that wait on it through socket.async.waitfd or socket.select. Layer: transport (the
// runtime's epoll set, event_set.hpp; no Lua calls).
//
// The socket layer keeps a registry from descriptor to watcher (in SocketRuntime), and every
// waiter of a descriptor goes through its watcher, which is the descriptor's one registration
// in the runtime's epoll set. A socket's own reader and writer (one each: the socket's
// operation slots see to it) have slots of their own, with the reader's read-ahead; other
// waiters are nodes of a wait set (FdWaitSet), any number per direction. A watcher is allocated
// the first time somebody waits on the descriptor and freed when it is closed: when its socket
// closes the descriptor (every waiter wakes with "closed"), and, for a descriptor no socket
// owns, as soon as nobody waits on it (the owner may close such a descriptor at any time, and
// the set must not keep watching a closed one). Reports find a watcher by descriptor and
// serial number, so one freed earlier in a batch of reports is never touched.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <type_traits>

#include "loop/task.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {
class Runtime;
}  // namespace uvs::loop

namespace uvs::socket {

class FdWatch;
class SocketRuntime;

// One task waiting on one descriptor for `events`, as part of an FdWaitSet.
struct FdWaiter {
  loop::Task* task = nullptr;
  FdWatch* watch = nullptr;  // null once removed
  FdWaiter* prev = nullptr;
  FdWaiter* next = nullptr;
  int fd = -1;
  int events = 0;   // FdWatch::kRead | kWrite
  int revents = 0;  // what was reported (kClosed counts as both)
};

class FdWatch final : public loop::WaitSource {
 public:
  // epoll's own bits, so that what waiters want is what the epoll set is told, unconverted.
  static constexpr int kRead = EPOLLIN;
  static constexpr int kWrite = EPOLLOUT;
  // Reads what a readiness report announced into the waiting reader's buffer, from the poll
  // callback. Reading there drains the socket, so that the level-triggered set does not report
  // it again before the woken task gets to run. Must not call Lua.
  using Prefetch = void (*)(SocketRuntime* sr, void* ctx);

  // The watcher of `fd`, created if there is none (nullptr if it cannot be).
  [[nodiscard]] static FdWatch* get(SocketRuntime* sr, int fd);

  // A socket owns the descriptor: the watcher lives until the socket closes it or gives it up.
  void adopt() { owned_ = true; }
  // The socket gives the descriptor away without closing it (setfd, a connect that changes
  // family): its own waiters wake with "closed"; the watcher stays only while others wait.
  void disown();
  // The descriptor is about to be closed: every waiter wakes with "closed", the registration
  // is removed and the watcher freed (the caller must not use it afterwards).
  void close();
  // For a watcher no socket owns: closes it if nobody waits any more.
  void release_if_unused();
  // async.cancelfd: the waiters of wait sets wake with "closed" (not the owning socket's own
  // operations); returns how many. A watcher no socket owns is then closed.
  int cancel_others();

  // The owning socket's reader (with its read-ahead) and writer. False if the descriptor cannot
  // be watched (the task is then not added).
  [[nodiscard]] bool add_reader(loop::Task* t, Prefetch fn, void* ctx);
  [[nodiscard]] bool add_writer(loop::Task* t);
  void detach(loop::Task* t) override;  // the reader or writer stopped waiting
  // Other waiters (wait sets).
  [[nodiscard]] bool add(FdWaiter* n);  // false as add_reader
  void remove(FdWaiter* n);

  // False only while the descriptor is watched for reading and nothing arrived since the last
  // read came back short: a receive can then wait at once instead of calling recv() in vain.
  [[nodiscard]] bool maybe_readable() const { return readable_ || !(armed_ & kRead); }
  void drained() { readable_ = false; }
  // A poll(2) on the thread found the descriptor readable (blocking mode).
  void mark_readable() { readable_ = true; }

  // A report of the epoll set (EventSet) for the watcher of `fd` numbered `serial`.
  static void report(SocketRuntime* sr, int fd, uint32_t serial, uint32_t events);

 private:
  FdWatch() : readable_(true), owned_(false), closing_(false) {}
  void on_poll(uint32_t events);
  [[nodiscard]] int wanted() const;  // the events some waiter still wants
  int wake_others();                 // wakes every wait-set node with "closed"
  bool arm(int mask);                // false if the kernel refused the events asked for
  [[nodiscard]] loop::Runtime* rt() const;
  // 72 bytes (one allocation size class of 80): an idle connection's watcher.
  SocketRuntime* sr_ = nullptr;
  loop::Task* reader_ = nullptr;
  loop::Task* writer_ = nullptr;
  Prefetch prefetch_ = nullptr;
  void* prefetch_ctx_ = nullptr;
  FdWaiter* others_ = nullptr;
  int fd_ = -1;
  uint32_t serial_ = 0;  // names the watcher in its reports (EventSet::tag)
  // The uv_run during which the reader was last woken (its low 32 bits, which is all an
  // equality test needs): the set may report the socket again in the same run, and the woken
  // task has not read yet, so read interest stays armed until the next run.
  uint32_t woke_in_ = UINT32_MAX;
  uint8_t armed_ = 0;       // kRead | kWrite: what some waiter wants
  uint8_t registered_ = 0;  // kRead | kWrite: what the kernel watches (armed_ and maybe more)
  bool readable_ : 1;
  bool owned_ : 1;
  bool closing_ : 1;
};

// A task's wait on several descriptors at once (select) or on one (waitfd). It lives in the
// memory of a Lua userdata on the waiting task's stack: header, then `count` nodes.
class FdWaitSet final : public loop::WaitSource {
 public:
  // Pushes a new set of `count` nodes (all unused) on L's stack; its __gc unlinks what is left.
  static FdWaitSet* push(lua_State* L, int count);
  [[nodiscard]] int count() const { return count_; }
  FdWaiter& node(int i) { return nodes()[i]; }
  // Makes `t` wait on node i's descriptor for `events`. False if no watcher can be had.
  [[nodiscard]] bool watch(SocketRuntime* sr, int i, loop::Task* t, int fd, int events);
  // Unlinks every node and closes the watchers nobody needs any more. Idempotent.
  void release();
  void detach(loop::Task* t) override;

 private:
  FdWaiter* nodes() { return reinterpret_cast<FdWaiter*>(this + 1); }
  static int on_gc(lua_State* L);
  SocketRuntime* sr_ = nullptr;  // set by the first watch()
  int count_ = 0;
};

static_assert(std::is_trivially_destructible_v<FdWaiter>);
static_assert(std::is_trivially_destructible_v<FdWaitSet>);
static_assert(sizeof(FdWaitSet) % alignof(FdWaiter) == 0);

}  // namespace uvs::socket
