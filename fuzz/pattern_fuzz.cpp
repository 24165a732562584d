// pattern_fuzz.cpp: the receive-pattern matcher and the receive buffer under arbitrary chunking.
// fuzz-link: net_core
//
// The input is a script: a stream of bytes, a sequence of receives (lines, counts, "*a"), the
// sizes of the pieces the bytes arrive in, where a receive gives up early (a timeout) and which
// of stream.cpp's two read paths each piece takes (in place, or through a scratch area and an
// exact prepare). The harness drives Matcher, RecvBuffer and BufferPool the way stream.cpp's
// receive does and checks, besides the sanitizers:
//   - every match is well formed (a line ends at its first LF, a count has its length);
//   - the bytes handed out (results and partial results, before CR removal) followed by what is
//     still buffered are exactly the bytes fed, in order;
//   - strip_cr removes every CR and nothing else;
//   - without timeouts the results do not depend on the chunking: one piece, single bytes and
//     the input's pieces all give what a plain string model gives;
//   - a receive of a count that cannot be allocated (up to 2^64 - 1) fails at once;
//   - receiveany gives between 1 and its maximum bytes, and a line or "*a" with a maxsize never
//     gives more than the maxsize, failing with exactly its first maxsize bytes when passed.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "invariant.hpp"
#include "socket/pattern.hpp"
#include "socket/recv_buffer.hpp"

using uvs::fuzz::fail;
using uvs::socket::BufferPool;
using uvs::socket::Match;
using uvs::socket::Matcher;
using uvs::socket::Pattern;
using uvs::socket::PatternKind;
using uvs::socket::RecvBuffer;

namespace {

// What one receive gave back: success with the result, or failure with the partial result.
struct Outcome {
  bool ok;
  std::string data;  // after CR removal for lines
  bool operator==(const Outcome& o) const { return ok == o.ok && data == o.data; }
};

std::string without_cr(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != '\r') out += c;
  }
  return out;
}

// The plain model: each receive over the whole stream, the peer having closed after it.
std::vector<Outcome> model(const std::string& in, const std::vector<Pattern>& patterns) {
  std::vector<Outcome> out;
  size_t pos = 0;
  for (const Pattern& p : patterns) {
    const size_t n = in.size() - pos;
    switch (p.kind) {
      case PatternKind::kLine: {
        const size_t lf = in.find('\n', pos);
        if (lf == std::string::npos) {
          out.push_back({false, without_cr(in.substr(pos))});
          pos = in.size();
        } else {
          out.push_back({true, without_cr(in.substr(pos, lf - pos))});
          pos = lf + 1;
        }
        break;
      }
      case PatternKind::kCount:
        if (n >= std::max<size_t>(p.count, 1)) {
          out.push_back({true, in.substr(pos, p.count)});
          pos += p.count;
        } else {
          out.push_back({false, in.substr(pos)});
          pos = in.size();
        }
        break;
      case PatternKind::kAll:
        out.push_back({n > 0, in.substr(pos)});
        pos = in.size();
        break;
      case PatternKind::kAny:
        fail("receiveany's result depends on the chunking: not in the model's sequence");
    }
  }
  return out;
}

// How the bytes arrive: piece sizes (cycled), whether a piece goes through the scratch area, and
// the points where the current receive times out.
struct Arrival {
  std::vector<size_t> pieces;
  std::vector<bool> scratch;
  std::vector<bool> timeouts;  // consulted once per wait, cycled; empty: never
  size_t next_piece = 0;
  size_t next_wait = 0;

  size_t piece() {
    const size_t n = pieces.empty() ? SIZE_MAX : pieces[next_piece % pieces.size()];
    return n;
  }
  bool through_scratch() const { return !scratch.empty() && scratch[next_piece % scratch.size()]; }
  bool times_out() {
    if (timeouts.empty()) return false;
    return timeouts[next_wait++ % timeouts.size()];
  }
};

// The stream side: a buffer fed from `in`, and what has been handed out so far.
class Stream {
 public:
  Stream(BufferPool& pool, const std::string& in) : pool_(pool), in_(in) {}
  ~Stream() { buf_.release(pool_); }

