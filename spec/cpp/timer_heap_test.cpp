// timer_heap_test.cpp: the scheduler's deadline heap.
#include "loop/timer_heap.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <vector>

using uvs::loop::HeapNode;
using uvs::loop::TimerHeap;

TEST_CASE("nodes come out in due order", "[timer_heap]") {
  std::vector<HeapNode> nodes(1000);
  TimerHeap heap;
  std::mt19937 rng(42);
  for (auto& n : nodes)
    heap.push(&n, rng() % 500);
  uint64_t last = 0;
  size_t count = 0;
  while (HeapNode* n = heap.pop()) {
    CHECK(n->due >= last);
    CHECK_FALSE(n->queued());
    last = n->due;
    count++;
  }
  CHECK(count == nodes.size());
}

TEST_CASE("equal due times keep push order", "[timer_heap]") {
  std::vector<HeapNode> nodes(100);
  TimerHeap heap;
  for (auto& n : nodes)
    heap.push(&n, 7);
  for (auto& n : nodes)
    CHECK(heap.pop() == &n);
  CHECK(heap.empty());
}

TEST_CASE("equal due times keep push order across the wrap of the push count", "[timer_heap]") {
  std::vector<HeapNode> nodes(100);
  TimerHeap heap(UINT32_MAX - 49);
  for (auto& n : nodes)
    heap.push(&n, 7);
  CHECK(nodes.front().seq > nodes.back().seq);  // the count wrapped halfway
  for (auto& n : nodes)
    CHECK(heap.pop() == &n);
  CHECK(heap.empty());
}

TEST_CASE("removing from the middle keeps the heap ordered", "[timer_heap]") {
  std::vector<HeapNode> nodes(200);
  TimerHeap heap;
  for (size_t i = 0; i < nodes.size(); i++)
    heap.push(&nodes[i], (i * 7919) % 211);
  for (size_t i = 0; i < nodes.size(); i += 3)
    heap.remove(&nodes[i]);
  heap.remove(&nodes[0]);  // removing twice is harmless
  uint64_t last = 0;
  size_t count = 0;
  while (HeapNode* n = heap.pop()) {
    CHECK(n->due >= last);
    last = n->due;
    count++;
  }
  CHECK(count == nodes.size() - (nodes.size() + 2) / 3);
}

TEST_CASE("pushing a queued node moves it", "[timer_heap]") {
  HeapNode a, b;
  TimerHeap heap;
  heap.push(&a, 10);
  heap.push(&b, 20);
  heap.push(&a, 30);
  CHECK(heap.size() == 2);
  CHECK(heap.pop() == &b);
  CHECK(heap.pop() == &a);
}
