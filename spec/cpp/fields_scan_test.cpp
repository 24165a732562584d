// fields_scan_test.cpp: a response's header block taken whole from a receive buffer.
#include "socket/fields_scan.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace uvs::socket;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

ScanResult scan(const std::string& data, Fields* fields = nullptr, size_t* consumed = nullptr,
                size_t max_line = 65536, size_t max_bytes = 1048576) {
  ScannedFields out;
  const ScanResult r = scan_fields(data.data(), data.size(), max_line, max_bytes, 64, &out);
  if (r == ScanResult::kPlain) {
    if (fields) {
      fields->clear();
      for (int i = 0; i < out.count; ++i) {
        const ScannedField& f = out.field[i];
        fields->emplace_back(data.substr(f.name, f.name_len), data.substr(f.value, f.value_len));
      }
    }
    if (consumed) *consumed = out.consumed;
  }
  return r;
}

}  // namespace

TEST_CASE("a plain block is taken whole, and only the block", "[fields_scan]") {
  const std::string block =
      "Server: nginx\r\nContent-Length: 6\r\nX-Empty:\r\nX-Spaces: \t a b \r\n\r\n";
  Fields f;
  size_t used = 0;
  REQUIRE(scan(block + "hello\n", &f, &used) == ScanResult::kPlain);
  CHECK(used == block.size());
  REQUIRE(f.size() == 4);
  CHECK(f[0] == std::make_pair(std::string("Server"), std::string("nginx")));
  CHECK(f[1] == std::make_pair(std::string("Content-Length"), std::string("6")));
  CHECK(f[2] == std::make_pair(std::string("X-Empty"), std::string("")));
  // the spaces after the colon go, the value's own (and trailing ones) stay
  CHECK(f[3] == std::make_pair(std::string("X-Spaces"), std::string("a b ")));
}

TEST_CASE("bare LF ends lines as CRLF does; an empty block is plain", "[fields_scan]") {
  Fields f;
  size_t used = 0;
  REQUIRE(scan("A: 1\nB: 2\n\nbody", &f, &used) == ScanResult::kPlain);
  CHECK(used == 11);
  CHECK(f.size() == 2);
  REQUIRE(scan("\r\nbody", &f, &used) == ScanResult::kPlain);
  CHECK(used == 2);
  CHECK(f.empty());
  REQUIRE(scan("\n", &f, &used) == ScanResult::kPlain);
  CHECK(used == 1);
}

TEST_CASE("a block not all there yet is incomplete, at any cut", "[fields_scan]") {
  const std::string block = "Server: x\r\nContent-Length: 6\r\n\r\n";
  for (size_t cut = 0; cut < block.size(); ++cut) {
    CAPTURE(cut);
    CHECK(scan(block.substr(0, cut)) == ScanResult::kIncomplete);
  }
  CHECK(scan(block) == ScanResult::kPlain);
}

TEST_CASE("an empty buffer without storage is incomplete", "[fields_scan]") {
  ScannedFields out;
  CHECK(scan_fields(nullptr, 0, 65536, 1048576, 64, &out) == ScanResult::kIncomplete);
  CHECK(out.count == 0);
}

TEST_CASE("what the line reader must decide is unusual", "[fields_scan]") {
  // a continuation line, a CR inside a line, no colon, an empty name
  CHECK(scan("A: 1\r\n folded\r\n\r\n") == ScanResult::kUnusual);
  CHECK(scan("A: 1\r\n\tfolded\r\n\r\n") == ScanResult::kUnusual);
  CHECK(scan(" A: 1\r\n\r\n") == ScanResult::kUnusual);
  CHECK(scan("A: 1\r2\r\n\r\n") == ScanResult::kUnusual);
  CHECK(scan("A: 1\r\r\n\r\n") == ScanResult::kUnusual);
  CHECK(scan("\r\r\n") == ScanResult::kUnusual);
  CHECK(scan("no colon\r\n\r\n") == ScanResult::kUnusual);
  CHECK(scan(": value\r\n\r\n") == ScanResult::kUnusual);
  // a repeated name, whatever its case
  CHECK(scan("Set-Cookie: a\r\nset-COOKIE: b\r\n\r\n") == ScanResult::kUnusual);
  // more fields than the scanner keeps
  std::string many;
  for (int i = 0; i <= ScannedFields::kMax; ++i)
    many += "F" + std::to_string(i) + ": v\r\n";
  CHECK(scan(many + "\r\n") == ScanResult::kUnusual);
  // a name longer than asked for
  CHECK(scan(std::string(65, 'n') + ": v\r\n\r\n") == ScanResult::kUnusual);
  CHECK(scan(std::string(64, 'n') + ": v\r\n\r\n") == ScanResult::kPlain);
}

TEST_CASE("the limits: a line over max_line, lines adding up past max_bytes", "[fields_scan]") {
  // "A: 12345" is 8 bytes (its CR and LF not counted)
  CHECK(scan("A: 12345\r\n\r\n", nullptr, nullptr, 8, 100) == ScanResult::kPlain);
  CHECK(scan("A: 12345\r\n\r\n", nullptr, nullptr, 7, 100) == ScanResult::kUnusual);
  CHECK(scan("A: 1234\r\nB: 5678\r\n\r\n", nullptr, nullptr, 100, 14) == ScanResult::kPlain);
  CHECK(scan("A: 1234\r\nB: 5678\r\n\r\n", nullptr, nullptr, 100, 13) == ScanResult::kUnusual);
  // a long line whose LF has not come is incomplete: the line reader, which bounds what it
  // waits for, takes it from there
  CHECK(scan("A: 1234567890", nullptr, nullptr, 4, 100) == ScanResult::kIncomplete);
}

TEST_CASE("names keep their bytes; the colon found is the first", "[fields_scan]") {
  Fields f;
  REQUIRE(scan("Odd Name\x01: a:b\r\n\r\n", &f) == ScanResult::kPlain);
  REQUIRE(f.size() == 1);
  CHECK(f[0].first == "Odd Name\x01");
  CHECK(f[0].second == "a:b");
  const std::string nul("N\0: v\0w\r\n\r\n", 11);
  REQUIRE(scan(nul, &f) == ScanResult::kPlain);
  CHECK(f[0].first == std::string("N\0", 2));
  CHECK(f[0].second == std::string("v\0w", 3));
}
