// http_utf8_test.cpp: the incremental UTF-8 checker (src/http/utf8.hpp): every boundary of
// the encoding, every kind of invalid sequence, and text cut anywhere.
#include <catch2/catch.hpp>
#include <string>

#include "http/utf8.hpp"

using namespace uvs::http;

namespace {

// 1: valid and complete, 0: valid so far but cut short, -1: invalid.
int check(const std::string& s) {
  Utf8Checker c;
  c.reset();
  if (!c.feed(s.data(), s.size())) return -1;
  return c.complete() ? 1 : 0;
}

}  // namespace

TEST_CASE("valid UTF-8, including every boundary code point", "[http][utf8]") {
  for (const char* s :
       {"", "plain ASCII", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", "\xf0\x9f\x98\x80",
        "\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"}) {
    INFO(s);
    CHECK(check(s) == 1);
  }
  CHECK(check(std::string("a\0b", 3)) == 1);
}

TEST_CASE("invalid UTF-8 is refused at the first bad byte", "[http][utf8]") {
  for (const char* s : {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf",
                        "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",
                        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xfe", "\xc2\x41",
                        "\xe1\x80\x41", "\xf1\x80\x80\xc0", "a\xc2\xc2"}) {
    INFO(s);
    CHECK(check(s) == -1);
  }
  Utf8Checker c;
  c.reset();
  size_t bad = 99;
  CHECK_FALSE(c.feed("ab\xe0\x80", 4, &bad));
  CHECK(bad == 3);
  CHECK_FALSE(c.feed("a", 1));  // failed until reset
  c.reset();
  CHECK(c.feed("a", 1));
}

TEST_CASE("text cut short is valid so far but not complete", "[http][utf8]") {
  CHECK(check("\xc2") == 0);
  CHECK(check("\xe2\x82") == 0);
  CHECK(check("\xf0\x9f\x98") == 0);
}

TEST_CASE("every split gives the same verdict", "[http][utf8][split]") {
  const std::string texts[] = {"a\xce\xba\xe1\xbd\xb9\xf0\x9f\x98\x80z\xf4\x8f\xbf\xbf",
                               "ok\xed\xa0\x80", "\xf0\x9f\x98", "ab\xe0\x9f\x80"};
  for (const std::string& s : texts) {
    const int whole = check(s);
    for (size_t i = 0; i <= s.size(); ++i) {
      for (size_t j = i; j <= s.size(); ++j) {
        Utf8Checker c;
        c.reset();
        const bool ok = c.feed(s.data(), i) && c.feed(s.data() + i, j - i) &&
                        c.feed(s.data() + j, s.size() - j);
        const int got = !ok ? -1 : c.complete() ? 1 : 0;
        REQUIRE(got == whole);
      }
    }
  }
}
