// pattern_test.cpp: receive patterns over buffered bytes.
#include "socket/pattern.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

using namespace uvs::socket;

namespace {
Pattern word(const char* w) {
  Pattern p;
  REQUIRE(parse_pattern_word(w, std::strlen(w), &p));
  return p;
}
}  // namespace

TEST_CASE("pattern words", "[pattern]") {
  CHECK(word("*l").kind == PatternKind::kLine);
  CHECK(word("l").kind == PatternKind::kLine);
  CHECK(word("*line").kind == PatternKind::kLine);
  CHECK(word("*a").kind == PatternKind::kAll);
  CHECK(word("a").kind == PatternKind::kAll);
  Pattern p;
  CHECK_FALSE(parse_pattern_word("", 0, &p));
  CHECK_FALSE(parse_pattern_word("*", 1, &p));
  CHECK_FALSE(parse_pattern_word("*x", 2, &p));
  CHECK_FALSE(parse_pattern_word("L", 1, &p));
  CHECK_FALSE(parse_pattern_word("line", 4, &p));
}

TEST_CASE("a line completes at LF and the scan resumes where it stopped", "[pattern]") {
  Matcher m;
  m.reset(word("*l"));
  Match r;
  std::string data = "abc";
  CHECK_FALSE(m.complete(data.data(), data.size(), &r));
  data += "de\r\nrest";
  REQUIRE(m.complete(data.data(), data.size(), &r));
  CHECK(r.result == 6);
  CHECK(r.consume == 7);
  CHECK(r.strip_cr);
}

TEST_CASE("every CR in a line is dropped", "[pattern]") {
  std::string s = "li\rne3\r\r";
  const size_t n = strip_cr(&s[0], s.size());
  CHECK(s.substr(0, n) == "line3");
  std::string clean = "plain";
  CHECK(strip_cr(&clean[0], clean.size()) == 5);
}

TEST_CASE("an empty line", "[pattern]") {
  Matcher m;
  m.reset(word("l"));
  Match r;
  REQUIRE(m.complete("\n", 1, &r));
  CHECK(r.result == 0);
  CHECK(r.consume == 1);
}

TEST_CASE("a count completes with exactly that many bytes", "[pattern]") {
  Matcher m;
  m.reset(Pattern{PatternKind::kCount, 5});
  Match r;
  CHECK_FALSE(m.complete("abcd", 4, &r));
  REQUIRE(m.complete("abcdefg", 7, &r));
  CHECK(r.result == 5);
  CHECK(r.consume == 5);
  CHECK_FALSE(r.strip_cr);
}

TEST_CASE("receive(0) waits for one byte and consumes none", "[pattern]") {
  Matcher m;
  m.reset(Pattern{PatternKind::kCount, 0});
  Match r;
  CHECK_FALSE(m.complete("", 0, &r));
  REQUIRE(m.complete("x", 1, &r));
  CHECK(r.result == 0);
  CHECK(r.consume == 0);
}

TEST_CASE("\"*a\" only ends at end of stream, and needs data to succeed", "[pattern]") {
  Matcher m;
  m.reset(word("*a"));
  Match r;
  CHECK_FALSE(m.complete("lots of data\n", 13, &r));
  CHECK(m.done_at_eof(13));
  CHECK_FALSE(m.done_at_eof(0));
}

TEST_CASE("partial results on failure", "[pattern]") {
  Matcher m;
  m.reset(Pattern{PatternKind::kCount, 10});
  Match r = m.partial(4);
  CHECK(r.result == 4);
  CHECK(r.consume == 4);
  r = m.partial(25);  // bytes beyond the count stay in the buffer
  CHECK(r.result == 10);
  CHECK(r.consume == 10);
  m.reset(word("*l"));
  r = m.partial(7);
  CHECK(r.result == 7);
  CHECK(r.strip_cr);
  m.reset(word("*a"));
  CHECK(m.partial(3).consume == 3);
}
