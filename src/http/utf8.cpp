// utf8.cpp: see utf8.hpp. Layer: pure.
#include "http/utf8.hpp"

namespace uvs::http {

bool Utf8Checker::feed(const void* data, size_t n, size_t* bad) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (need_ == 0xff) {
    if (bad) *bad = 0;
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = p[i];
    if (need_ > 0) {
      if (c < lo_ || c > hi_) {
        need_ = 0xff;
        if (bad) *bad = i;
        return false;
      }
      --need_;
      lo_ = 0x80;
      hi_ = 0xbf;
      continue;
    }
    if (c < 0x80) continue;
    // The second byte's range rules out overlong forms (E0, F0), surrogates (ED) and code
    // points above U+10FFFF (F4) (RFC 3629 section 4).
    if (c >= 0xc2 && c <= 0xdf) {
      need_ = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      need_ = 2;
      if (c == 0xe0) lo_ = 0xa0;
      if (c == 0xed) hi_ = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need_ = 3;
      if (c == 0xf0) lo_ = 0x90;
      if (c == 0xf4) hi_ = 0x8f;
    } else {
      need_ = 0xff;
      if (bad) *bad = i;
      return false;
    }
  }
  return true;
}

}  // namespace uvs::http
