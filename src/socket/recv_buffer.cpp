// recv_buffer.cpp: see recv_buffer.hpp. Layer: pure.
#include "socket/recv_buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>

namespace uvs::socket {

namespace {

char* next_of(char* block) {
  char* next = nullptr;
  std::memcpy(&next, block, sizeof next);
  return next;
}

void set_next(char* block, char* next) { std::memcpy(block, &next, sizeof next); }

}  // namespace

BufferPool::~BufferPool() {
  for (char*& head : free_) {
    while (char* block = head) {
      head = next_of(block);
      std::free(block);  // allocated in take()
    }
  }
}

int BufferPool::class_of(size_t cap) {
  if (cap < kMinBlock || (cap & (cap - 1)) != 0) return -1;
  const int c = __builtin_ctzll(cap) - __builtin_ctzll(kMinBlock);
  return c < kClasses ? c : -1;
}

char* BufferPool::take(size_t min_size, size_t* cap) {
  size_t size = kMinBlock;
  int c = 0;
  while (size < min_size && c < kClasses) {
    size <<= 1;
    c++;
  }
  if (c < kClasses) {
    if (char* block = free_[c]) {
      free_[c] = next_of(block);
      count_[c]--;
      cached_bytes_ -= size;
      *cap = size;
      return block;
    }
  } else {
    // Beyond the largest class: round up to a power of two so that growth stays geometric.
    // Beyond kMaxBlock no allocation can succeed, and doubling past the top bit of size_t
    // would wrap to 0 and never end.
    if (min_size > kMaxBlock) return nullptr;
    while (size < min_size)
      size <<= 1;
  }
  char* block = static_cast<char*>(std::malloc(size));  // freed in give() or ~BufferPool()
  if (block) *cap = size;
  return block;
}

void BufferPool::give(char* block, size_t cap) {
  if (!block) return;
  const int c = class_of(cap);
  if (c < 0 || cached_bytes_ + cap > kMaxCachedBytes || count_[c] >= kMaxCachedBlocks) {
    std::free(block);
    return;
  }
  set_next(block, free_[c]);
  free_[c] = block;
  count_[c]++;
  cached_bytes_ += cap;
}

char* RecvBuffer::prepare(BufferPool& pool, size_t want, size_t* room) {
  if (first_ == last_) first_ = last_ = 0;
  if (cap_ - last_ < want) {
    const size_t used = last_ - first_;
    if (cap_ - used >= want && data_) {
      // Enough room once the unread bytes move to the front.
      std::memmove(data_, data_ + first_, used);
    } else {
      // used + want must not wrap around to a small size that take() would gladly give.
      if (want > std::numeric_limits<size_t>::max() - used) return nullptr;
      size_t cap = 0;
      char* block = pool.take(used + want, &cap);
      if (!block) return nullptr;
      if (used) std::memcpy(block, data_ + first_, used);
      pool.give(data_, cap_);
      data_ = block;
      cap_ = cap;
    }
    first_ = 0;
    last_ = used;
  }
  *room = cap_ - last_;
  return data_ + last_;
}

void RecvBuffer::consume(BufferPool& pool, size_t n) {
  first_ += n;
  if (first_ >= last_) release(pool);
}

void RecvBuffer::release(BufferPool& pool) {
  pool.give(data_, cap_);
  data_ = nullptr;
  cap_ = first_ = last_ = 0;
}

}  // namespace uvs::socket