  // One receive, as receive_k does it. Returns false when a prepare failed (out of memory).
  Outcome receive(const Pattern& p, Arrival& arrival) {
    matcher_.reset(p);
    while (true) {
      Match m;
      if (matcher_.complete(buf_.data(), buf_.size(), &m)) {
        check_match(p, m);
        return {true, hand_out(m)};
      }
      if (matcher_.oversized(buf_.size())) {
        // maxsize passed: the first `limit` bytes go out as the partial result.
        const Match over = matcher_.over();
        CHECK(over.result == p.limit && over.consume <= buf_.size());
        return {false, hand_out(over)};
      }
      if (fed_ == in_.size()) {
        // End of stream.
        if (matcher_.done_at_eof(buf_.size())) {
          const size_t n = buf_.size();
          return {true, hand_out(Match{n, n, false})};
        }
        return failed();
      }
      if (arrival.times_out()) return failed();
      if (!fill(arrival)) return failed();
    }
  }

  // The bytes handed out and the bytes still buffered, together: must be the bytes fed.
  void check_conservation() const {
    CHECK(handed_.size() + buf_.size() == fed_);
    CHECK(std::memcmp(handed_.data(), in_.data(), handed_.size()) == 0);
    CHECK(buf_.size() == 0 ||
          std::memcmp(buf_.data(), in_.data() + handed_.size(), buf_.size()) == 0);
    CHECK(buf_.capacity() >= buf_.size());
  }

 private:
  void check_match(const Pattern& p, const Match& m) const {
    CHECK(m.result <= m.consume);
    CHECK(m.consume <= buf_.size());
    const char* d = buf_.data();
    switch (p.kind) {
      case PatternKind::kLine:
        CHECK(m.strip_cr);
        CHECK(m.consume == m.result + 1);
        CHECK(d[m.result] == '\n');
        CHECK(std::memchr(d, '\n', m.result) == nullptr);
        break;
      case PatternKind::kCount:
        CHECK(!m.strip_cr);
        CHECK(m.result == p.count && m.consume == p.count);
        break;
      case PatternKind::kAll:
        fail("*a completed before the end of the stream");
      case PatternKind::kAny:
        CHECK(!m.strip_cr);
        CHECK(m.result > 0 && m.result <= p.count && m.consume == m.result);
        break;
    }
    if (p.limit) CHECK(m.result <= p.limit);
  }

  Outcome failed() {
    const Match m = matcher_.partial(buf_.size());
    CHECK(m.result == m.consume && m.consume <= buf_.size());
    return {false, hand_out(m)};
  }

  // Copies the result out (CRs removed when the match says so) and consumes it.
  std::string hand_out(const Match& m) {
    std::string raw(buf_.data(), m.result);
    handed_.append(buf_.data(), m.consume);
    std::string result = raw;
    if (m.strip_cr && !result.empty()) {
      const size_t len = uvs::socket::strip_cr(&result[0], result.size());
      result.resize(len);
      CHECK(result == without_cr(raw));
    }
    buf_.consume(pool_, m.consume);
    check_conservation();
    return result;
  }

  // One read, as stream.cpp's fill() does it: in place with room for the count still wanted (at
  // least kReadChunk), or through a scratch area and then an exact prepare.
  bool fill(Arrival& arrival) {
    const size_t left = in_.size() - fed_;
    size_t n = std::min(arrival.piece(), left);
    if (n == 0) n = 1;
    const bool scratch = arrival.through_scratch();
    arrival.next_piece++;
    size_t room = 0;
    char* at = nullptr;
    if (scratch) {
      at = buf_.prepare(pool_, n, &room);
      if (!at) return false;
      CHECK(room >= n);
    } else {
      const Pattern& p = matcher_.pattern();
      size_t want = BufferPool::kReadChunk;
      if (p.kind == PatternKind::kCount && p.count > buf_.size() + want) {
        want = p.count - buf_.size();
      }
      at = buf_.prepare(pool_, want, &room);
      if (!at) return false;
      CHECK(room >= want);
      n = std::min(n, room);
    }
    std::memcpy(at, in_.data() + fed_, n);
    buf_.commit(n);
    fed_ += n;
    check_conservation();
    return true;
  }

  BufferPool& pool_;
  const std::string& in_;
  RecvBuffer buf_;
  Matcher matcher_;
  size_t fed_ = 0;
  std::string handed_;
};

