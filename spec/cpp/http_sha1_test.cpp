// http_sha1_test.cpp: SHA-1 (src/http/sha1.hpp) against the FIPS 180 examples, fed whole and
// in pieces.
#include <catch2/catch.hpp>
#include <string>

#include "http/sha1.hpp"

using namespace uvs::http;

namespace {

std::string hex(const uint8_t* d, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[d[i] >> 4];
    s += digits[d[i] & 15];
  }
  return s;
}

std::string digest(const std::string& s) {
  uint8_t d[Sha1::kDigestSize];
  sha1(s, d);
  return hex(d, sizeof(d));
}

}  // namespace

TEST_CASE("SHA-1 matches the FIPS 180 examples", "[http][sha1]") {
  CHECK(digest("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(digest("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(digest("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
               "klmnopqrlmnopqrsmnopqrstnopqrstu") == "a49b2446a02c645bf419f995b67091253a04a259");
  CHECK(digest(std::string(1000000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  CHECK(digest("The quick brown fox jumps over the lazy dog") ==
        "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

TEST_CASE("SHA-1 gives the same digest whatever the pieces", "[http][sha1]") {
  // Lengths around the padding boundaries (55, 56, 63, 64 bytes) and several blocks.
  for (size_t len : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 300u}) {
    std::string s;
    for (size_t i = 0; i < len; ++i)
      s += static_cast<char>('a' + i % 26);
    const std::string whole = digest(s);
    for (size_t step : {1u, 3u, 63u, 64u, 65u}) {
      Sha1 h;
      for (size_t at = 0; at < s.size(); at += step)
        h.update(s.substr(at, step));
      uint8_t d[Sha1::kDigestSize];
      h.finish(d);
      INFO(len << " bytes in steps of " << step);
      CHECK(hex(d, sizeof(d)) == whole);
    }
  }
  Sha1 h;
  h.update("garbage");
  h.reset();
  h.update("abc");
  uint8_t d[Sha1::kDigestSize];
  h.finish(d);
  CHECK(hex(d, sizeof(d)) == "a9993e364706816aba3e25717850c26c9cd0d89d");
}
