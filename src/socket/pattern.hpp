// pattern.hpp: LuaSocket's receive patterns as a retryable matcher over buffered bytes.
// Layer: pure (no lua.h, no uv.h).
//
// The matcher never copies: it looks at the bytes in the receive buffer and says whether the
// pattern is complete and how many bytes make the result. Its only state (how far a line scan
// got) lives in the socket, so a receive that has to wait can be resumed, after a yield or a
// poll(2), exactly where it stopped.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uvs::socket {

// kAny: whatever is there, once something is (at most `count` bytes): receiveany.
enum class PatternKind : uint8_t { kLine, kAll, kCount, kAny };

struct Pattern {
  PatternKind kind = PatternKind::kLine;
  size_t count = 0;  // kCount: bytes still wanted (0 means "wait for any byte"); kAny: at most
  size_t limit = 0;  // kLine, kAll: at most this many bytes (0: no limit), from maxsize
};

// Parses a pattern word: "*l" or "l" (a line), "*a" or "a" (until closed). As in LuaSocket only
// the leading characters count, so "*line" and "*all" work too. Returns false for anything else.
[[nodiscard]] bool parse_pattern_word(const char* word, size_t len, Pattern* out);

struct Match {
  size_t result = 0;   // bytes of the buffer that form the result (before CR removal)
  size_t consume = 0;  // bytes to drop from the buffer
  bool strip_cr = false;
};

class Matcher {
 public:
  void reset(const Pattern& p) {
    pattern_ = p;
    scanned_ = 0;
  }
  [[nodiscard]] const Pattern& pattern() const { return pattern_; }

  // Looks at the `n` buffered bytes at `data`. Returns true and fills `*m` if the pattern is
  // complete; returns false if more bytes are needed, or if the limit is passed (oversized()).
  // A line is complete only if its LF comes within the limit (CRs count).
  [[nodiscard]] bool complete(const char* data, size_t n, Match* m);
  // After complete() said false: true if the `n` bytes buffered already pass the limit, so the
  // pattern can never complete within it. The call then fails with over(): the first `limit`
  // bytes, consumed, the rest staying buffered.
  [[nodiscard]] bool oversized(size_t n) const {
    return pattern_.limit && pattern_.kind != PatternKind::kCount &&
           pattern_.kind != PatternKind::kAny && n > pattern_.limit;
  }
  [[nodiscard]] Match over() const {
    return Match{pattern_.limit, pattern_.limit, pattern_.kind == PatternKind::kLine};
  }
  // The partial result when the call fails (timeout, closed, error) with `n` bytes buffered.
  [[nodiscard]] Match partial(size_t n) const;
  // At end of stream with `n` bytes buffered: true if this is a success ("*a" with data, within
  // its limit).
  [[nodiscard]] bool done_at_eof(size_t n) const {
    return pattern_.kind == PatternKind::kAll && n > 0 && !oversized(n);
  }

 private:
  Pattern pattern_;
  size_t scanned_ = 0;  // kLine: bytes known to hold no LF
};

// Removes every CR byte from [p, p + n) in place; returns the new length.
[[nodiscard]] size_t strip_cr(char* p, size_t n);

}  // namespace uvs::socket
