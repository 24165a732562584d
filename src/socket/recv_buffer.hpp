// recv_buffer.hpp: the receive buffer of a stream socket and the pool that feeds it.
// Layer: pure (no lua.h, no uv.h).
//
// A connection holds storage only while it has unread bytes: when a receive drains the buffer,
// the block goes back to a per-loop pool, so ten thousand idle connections hold no receive
// memory, and a busy connection takes the same block back on its next read without calling
// malloc. Blocks come in power-of-two size classes, from 256 bytes (a short message read ahead
// for a waiting task costs only that) up to 1 MiB (large receives such as receive(65536) or "*a"
// are pooled too); anything larger goes straight to the C allocator. The pool keeps at most
// kMaxCachedBytes, so a burst does not leave memory parked in it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uvs::socket {

class BufferPool {
 public:
  static constexpr size_t kMinBlock = 256;
  static constexpr int kClasses = 13;                  // 256 bytes .. 1 MiB
  static constexpr size_t kMaxCachedBytes = 2u << 20;  // bytes kept in free lists in total
  static constexpr size_t kMaxCachedBlocks = 64;       // blocks kept per size class
  static constexpr size_t kReadChunk = 8192;           // room offered to a plain recv()
  // The largest block take() can round up to: the largest power of two no object may exceed
  // (PTRDIFF_MAX), 2^62 on 64-bit machines. A larger size is refused without asking malloc.
  static constexpr size_t kMaxBlock = (~size_t{0} >> 2) + 1;

  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool();

  // Returns a block of at least `min_size` bytes; its real capacity is stored in `*cap`.
  // Returns nullptr when memory is exhausted or `min_size` exceeds kMaxBlock.
  [[nodiscard]] char* take(size_t min_size, size_t* cap);
  // Gives back a block obtained from take() with the capacity take() reported.
  void give(char* block, size_t cap);

  [[nodiscard]] size_t cached_bytes() const { return cached_bytes_; }

 private:
  // The size class of a block of capacity `cap`, or -1 if it is not one of the pooled sizes.
  [[nodiscard]] static int class_of(size_t cap);
  // Free blocks are kept in intrusive lists (each free block starts with the next one's
  // address), so that giving a block back never allocates.
  char* free_[kClasses] = {};
  uint8_t count_[kClasses] = {};
  size_t cached_bytes_ = 0;
};

class RecvBuffer {
 public:
  RecvBuffer() = default;
  RecvBuffer(const RecvBuffer&) = delete;
  RecvBuffer& operator=(const RecvBuffer&) = delete;

  [[nodiscard]] size_t size() const { return last_ - first_; }
  [[nodiscard]] bool empty() const { return first_ == last_; }
  [[nodiscard]] const char* data() const { return data_ + first_; }
  [[nodiscard]] char* mutable_data() { return data_ + first_; }
  [[nodiscard]] size_t capacity() const { return cap_; }

  // Makes room for at least `want` (> 0) more bytes and returns where to write them; the room
  // available, possibly more than `want`, goes to `*room`. Returns nullptr when out of memory
  // (a size that cannot be allocated included); the buffer is then unchanged.
  [[nodiscard]] char* prepare(BufferPool& pool, size_t want, size_t* room);
  // Records that `n` bytes were written at the pointer prepare() returned.
  void commit(size_t n) { last_ += n; }
  // Drops `n` bytes from the front; gives the storage back when nothing is left.
  void consume(BufferPool& pool, size_t n);
  // Gives the storage back whatever it holds.
  void release(BufferPool& pool);

 private:
  char* data_ = nullptr;
  size_t cap_ = 0;
  size_t first_ = 0;
  size_t last_ = 0;
};

}  // namespace uvs::socket