// A pattern from the script: mostly lines and small counts, sometimes a count no buffer can
// hold; in the timed sequence also receiveany and lines or "*a" with a maxsize, whose results
// depend on how the bytes arrived.
Pattern next_pattern(FuzzedDataProvider& fdp, bool timed) {
  const bool allow_huge = timed;
  if (timed) {
    switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        return Pattern{PatternKind::kAny, fdp.ConsumeIntegralInRange<size_t>(1, 20000)};
      case 1:
        return Pattern{PatternKind::kLine, 0, fdp.ConsumeIntegralInRange<size_t>(1, 300)};
      case 2:
        return Pattern{PatternKind::kAll, 0, fdp.ConsumeIntegralInRange<size_t>(1, 300)};
      default:
        break;  // the patterns of the plain sequence
    }
  }
  switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
    case 1:
    case 2:
      return Pattern{PatternKind::kLine, 0};
    case 3:
      return Pattern{PatternKind::kAll, 0};
    case 4:
      return Pattern{PatternKind::kCount, fdp.ConsumeIntegralInRange<size_t>(0, 16)};
    case 5:
      return Pattern{PatternKind::kCount, fdp.ConsumeIntegralInRange<size_t>(0, 20000)};
    case 6:
      if (allow_huge) {
        // From 2^62 to 2^64 - 1: what receive(2^63) and its neighbours turn into.
        return Pattern{PatternKind::kCount,
                       fdp.ConsumeIntegralInRange<size_t>(size_t{1} << 62, SIZE_MAX)};
      }
      return Pattern{PatternKind::kCount, fdp.ConsumeIntegralInRange<size_t>(0, 300)};
    default:
      return Pattern{PatternKind::kCount, fdp.ConsumeIntegralInRange<size_t>(0, 300)};
  }
}

void check_words(const std::string& word) {
  Pattern p;
  if (uvs::socket::parse_pattern_word(word.data(), word.size(), &p)) {
    const size_t i = word[0] == '*' ? 1 : 0;
    CHECK(i < word.size());
    CHECK(i == 1 || word.size() == 1);
    CHECK((word[i] == 'l' && p.kind == PatternKind::kLine) ||
          (word[i] == 'a' && p.kind == PatternKind::kAll));
  }
}

}  // namespace

// A count no buffer can hold reaches malloc() with a size it must refuse: let it return null, as
// the C library does, instead of reporting the request.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const std::string stream = fdp.ConsumeRandomLengthString(1 << 16);
  check_words(fdp.ConsumeRandomLengthString(8));

  // The receives: the same sequence for every chunking, without the huge counts (whose partial
  // results depend on how much was read ahead); and the sequence of the timed-out run, with them.
  std::vector<Pattern> plain, timed;
  const int receives = fdp.ConsumeIntegralInRange<int>(1, 24);
  for (int i = 0; i < receives; i++)
    plain.push_back(next_pattern(fdp, false));
  for (int i = 0; i < receives; i++)
    timed.push_back(next_pattern(fdp, true));

  Arrival arrival;
  const int pieces = fdp.ConsumeIntegralInRange<int>(0, 16);
  for (int i = 0; i < pieces; i++) {
    arrival.pieces.push_back(fdp.ConsumeBool() ? fdp.ConsumeIntegralInRange<size_t>(1, 16)
                                               : fdp.ConsumeIntegralInRange<size_t>(1, 20000));
    arrival.scratch.push_back(fdp.ConsumeBool());
  }
  Arrival with_timeouts = arrival;
  const int waits = fdp.ConsumeIntegralInRange<int>(0, 16);
  for (int i = 0; i < waits; i++)
    with_timeouts.timeouts.push_back(fdp.ConsumeBool());

  BufferPool pool;  // shared by every stream below, as a runtime's pool is
  const std::vector<Outcome> expected = model(stream, plain);
  {
    Arrival one_piece;  // everything at once
    Arrival bytes;      // a byte at a time, alternating the two read paths
    bytes.pieces = {1};
    bytes.scratch = {true, false};
    for (Arrival* a : {&arrival, &one_piece, &bytes}) {
      Stream s(pool, stream);
      for (size_t i = 0; i < plain.size(); i++) {
        const Outcome got = s.receive(plain[i], *a);
        if (!(got == expected[i])) fail("result depends on the chunking");
      }
      s.check_conservation();
    }
  }
  {
    Stream s(pool, stream);
    for (const Pattern& p : timed) {
      const Outcome got = s.receive(p, with_timeouts);
      if (p.kind == PatternKind::kCount && p.count > BufferPool::kMaxBlock) CHECK(!got.ok);
    }
    s.check_conservation();
  }
  CHECK(pool.cached_bytes() <= BufferPool::kMaxCachedBytes);
  return 0;
}
