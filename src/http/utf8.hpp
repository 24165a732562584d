// utf8.hpp: an incremental UTF-8 checker (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF), for WebSocket text messages that arrive in fragments cut anywhere.
// Layer: pure (no lua.h, no uv.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace uvs::http {

class Utf8Checker {
 public:
  void reset() {
    need_ = 0;
    lo_ = 0x80;
    hi_ = 0xbf;
  }
  // Checks the next bytes; false at the first byte that no valid text can have there (the
  // checker then stays failed until reset). *bad, if given, is the offset of that byte.
  [[nodiscard]] bool feed(const void* data, size_t n, size_t* bad = nullptr);
  // True when the bytes so far end on a character boundary.
  [[nodiscard]] bool complete() const { return need_ == 0; }

 private:
  uint8_t need_ = 0;   // continuation bytes still expected; 0xff once failed
  uint8_t lo_ = 0x80;  // the range of the next continuation byte
  uint8_t hi_ = 0xbf;
};

}  // namespace uvs::http
