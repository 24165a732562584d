// mime_codec_test.cpp: the pure MIME codecs (src/mime/codec.hpp): RFC 4648 and RFC 2045
// vectors, malformed input, and chunking at every boundary.
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "mime/codec.hpp"

using namespace uvs::mime;

namespace {

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng() & 0xff);
  return s;
}

// Runs a codec over `in` cut at `cuts` (ascending offsets), then finishes it.
template <class Codec>
std::string chunked(Codec codec, const std::string& in, const std::vector<size_t>& cuts,
                    bool finish) {
  std::string s;
  StringOutput out(&s);
  size_t at = 0;
  for (size_t cut : cuts) {
    codec.update(std::string_view(in).substr(at, cut - at), out);
    at = cut;
  }
  codec.update(std::string_view(in).substr(at), out);
  if constexpr (!std::is_same_v<Codec, Base64Decoder> && !std::is_same_v<Codec, QpDecoder>) {
    if (finish) codec.finish(out);
  }
  out.flush();
  return s;
}

// Splits `in` into lines (without their CRLF).
std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> lines;
  size_t at = 0;
  for (;;) {
    const size_t eol = s.find("\r\n", at);
    if (eol == std::string::npos) {
      lines.push_back(s.substr(at));
      return lines;
    }
    lines.push_back(s.substr(at, eol - at));
    at = eol + 2;
  }
}

std::string wrap_all(const std::string& in, int64_t length, bool qp) {
  std::string s;
  StringOutput out(&s);
  const int64_t left = qp ? wrap_qp(length, length, in, out) : wrap_text(length, length, in, out);
  if (wrap_needs_break(left, length)) out.put(qp ? kSoftBreak : kCrlf);
  out.flush();
  return s;
}

}  // namespace

TEST_CASE("base64 matches the RFC 4648 test vectors", "[mime][base64]") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, coded] : vectors) {
    CHECK(base64_encode(plain) == coded);
    CHECK(base64_decode(coded) == plain);
  }
  const std::string all = random_bytes(256, 1);
  CHECK(base64_decode(base64_encode(all)) == all);
}

TEST_CASE("base64 holds back an unfinished group and reports it", "[mime][base64]") {
  std::string s;
  StringOutput out(&s);
  Base64Encoder e;
  e.update("abcde", out);
  out.flush();
  CHECK(s == "YWJj");
  CHECK(e.pending() == "de");
  e.finish(out);
  out.flush();
  CHECK(s == "YWJjZGU=");
  CHECK(e.pending().empty());

  s.clear();
  Base64Decoder d;
  d.update("YW\r\nJj ZG", out);
  out.flush();
  CHECK(s == "abc");
  CHECK(d.pending() == "ZG");
}

TEST_CASE("base64 decoding skips bytes outside the alphabet", "[mime][base64]") {
  CHECK(base64_decode("Zm9v\r\nYmFy") == "foobar");
  CHECK(base64_decode("Z m9 v!@#$%^&*()") == "foo");
  CHECK(base64_decode("Zm9vYg==") == "foob");
  CHECK(base64_decode("Zm9vYg") == "foo");   // an unfinished group is dropped
  CHECK(base64_decode("Zg==Zg==") == "ff");  // padded groups may follow each other
  CHECK(base64_decode(std::string("\0\xff\x80", 3)).empty());
}

TEST_CASE("base64 gives the same result however the input is cut", "[mime][base64]") {
  for (size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 31u, 64u}) {
    const std::string data = random_bytes(n, static_cast<uint32_t>(n) + 7);
    const std::string coded = base64_encode(data);
    for (size_t i = 0; i <= n; ++i) {
      for (size_t j = i; j <= n; ++j) {
        REQUIRE(chunked(Base64Encoder(), data, {i, j}, true) == coded);
      }
    }
    for (size_t i = 0; i <= coded.size(); ++i) {
      for (size_t j = i; j <= coded.size(); ++j) {
        REQUIRE(chunked(Base64Decoder(), coded, {i, j}, false) == data);
      }
    }
  }
}

