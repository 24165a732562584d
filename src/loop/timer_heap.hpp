// timer_heap.hpp: an intrusive binary min-heap of deadlines.
// Layer: pure (no lua.h, no uv.h).
//
// The scheduler keeps one entry per waiting task instead of one libuv timer per task: the heap
// costs a few bytes per task, and a single uv_timer_t is armed for its earliest entry. Entries
// with the same due time come out in the order they were pushed (a sequence number breaks ties),
// so tasks that sleep for the same time wake in the order they went to sleep.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace uvs::loop {

// What a type needs to live in the heap: embed one of these.
// 16 bytes: every task is one. The push order wraps around at 2^32; it only orders nodes due at
// the same nanosecond, so it is compared as a difference.
struct HeapNode {
  static constexpr uint32_t kNotQueued = UINT32_MAX;
  uint64_t due = 0;  // absolute time, nanoseconds on the monotonic clock
  uint32_t seq = 0;  // tie-breaker: push order
  uint32_t index = kNotQueued;
  [[nodiscard]] bool queued() const { return index != kNotQueued; }
};

class TimerHeap {
 public:
  // `first_seq` is the first push's number (tests start it near the wrap).
  explicit TimerHeap(uint32_t first_seq = 0) : next_seq_(first_seq) {}

  [[nodiscard]] bool empty() const { return nodes_.empty(); }
  [[nodiscard]] size_t size() const { return nodes_.size(); }
  [[nodiscard]] HeapNode* top() const { return nodes_.empty() ? nullptr : nodes_.front(); }

  // Makes room for `n` nodes, so that push() never allocates (and so never throws) while at
  // most that many are queued. False when memory is exhausted.
  [[nodiscard]] bool reserve(size_t n) noexcept;
  // Adds `n` with the given due time; if it is already queued it is moved. Allocates only
  // beyond the room reserve() made.
  void push(HeapNode* n, uint64_t due);
  // Removes `n` if it is queued; harmless otherwise.
  void remove(HeapNode* n);
  // Removes and returns the earliest node, or nullptr.
  HeapNode* pop();

 private:
  [[nodiscard]] static bool before(const HeapNode* a, const HeapNode* b) {
    return a->due < b->due || (a->due == b->due && static_cast<int32_t>(a->seq - b->seq) < 0);
  }
  void sift_up(size_t i);
  void sift_down(size_t i);
  void place(size_t i, HeapNode* n) {
    nodes_[i] = n;
    n->index = static_cast<uint32_t>(i);
  }

  std::vector<HeapNode*> nodes_;
  uint32_t next_seq_;
};

}  // namespace uvs::loop
