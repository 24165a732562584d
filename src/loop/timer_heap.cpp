// timer_heap.cpp: see timer_heap.hpp. Layer: pure.
#include "loop/timer_heap.hpp"

namespace uvs::loop {

bool TimerHeap::reserve(size_t n) noexcept {
  if (n <= nodes_.capacity()) return true;
  try {
    nodes_.reserve(n > 2 * nodes_.capacity() ? n : 2 * nodes_.capacity());
  } catch (...) {
    return false;
  }
  return true;
}

void TimerHeap::push(HeapNode* n, uint64_t due) {
  remove(n);
  n->due = due;
  n->seq = next_seq_++;
  nodes_.push_back(n);
  n->index = static_cast<uint32_t>(nodes_.size() - 1);
  sift_up(n->index);
}

void TimerHeap::remove(HeapNode* n) {
  if (!n->queued()) return;
  const size_t i = n->index;
  HeapNode* last = nodes_.back();
  nodes_.pop_back();
  n->index = HeapNode::kNotQueued;
  if (last == n) return;
  place(i, last);
  sift_up(i);
  sift_down(last->index);
}

HeapNode* TimerHeap::pop() {
  HeapNode* n = top();
  if (n) remove(n);
  return n;
}

void TimerHeap::sift_up(size_t i) {
  HeapNode* n = nodes_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!before(n, nodes_[parent])) break;
    place(i, nodes_[parent]);
    i = parent;
  }
  place(i, n);
}

void TimerHeap::sift_down(size_t i) {
  HeapNode* n = nodes_[i];
  const size_t count = nodes_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= count) break;
    if (child + 1 < count && before(nodes_[child + 1], nodes_[child])) child++;
    if (!before(nodes_[child], n)) break;
    place(i, nodes_[child]);
    i = child;
  }
  place(i, n);
}

}  // namespace uvs::loop