TEST_CASE("quoted-printable follows the RFC 2045 rules", "[mime][qp]") {
  // Printable ASCII except "=" stays; "=" and everything else is =XX with upper-case hex.
  CHECK(qp_encode("Hello, World! ~.") == "Hello, World! ~.");
  CHECK(qp_encode("a=b") == "a=3Db");
  CHECK(qp_encode("ma\xe7\xe3") == "ma=E7=E3");
  CHECK(qp_encode(std::string("\0\x7f\x01", 3)) == "=00=7F=01");
  // Line breaks: CRLF is the marker; a bare CR or LF is data.
  CHECK(qp_encode("a\r\nb") == "a\r\nb");
  CHECK(qp_encode("a\nb\rc") == "a=0Ab=0Dc");
  CHECK(qp_encode("a\r\nb", "=0D=0A") == "a=0D=0Ab");
  // Whitespace before a line break is escaped; elsewhere it stays.
  CHECK(qp_encode("a b\t\r\n") == "a b=09\r\n");
  CHECK(qp_encode("a  \r\n") == "a =20\r\n");
  CHECK(qp_encode(" \r \r\n") == " =0D=20\r\n");
  // At the end of the data, held-back bytes are escaped and a soft break closes the line.
  CHECK(qp_encode("end ") == "end=20=\r\n");
  CHECK(qp_encode("end\r") == "end=0D=\r\n");
  CHECK(qp_encode("end") == "end");
  // A space among the last two bytes is still held back when the data ends (as in LuaSocket).
  CHECK(qp_encode("a b") == "a=20b=\r\n");
}

TEST_CASE("quoted-printable decoding", "[mime][qp]") {
  CHECK(qp_decode("a=3Db=3db") == "a=b=b");
  CHECK(qp_decode("ma=E7=E3") == "ma\xe7\xe3");
  CHECK(qp_decode("soft=\r\nbreak") == "softbreak");
  CHECK(qp_decode("line\r\nnext") == "line\r\nnext");
  // Malformed escapes are kept as they came.
  CHECK(qp_decode("=ZZ=4g=\n1") == "=ZZ=4g=\n1");
  // Bare CR and LF, other control bytes and 8-bit bytes are dropped.
  CHECK(qp_decode("a\nb\rc\x01\xff\td") == "abc\td");
  // An escape cut by the end of the data is dropped.
  CHECK(qp_decode("abc=4") == "abc");
  const std::string all = random_bytes(1000, 3);
  CHECK(qp_decode(qp_encode(all)) == all);
  CHECK(qp_decode(qp_encode(all, "=0D=0A")) == all);
}

TEST_CASE("quoted-printable gives the same result however the input is cut", "[mime][qp]") {
  // Mostly spaces, tabs, CR and LF, where the encoder has to look ahead.
  std::string data;
  const char alphabet[] = " \t\r\n=a\xe9";
  std::mt19937 rng(11);
  for (int i = 0; i < 48; ++i)
    data += alphabet[rng() % 7];
  for (const char* marker : {"\r\n", "=0D=0A"}) {
    const std::string coded = qp_encode(data, marker);
    for (size_t i = 0; i <= data.size(); ++i) {
      for (size_t j = i; j <= data.size(); ++j) {
        REQUIRE(chunked(QpEncoder(marker), data, {i, j}, true) == coded);
      }
    }
    const std::string plain = qp_decode(coded);
    for (size_t i = 0; i <= coded.size(); ++i) {
      REQUIRE(chunked(QpDecoder(), coded, {i}, false) == plain);
    }
  }
}

TEST_CASE("quoted-printable lines are wrapped at 76 with soft breaks", "[mime][qp][wrap]") {
  const std::string coded =
      qp_encode(std::string(200, 'a') + "\xe9\xe9\xe9" + std::string(100, '=') + "\r\nshort\r\n");
  const std::string wrapped = wrap_all(coded, 76, true);
  for (const std::string& line : lines_of(wrapped)) {
    CHECK(line.size() <= 76);
    // A soft break never cuts an escape: a "=" is either the soft break or starts =XX.
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] != '=') continue;
      const bool last = i + 1 == line.size();
      CHECK((last || i + 2 < line.size()));
    }
  }
  CHECK(qp_decode(wrapped) == qp_decode(coded));
  CHECK(lines_of(wrapped)[0] == std::string(75, 'a') + "=");
  // The end of the data closes a started line with a soft break.
  CHECK(wrap_all("abc", 76, true) == "abc=\r\n");
  CHECK(wrap_all("", 76, true).empty());
}

