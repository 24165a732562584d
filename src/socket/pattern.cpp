// pattern.cpp: see pattern.hpp. Layer: pure.
#include "socket/pattern.hpp"

#include <algorithm>
#include <cstring>

namespace uvs::socket {

bool parse_pattern_word(const char* word, size_t len, Pattern* out) {
  size_t i = (len > 0 && word[0] == '*') ? 1 : 0;
  if (i >= len) return false;
  // Without the star, accept only the one-letter spellings of io.read ("l", "a"), so that a
  // stray word such as "all right" is still rejected as LuaSocket would.
  if (i == 0 && len != 1) return false;
  switch (word[i]) {
    case 'l':
      *out = Pattern{PatternKind::kLine, 0, 0};
      return true;
    case 'a':
      *out = Pattern{PatternKind::kAll, 0, 0};
      return true;
    default:
      return false;
  }
}

bool Matcher::complete(const char* data, size_t n, Match* m) {
  switch (pattern_.kind) {
    case PatternKind::kLine: {
      // With a limit, an LF past it does not count: the line is oversized.
      const size_t end = pattern_.limit ? std::min(n, pattern_.limit + 1) : n;
      if (scanned_ >= end) return false;
      const void* lf = std::memchr(data + scanned_, '\n', end - scanned_);
      if (!lf) {
        scanned_ = end;
        return false;
      }
      const size_t at = static_cast<size_t>(static_cast<const char*>(lf) - data);
      *m = Match{at, at + 1, true};
      return true;
    }
    case PatternKind::kCount: {
      const size_t want = pattern_.count;
      // receive(0) still waits until at least one byte is there, as LuaSocket does.
      if (n < std::max<size_t>(want, 1)) return false;
      *m = Match{want, want, false};
      return true;
    }
    case PatternKind::kAll:
      return false;
    case PatternKind::kAny: {
      if (n == 0) return false;
      const size_t k = std::min(n, pattern_.count);
      *m = Match{k, k, false};
      return true;
    }
  }
  return false;
}

Match Matcher::partial(size_t n) const {
  switch (pattern_.kind) {
    case PatternKind::kLine:
      return Match{n, n, true};
    case PatternKind::kCount: {
      const size_t k = std::min(n, pattern_.count);
      return Match{k, k, false};
    }
    case PatternKind::kAll:
    case PatternKind::kAny:
      return Match{n, n, false};
  }
  return Match{};
}

size_t strip_cr(char* p, size_t n) {
  char* cr = static_cast<char*>(std::memchr(p, '\r', n));
  if (!cr) return n;
  char* out = cr;
  for (const char* in = cr; in < p + n; in++) {
    if (*in != '\r') *out++ = *in;
  }
  return static_cast<size_t>(out - p);
}

}  // namespace uvs::socket
