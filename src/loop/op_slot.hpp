// op_slot.hpp: one direction of an object (a socket's reads, or its writes) that one operation
// owns at a time. Layer: loop (lua.h; no uv.h, nothing from src/socket/).
//
// A call claims the slot at its entry, before it writes any state into the object, and releases
// it when it returns. A task that finds the slot busy waits its turn, first come first served:
// its own timeout counts, a cancellation or deadline scope takes it out of the queue, and
// closing the object fails it with "closed". A caller that cannot wait its turn (not a task)
// is refused. An OpSlot lives in the memory of its object's userdata.
#pragma once

#include <type_traits>

#include "loop/runtime.hpp"
#include "loop/task.hpp"
#include "lua/lua_api.hpp"

namespace uvs::loop {

class Runtime;

class OpSlot final : public WaitSource {
 public:
  // The owner recorded for a call made outside any task: it blocks the thread, so it can never
  // be found waiting, and it releases before it returns.
  static Task* thread() { return reinterpret_cast<Task*>(alignof(Task)); }
  // Who `L` calls for: its task, or thread().
  static Task* caller(lua_State* L, Runtime* rt) {
    Task* t = rt->task_of(L);
    return t ? t : thread();
  }

  // Takes the slot for `me` if it is free (the fast path of every call).
  [[nodiscard]] bool try_take(Task* me) {
    if (owner_) return false;
    owner_ = me;
    if (me != thread() && !me->held) me->held = this;
    return true;
  }
  // Claims the busy slot for the caller: queues it. Returns kNone when the caller (a task) was
  // queued and must yield: after resumed() gives kReady it owns the slot, any other outcome
  // means it never got it. kTimeout, kCancelled and kClosed also come back directly (a zero
  // timeout, a cancelled task); kRefused when the caller cannot wait.
  [[nodiscard]] Wake wait_turn(lua_State* L, Runtime* rt, double timeout, const char* what);
  // Gives the slot up if `L`'s caller owns it: the first queued task owns it from now on and is
  // made ready. Harmless when the caller does not own it.
  void release(lua_State* L, Runtime* rt) {
    Task* me = caller(L, rt);
    if (owner_ != me) return;
    if (tail_) {
      hand_over(rt, me);
      return;
    }
    owner_ = nullptr;
    if (me != thread() && me->held == this) me->held = nullptr;
  }
  // The same for a known task (the runtime, for a task that ended while it owned the slot).
  void release_owner(Runtime* rt, Task* me);
  // The object is closed: the owner, if it waits, and every queued task wake with "closed".
  void close(Runtime* rt);
  // The object's memory is going away (collected): nobody may point at the slot any longer.
  void forget(Runtime* rt);
  [[nodiscard]] bool busy() const { return owner_ != nullptr; }

  void detach(Task* t) override;  // a queued task stopped waiting
  // Used by wait_turn() through wait(): joins the queue.
  void enqueue(Task* t);

 private:
  void hand_over(Runtime* rt, Task* me);
  // The first queued task, or nullptr.
  [[nodiscard]] Task* head() const { return tail_ ? tail_->next_waiter : nullptr; }
  Task* owner_ = nullptr;  // a task, or kThread for a call made outside any task
  // The queued tasks, a ring linked through Task::next_waiter: the last one links to the first.
  // One pointer rather than a head and a tail, so that a socket (two slots) is 16 bytes and one
  // allocation size class smaller; joining stays O(1).
  Task* tail_ = nullptr;
};

static_assert(std::is_trivially_destructible_v<OpSlot>);

}  // namespace uvs::loop
