// sha1.hpp: SHA-1 (FIPS 180-4), for the WebSocket handshake's accept key (RFC 6455 section
// 4.2.2) and nothing that needs collision resistance.
// Layer: pure (no lua.h, no uv.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace uvs::http {

class Sha1 {
 public:
  static constexpr size_t kDigestSize = 20;

  Sha1() { reset(); }
  void reset();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Writes the digest; the object must be reset() before it is used again.
  void finish(uint8_t out[kDigestSize]);

 private:
  void block(const uint8_t* p);

  uint32_t h_[5];
  uint64_t length_;  // bytes hashed
  uint8_t buf_[64];
  size_t used_;
};

// The digest of `s` in one call.
void sha1(std::string_view s, uint8_t out[Sha1::kDigestSize]);

}  // namespace uvs::http
