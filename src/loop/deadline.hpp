// deadline.hpp: LuaSocket's two timeout modes as pure arithmetic.
// Layer: pure (no lua.h, no uv.h). Used by every blocking or yielding call.
//
// An object carries two settings, `block` and `total` (seconds, negative = no limit). A call marks
// its start time and, each time it has to wait, asks how long it may wait now. The rules follow
// what LuaSocket 3.1 does on Unix, not what its manual says: with only a block timeout set, the
// limit runs from the start of the call, so it bounds the whole call (docs/compat.md).
#pragma once

namespace uvs::loop {

struct Timeouts {
  double block = -1.0;  // seconds; < 0 means no limit
  double total = -1.0;  // seconds; < 0 means no limit
};

class Deadline {
 public:
  Deadline() = default;
  Deadline(const Timeouts& t, double start) : t_(t), start_(start) {}

  // True when the call must never wait (block timeout exactly 0), LuaSocket's timeout_iszero.
  [[nodiscard]] bool never_wait() const { return t_.block == 0.0; }

  // Seconds the caller may still wait at time `now`: negative means no limit, 0 means the
  // deadline has passed.
  [[nodiscard]] double remaining(double now) const;

 private:
  Timeouts t_;
  double start_ = 0.0;
};

// Milliseconds to hand to poll(2) or a timer for a wait of `seconds`: -1 for no limit, and
// rounded up so that a wait never ends before the deadline it serves.
[[nodiscard]] int wait_ms(double seconds);

}  // namespace uvs::loop
