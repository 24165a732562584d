// recv_buffer_test.cpp: the receive buffer and its pool.
#include "socket/recv_buffer.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using uvs::socket::BufferPool;
using uvs::socket::RecvBuffer;

namespace {
void put(BufferPool& pool, RecvBuffer& buf, const std::string& s) {
  size_t room = 0;
  char* at = buf.prepare(pool, s.size(), &room);
  REQUIRE(at != nullptr);
  REQUIRE(room >= s.size());
  std::memcpy(at, s.data(), s.size());
  buf.commit(s.size());
}
std::string contents(const RecvBuffer& buf) { return std::string(buf.data(), buf.size()); }
}  // namespace

TEST_CASE("an empty buffer holds no storage", "[recv_buffer]") {
  BufferPool pool;
  RecvBuffer buf;
  CHECK(buf.capacity() == 0);
  put(pool, buf, "hello");
  CHECK(buf.capacity() == BufferPool::kMinBlock);
  buf.consume(pool, 5);
  CHECK(buf.empty());
  CHECK(buf.capacity() == 0);
  CHECK(pool.cached_bytes() == BufferPool::kMinBlock);  // the block went back to the pool
}

TEST_CASE("drained blocks are reused without new allocations", "[recv_buffer]") {
  BufferPool pool;
  RecvBuffer a, b;
  put(pool, a, "x");
  const char* first = a.data();
  a.consume(pool, 1);
  put(pool, b, "y");
  CHECK(b.data() == first);
  CHECK(pool.cached_bytes() == 0);
  b.release(pool);
}

TEST_CASE("the buffer grows and keeps unread bytes", "[recv_buffer]") {
  BufferPool pool;
  RecvBuffer buf;
  std::string big(20000, 'a');
  put(pool, buf, "head:");
  put(pool, buf, big);
  CHECK(buf.size() == 5 + big.size());
  CHECK(buf.capacity() >= buf.size());
  CHECK(contents(buf).substr(0, 5) == "head:");
  buf.consume(pool, 5);
  CHECK(contents(buf) == big);
  buf.release(pool);
}

TEST_CASE("consumed space at the front is reused before growing", "[recv_buffer]") {
  BufferPool pool;
  RecvBuffer buf;
  put(pool, buf, std::string(8000, 'x'));
  const size_t cap = buf.capacity();
  buf.consume(pool, 7990);
  put(pool, buf, std::string(5000, 'y'));
  CHECK(buf.capacity() == cap);  // compacted, not grown
  CHECK(contents(buf) == std::string(10, 'x') + std::string(5000, 'y'));
  buf.release(pool);
}

TEST_CASE("the pool bounds what it keeps", "[recv_buffer]") {
  BufferPool pool;
  std::vector<RecvBuffer> bufs(2000);
  for (auto& b : bufs)
    put(pool, b, "z");
  for (auto& b : bufs)
    b.release(pool);
  CHECK(pool.cached_bytes() <= BufferPool::kMaxCachedBytes);
}

TEST_CASE("blocks beyond the largest class are not cached", "[recv_buffer]") {
  BufferPool pool;
  size_t cap = 0;
  char* block = pool.take(3u << 20, &cap);
  REQUIRE(block);
  CHECK(cap >= (3u << 20));
  pool.give(block, cap);
  CHECK(pool.cached_bytes() == 0);
}

// receive(n) with n at or above 2^63 asks the pool for that many bytes; doubling the block size
// past the top bit of size_t used to wrap to 0 and loop for ever.
TEST_CASE("a size that cannot be allocated fails at once", "[recv_buffer]") {
  BufferPool pool;
  const size_t max = std::numeric_limits<size_t>::max();
  for (size_t want : {BufferPool::kMaxBlock, BufferPool::kMaxBlock + 1, size_t{1} << 63,
                      (size_t{1} << 63) + 4096, max / 4 * 3, max - 1, max}) {
    size_t cap = 12345;
    CHECK(pool.take(want, &cap) == nullptr);
    CHECK(cap == 12345);  // untouched on failure
  }
  CHECK(pool.cached_bytes() == 0);
}

TEST_CASE("a huge prepare fails and leaves the buffered bytes alone", "[recv_buffer]") {
  BufferPool pool;
  RecvBuffer buf;
  put(pool, buf, "unread");
  const size_t cap = buf.capacity();
  const size_t max = std::numeric_limits<size_t>::max();
  for (size_t want : {BufferPool::kMaxBlock, BufferPool::kMaxBlock + 1, max - 3, max}) {
    size_t room = 0;
    // max - 3 plus the 6 buffered bytes wraps around to 2: it must not be served as 2 bytes.
    CHECK(buf.prepare(pool, want, &room) == nullptr);
    CHECK(buf.capacity() == cap);
    CHECK(contents(buf) == "unread");
  }
  put(pool, buf, "!");  // still usable
  CHECK(contents(buf) == "unread!");
  buf.release(pool);
}
