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

enum class PatternKind : uint8_t { kLine, kAll, kCount };

struct Pattern {
  PatternKind kind = PatternKind::kLine;
  size_t count = 0;  // kCount only: bytes still wanted (0 means "wait for any byte")
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
  // complete; returns false if more bytes are needed.
  [[nodiscard]] bool complete(const char* data, size_t n, Match* m);
  // The partial result when the call fails (timeout, closed, error) with `n` bytes buffered.
  [[nodiscard]] Match partial(size_t n) const;
  // At end of stream with `n` bytes buffered: true if this is a success ("*a" with data).
  [[nodiscard]] bool done_at_eof(size_t n) const {
    return pattern_.kind == PatternKind::kAll && n > 0;
  }

 private:
  Pattern pattern_;
  size_t scanned_ = 0;  // kLine: bytes known to hold no LF
};

// Removes every CR byte from [p, p + n) in place; returns the new length.
[[nodiscard]] size_t strip_cr(char* p, size_t n);

}  // namespace uvs::socket