TEST_CASE("text wrapping", "[mime][wrap]") {
  CHECK(wrap_all("abcdefgh", 3, false) == "abc\r\ndef\r\ngh\r\n");
  CHECK(wrap_all("abc", 3, false) == "abc\r\n");
  CHECK(wrap_all("ab\ncd\r\nef", 76, false) == "ab\r\ncd\r\nef\r\n");
  std::string s;
  StringOutput out(&s);
  int64_t left = wrap_text(5, 5, "abc", out);
  CHECK(left == 2);
  left = wrap_text(left, 5, "defg", out);
  out.flush();
  CHECK(s == "abcde\r\nfg");
  CHECK(left == 3);
  // A zero or negative length breaks before every byte instead of looping.
  s.clear();
  CHECK(wrap_text(0, 0, "ab", out) == -1);
  out.flush();
  CHECK(s == "\r\na\r\nb");
}

TEST_CASE("end-of-line normalisation", "[mime][eol]") {
  auto eol = [](const std::string& in, const std::vector<size_t>& cuts, const char* marker) {
    std::string s;
    StringOutput out(&s);
    int64_t ctx = 0;
    size_t at = 0;
    for (size_t cut : cuts) {
      ctx = normalize_eol(ctx, std::string_view(in).substr(at, cut - at), marker, out);
      at = cut;
    }
    (void)normalize_eol(ctx, std::string_view(in).substr(at), marker, out);
    out.flush();
    return s;
  };
  CHECK(eol("a\rb\nc\r\nd\n\re", {}, "\r\n") == "a\r\nb\r\nc\r\nd\r\ne");
  CHECK(eol("a\n\nb\r\rc", {}, "|") == "a||b||c");
  CHECK(eol("\r\n\r\n", {}, "|") == "||");
  CHECK(eol("\n\r\n\r", {}, "|") == "||");
  const std::string mixed = "x\r\n\r\ry\n\n\rz\r";
  const std::string whole = eol(mixed, {}, "|");
  for (size_t i = 0; i <= mixed.size(); ++i)
    REQUIRE(eol(mixed, {i}, "|") == whole);
  std::string s;
  StringOutput out(&s);
  CHECK(normalize_eol(0, "a\r", "\n", out) == '\r');
  CHECK(normalize_eol('\r', "\n", "\n", out) == 0);
  out.flush();
  CHECK(s == "a\n");
}

TEST_CASE("SMTP dot-stuffing", "[mime][dot]") {
  auto stuff = [](const std::string& in, const std::vector<size_t>& cuts) {
    std::string s;
    StringOutput out(&s);
    int64_t state = 2;
    size_t at = 0;
    for (size_t cut : cuts) {
      state = stuff_dots(state, std::string_view(in).substr(at, cut - at), out);
      at = cut;
    }
    (void)stuff_dots(state, std::string_view(in).substr(at), out);
    out.flush();
    return s;
  };
  CHECK(stuff("abc", {}) == "abc");
  CHECK(stuff("", {}).empty());
  CHECK(stuff("\r\n.", {}) == "\r\n..");
  CHECK(stuff(".\r\n.", {}) == "..\r\n..");
  CHECK(stuff("abcd.\r\n.", {}) == "abcd.\r\n..");
  CHECK(stuff(".\r\nStuffing.\r\n.\r\n.", {}) == "..\r\nStuffing.\r\n..\r\n..");
  CHECK(stuff("a\n.b\r.c", {}) == "a\n.b\r.c");  // only CRLF starts a line
  const std::string text = "x\r\n.\r\n..\r\n.y";
  const std::string whole = stuff(text, {});
  for (size_t i = 0; i <= text.size(); ++i)
    REQUIRE(stuff(text, {i}) == whole);
  std::string s;
  StringOutput out(&s);
  CHECK(stuff_dots(0, "a\r", out) == 1);
  CHECK(stuff_dots(1, "\n", out) == 2);
  CHECK(stuff_dots(2, "x", out) == 0);
}

TEST_CASE("output larger than the staging buffer reaches the flush callback", "[mime]") {
  const std::string data = random_bytes(100000, 5);
  const std::string coded = base64_encode(data);
  CHECK(coded.size() == (data.size() + 2) / 3 * 4);
  CHECK(base64_decode(coded) == data);
  const std::string wrapped = wrap_all(coded, 76, false);
  CHECK(base64_decode(wrapped) == data);
  for (const std::string& line : lines_of(wrapped))
    CHECK(line.size() <= 76);
}
