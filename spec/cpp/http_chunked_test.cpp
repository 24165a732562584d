// http_chunked_test.cpp: the chunked transfer coding decoder (src/http/chunked.hpp): decoding,
// extensions and trailers, every fault, every limit at its boundary, and the same result for
// every way of cutting the input into chunks.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "http/chunked.hpp"

using namespace uvs::http;

namespace {

struct Outcome {
  Status status = Status::kNeedMore;
  Error error = Error::kNone;
  size_t consumed = 0;
  std::string data;
  std::string trailers;

  bool operator==(const Outcome& o) const {
    return status == o.status && error == o.error && consumed == o.consumed && data == o.data &&
           trailers == o.trailers;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "status " << int(o.status) << ", error \"" << error_name(o.error) << "\", consumed "
            << o.consumed << ", data [" << o.data << "], trailers [" << o.trailers << "]";
}

// Decodes `in` cut at `cuts`, collecting the data slices, until complete or an error.
Outcome decode(const std::string& in, const ChunkedLimits& limits = {},
               const std::vector<size_t>& cuts = {}) {
  Scoped<ChunkedDecoder> d;
  d.init(limits);
  Outcome o;
  size_t at = 0;
  for (size_t k = 0;
       k <= cuts.size() && o.status != Status::kComplete && o.status != Status::kError; ++k) {
    const size_t end = k < cuts.size() ? cuts[k] : in.size();
    const char* p = in.data() + at;
    size_t n = end - at;
    for (;;) {
      const ChunkedDecoder::Step s = d.feed(p, n);
      REQUIRE(s.consumed <= n);
      o.consumed += s.consumed;
      o.status = s.status;
      if (s.status == Status::kData) {
        REQUIRE(s.data.data() >= p);
        REQUIRE(s.data.data() + s.data.size() == p + s.consumed);
        o.data += s.data;
      } else {
        REQUIRE(s.data.empty());
      }
      p += s.consumed;
      n -= s.consumed;
      if (s.status == Status::kNeedMore) REQUIRE(n == 0);
      if (s.status != Status::kData || n == 0) break;
    }
    if (o.status == Status::kData) o.status = Status::kNeedMore;
    at = end;
  }
  REQUIRE(o.consumed == d.encoded_bytes());
  REQUIRE(o.data.size() == d.body_bytes());
  o.error = d.error();
  for (uint32_t i = 0; i < d.trailer_count(); ++i) {
    o.trailers += std::string(d.trailer_name(i)) + "|" + std::string(d.trailer_lower_name(i)) +
                  "|" + std::string(d.trailer_value(i)) + "\n";
  }
  return o;
}

Error decode_error(const std::string& in, const ChunkedLimits& limits = {}) {
  const Outcome o = decode(in, limits);
  CHECK(o.status == Status::kError);
  return o.error;
}

const std::string kWiki = "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";

}  // namespace

TEST_CASE("chunks decode to their data, and the end stops the decoder", "[http][chunked]") {
  const Outcome o = decode(kWiki + "GET / HTTP/1.1\r\n");
  CHECK(o.status == Status::kComplete);
  CHECK(o.data ==
        "Wiki"
        "pedia"
        " in\r\n\r\nchunks.");
  CHECK(o.consumed == kWiki.size());
  CHECK(o.trailers.empty());
  const Outcome empty = decode("0\r\n\r\n");
  CHECK(empty.status == Status::kComplete);
  CHECK(empty.data.empty());
}

TEST_CASE("data comes back as slices of the input, one per call", "[http][chunked]") {
  Scoped<ChunkedDecoder> d;
  d.init({});
  const std::string in = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  ChunkedDecoder::Step s = d.feed(in.data(), in.size());
  REQUIRE(s.status == Status::kData);
  CHECK(s.data == "abc");
  CHECK(s.data.data() == in.data() + 3);
  CHECK(s.consumed == 6);
  s = d.feed(in.data() + 6, in.size() - 6);
  REQUIRE(s.status == Status::kData);
  CHECK(s.data == "de");
  CHECK(s.consumed == 7);
  s = d.feed(in.data() + 13, in.size() - 13);
  CHECK(s.status == Status::kComplete);
  CHECK(s.consumed == in.size() - 13);
  CHECK(d.complete());
  s = d.feed("x", 1);
  CHECK(s.status == Status::kComplete);
  CHECK(s.consumed == 0);
  // A chunk cut in the middle hands out what has arrived.
  d.reset();
  s = d.feed("a\r\n0123", 7);
  REQUIRE(s.status == Status::kData);
  CHECK(s.data == "0123");
  s = d.feed("456789\r\n", 8);
  REQUIRE(s.status == Status::kData);
  CHECK(s.data == "456789");
  s = d.feed("\r\n", 2);
  CHECK(s.status == Status::kNeedMore);
}

TEST_CASE("hex sizes in either case, with leading zeros", "[http][chunked]") {
  CHECK(decode("000A\r\n0123456789\r\n0a\r\n0123456789\r\n00\r\n\r\n").data.size() == 20);
  const std::string big(0x1f, 'z');
  CHECK(decode("1F\r\n" + big + "\r\n1f\r\n" + big + "\r\n0\r\n\r\n").data == big + big);
}

TEST_CASE("chunk extensions are checked and dropped", "[http][chunked]") {
  for (const char* line :
       {"5;name=value", "5;flag", "5;a;b;c", "5;q=\"quoted \\\"x\\\" \\\\\"", "5 ; a = b ",
        "5\t;\ta\t=\t\"\"", "5;a=\"caf\xc3\xa9\"", "5 ", "5;a ", "5;a=b\t"}) {
    INFO(line);
    const Outcome o = decode(std::string(line) + "\r\nhello\r\n0;last=1\r\n\r\n");
    CHECK(o.status == Status::kComplete);
    CHECK(o.data == "hello");
  }
}

TEST_CASE("trailers are read like fields and kept in order", "[http][chunked]") {
  const Outcome o = decode("2\r\nhi\r\n0\r\nExpires: never\r\nX-Sum:  abc \r\nx-sum: 2\r\n\r\n");
  CHECK(o.status == Status::kComplete);
  CHECK(o.trailers == "Expires|expires|never\nX-Sum|x-sum|abc\nx-sum|x-sum|2\n");
}

TEST_CASE("faulty chunk-size lines", "[http][chunked]") {
  CHECK(decode_error("\r\n") == Error::kBadChunkSize);
  CHECK(decode_error("x\r\n") == Error::kBadChunkSize);
  CHECK(decode_error("-1\r\n") == Error::kBadChunkSize);
  CHECK(decode_error(";a\r\n") == Error::kBadChunkSize);
  CHECK(decode_error("1x\r\n") == Error::kBadChunkSize);
  CHECK(decode_error("0x1\r\n") == Error::kBadChunkSize);
  CHECK(decode_error("1 2\r\n") == Error::kBadChunkSize);
  CHECK(decode_error("1\n") == Error::kBareLf);
  CHECK(decode_error("1;a\n") == Error::kBareLf);
  CHECK(decode_error("1\rx") == Error::kBareCr);
  CHECK(decode_error("1\x01\r\n") == Error::kControlByte);
  CHECK(decode_error("1;a=\"\x7f\"\r\n") == Error::kControlByte);
  const Outcome o = decode("1\r\nx\r\n12\r");
  CHECK(o.status == Status::kNeedMore);
  CHECK(o.data == "x");
}

TEST_CASE("faulty chunk extensions", "[http][chunked]") {
  for (const char* line : {"1;", "1; ", "1;=a", "1;a=", "1;a= ", "1;a=\"x", "1;a=\"x\\", "1;a=b c",
                           "1;a b", "1;a=\"x\"y", "1;(", "1;a=(", "1;a=\"\\\x80\x01\""}) {
    INFO(line);
    const Error e = decode_error(std::string(line) + "\r\nx\r\n0\r\n\r\n");
    CHECK((e == Error::kBadChunkExtension || e == Error::kControlByte));
  }
  CHECK(decode_error("1;a=\"x\"y\r\n") == Error::kBadChunkExtension);
  CHECK(decode_error("1;=a\r\n") == Error::kBadChunkExtension);
}

TEST_CASE("chunk data must end with CRLF", "[http][chunked]") {
  Outcome o = decode("1\r\nab\r\n0\r\n\r\n");
  CHECK(o.error == Error::kBadChunkEnd);
  CHECK(o.consumed == 4);
  CHECK(o.data == "a");
  CHECK(decode_error("1\r\na\n0\r\n\r\n") == Error::kBadChunkEnd);
  CHECK(decode_error("1\r\na\r\r\n") == Error::kBadChunkEnd);
  CHECK(decode_error("1\r\na\r\n0\r\n\n") == Error::kBareLf);
  CHECK(decode_error("0\r\n\r\r") == Error::kBareCr);
}

TEST_CASE("faulty trailers", "[http][chunked]") {
  CHECK(decode_error("0\r\nX: a\r\n b\r\n\r\n") == Error::kObsFold);
  CHECK(decode_error("0\r\nX : a\r\n\r\n") == Error::kSpaceBeforeColon);
  CHECK(decode_error("0\r\nX\r\n\r\n") == Error::kBadHeaderName);
  CHECK(decode_error("0\r\nX: \x01\r\n\r\n") == Error::kControlByte);
}

TEST_CASE("the chunk-size limit at its boundary, and sizes that would overflow",
          "[http][chunked][limits]") {
  ChunkedLimits l;
  l.max_chunk_size = 10;
  CHECK(decode("a\r\n0123456789\r\n0\r\n\r\n", l).status == Status::kComplete);
  l.max_chunk_size = 9;
  const Outcome o = decode("a\r\n0123456789\r\n0\r\n\r\n", l);
  CHECK(o.error == Error::kChunkTooLarge);
  CHECK(o.consumed == 0);
  CHECK(error_status(o.error) == 413);
  // The default limit is 2^63 - 1.
  CHECK(decode("7fffffffffffffff\r\n").status == Status::kNeedMore);
  CHECK(decode_error("8000000000000000\r\n") == Error::kChunkTooLarge);
  CHECK(decode_error("10000000000000000\r\n") == Error::kChunkTooLarge);
  l.max_chunk_size = UINT64_MAX;
  CHECK(decode("ffffffffffffffff\r\n", l).status == Status::kNeedMore);
  CHECK(decode("0000000000000000000000ffffffffffffffff\r\n", l).status == Status::kNeedMore);
  CHECK(decode("ffffffffffffffff0\r\n", l).error == Error::kChunkTooLarge);
}

TEST_CASE("the chunk-line limit at its boundary", "[http][chunked][limits]") {
  const std::string in = "5;abc=\"d\"\r\nhello\r\n0\r\n\r\n";
  ChunkedLimits l;
  l.max_chunk_line = 9;
  CHECK(decode(in, l).status == Status::kComplete);
  l.max_chunk_line = 8;
  const Outcome o = decode(in, l);
  CHECK(o.error == Error::kChunkLineTooLong);
  CHECK(o.consumed == 8);
  // Leading zeros count too.
  l.max_chunk_line = 4;
  CHECK(decode("0001\r\nx\r\n0\r\n\r\n", l).status == Status::kComplete);
  CHECK(decode_error("00001\r\nx\r\n0\r\n\r\n", l) == Error::kChunkLineTooLong);
}

TEST_CASE("the trailer limits at their boundaries", "[http][chunked][limits]") {
  const std::string in = "0\r\nA: 1\r\nBb: 22\r\n\r\n";
  ChunkedLimits l;
  l.max_trailers = 2;
  CHECK(decode(in, l).status == Status::kComplete);
  l.max_trailers = 1;
  CHECK(decode_error(in, l) == Error::kTooManyHeaders);
  l = {};
  l.max_trailer_line = 6;
  CHECK(decode(in, l).status == Status::kComplete);
  l.max_trailer_line = 5;
  CHECK(decode_error(in, l) == Error::kHeaderLineTooLong);
  l = {};
  l.max_trailer_bytes = 14;
  CHECK(decode(in, l).status == Status::kComplete);
  l.max_trailer_bytes = 13;
  CHECK(decode_error(in, l) == Error::kHeadersTooLarge);
}

namespace {

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> c = {
      kWiki,
      kWiki + "trailing bytes",
      "1a;ext=\"q\\\"s\" \r\nabcdefghijklmnopqrstuvwxyz\r\n3\r\n\0\r\n\r\n0\r\nT: v\r\nU:\r\n\r\n",
      "0;a=b;c\r\nTrailer-One: 1\r\n\r\n",
      // Faults.
      "3\r\nabcd\r\n",
      "3\r\nabc\r\n0\r\nX: a\r\n b\r\n\r\n",
      "3;a=\"x\r\nabc\r\n",
      "fffffffffffffffff\r\n",
      "2\r\nab\r\n1\n",
  };
  return c;
}

}  // namespace

TEST_CASE("every split gives the same data, trailers and result as the whole",
          "[http][chunked][split]") {
  std::mt19937 rng(99);
  ChunkedLimits small;
  small.max_chunk_line = 10;
  small.max_trailers = 1;
  for (const std::string& in : corpus()) {
    INFO(in);
    for (const ChunkedLimits& limits : {ChunkedLimits{}, small}) {
      const Outcome whole = decode(in, limits);
      for (size_t i = 0; i <= in.size(); ++i) {
        REQUIRE(decode(in, limits, {i}) == whole);
        for (size_t j = i; j <= in.size(); ++j)
          REQUIRE(decode(in, limits, {i, j}) == whole);
      }
      std::vector<size_t> every;
      for (size_t i = 1; i < in.size(); ++i)
        every.push_back(i);
      CHECK(decode(in, limits, every) == whole);
      for (int round = 0; round < 50; ++round) {
        std::vector<size_t> cuts;
        for (size_t at = 0;;) {
          at += rng() % 9;
          if (at >= in.size()) break;
          cuts.push_back(at);
        }
        REQUIRE(decode(in, limits, cuts) == whole);
      }
    }
  }
}
