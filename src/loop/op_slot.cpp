// op_slot.cpp: see op_slot.hpp. Layer: loop.
#include "loop/op_slot.hpp"

#include "loop/runtime.hpp"
#include "loop/wait.hpp"

namespace uvs::loop {

namespace {

// Waiting for a turn: only a task can, by joining the queue.
class TurnWait final : public Waitable {
 public:
  explicit TurnWait(OpSlot* slot) : slot_(slot) {}
  bool attach(Runtime* rt, Task* t, WaitSource** src) override {
    (void)rt;
    slot_->enqueue(t);
    *src = slot_;
    return true;
  }
  Wake block(double) override { return Wake::kRefused; }
  [[nodiscard]] bool can_block() const override { return false; }

 private:
  OpSlot* slot_;
};

}  // namespace

Wake OpSlot::wait_turn(lua_State* L, Runtime* rt, double timeout, const char* what) {
  if (try_take(caller(L, rt))) return Wake::kReady;
  if (timeout == 0.0) return Wake::kTimeout;  // a call that must not wait finds it busy
  TurnWait w(this);
  WaitSpec spec;
  spec.timeout = timeout;
  spec.what = what;
  spec.external = false;
  return wait(L, rt, w, spec);
}

void OpSlot::enqueue(Task* t) {
  if (tail_) {
    t->next_waiter = tail_->next_waiter;
    tail_->next_waiter = t;
  } else {
    t->next_waiter = t;
  }
  tail_ = t;
}

void OpSlot::release_owner(Runtime* rt, Task* me) {
  if (owner_ != me) return;
  hand_over(rt, me);
}

void OpSlot::hand_over(Runtime* rt, Task* me) {
  if (me != thread() && me->held == this) me->held = nullptr;
  Task* next = head();
  owner_ = next;
  if (!next) return;
  // Hand over: the next task owns the slot from now on, before it even runs, so nobody can
  // come in between.
  if (next == tail_) {
    tail_ = nullptr;
  } else {
    tail_->next_waiter = next->next_waiter;
  }
  next->next_waiter = nullptr;
  if (!next->held) next->held = this;
  rt->wake(next, Wake::kReady);
}

void OpSlot::detach(Task* t) {
  if (!tail_) return;
  Task* prev = tail_;
  do {
    Task* p = prev->next_waiter;
    if (p == t) {
      if (p == prev) {
        tail_ = nullptr;  // it was the only one
      } else {
        prev->next_waiter = p->next_waiter;
        if (tail_ == p) tail_ = prev;
      }
      p->next_waiter = nullptr;
      return;
    }
    prev = p;
  } while (prev != tail_);
}

void OpSlot::close(Runtime* rt) {
  // The owner waits in the object (on its descriptor or a lookup it started): end that wait.
  if (owner_ && owner_ != thread() && owner_->state == TaskState::kWaiting &&
      owner_->source != this) {
    rt->wake(owner_, Wake::kClosed);
  }
  while (Task* t = head())
    rt->wake(t, Wake::kClosed);  // each wake detaches it from the queue
}

void OpSlot::forget(Runtime* rt) {
  close(rt);
  if (owner_ && owner_ != thread() && owner_->held == this) owner_->held = nullptr;
  owner_ = nullptr;
}

}  // namespace uvs::loop
