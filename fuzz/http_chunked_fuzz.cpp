// http_chunked_fuzz.cpp: libFuzzer target for the chunked decoder.
// fuzz-link: http_parse mime_codec
//
// Input: byte 0 picks the cuts, byte 1 the limits; the rest is the encoded body. Decoding it
// whole, cut and byte by byte must give the same data, trailers, status, fault and length
// used; data slices must lie inside the input given; no limit may be exceeded.
#include <string>
#include <string_view>

#include "fuzz_split.hpp"
#include "http/chunked.hpp"

namespace {

using namespace uvs::http;

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

Outcome decode(ChunkedDecoder& d, std::string_view in, const std::vector<size_t>& cuts,
               const ChunkedLimits& limits) {
  Outcome o;
  size_t at = 0;
  for (size_t k = 0; k <= cuts.size(); ++k) {
    const size_t end = k < cuts.size() ? cuts[k] : in.size();
    const char* p = in.data() + at;
    size_t n = end - at;
    for (;;) {
      const ChunkedDecoder::Step s = d.feed(p, n);
      FUZZ_CHECK(s.consumed <= n);
      o.consumed += s.consumed;
      o.status = s.status;
      if (s.status == Status::kData) {
        FUZZ_CHECK(!s.data.empty());
        FUZZ_CHECK(s.data.data() >= p && s.data.data() + s.data.size() == p + s.consumed);
        FUZZ_CHECK(s.data.size() <= limits.max_chunk_size);
        o.data += s.data;
      }
      p += s.consumed;
      n -= s.consumed;
      if (s.status == Status::kNeedMore) FUZZ_CHECK(n == 0);
      if (s.status != Status::kData || n == 0) break;
    }
    if (o.status == Status::kData) o.status = Status::kNeedMore;
    if (o.status == Status::kComplete || o.status == Status::kError) break;
    at = end;
  }
  FUZZ_CHECK(o.consumed <= in.size());
  FUZZ_CHECK(o.consumed == d.encoded_bytes());
  FUZZ_CHECK(o.data.size() == d.body_bytes());
  o.error = d.error();
  FUZZ_CHECK((o.status == Status::kError) == (o.error != Error::kNone));
  FUZZ_CHECK(d.trailer_count() <= limits.max_trailers);
  size_t bytes = 0;
  for (uint32_t i = 0; i < d.trailer_count(); ++i) {
    const size_t line = d.trailer_name(i).size() + 1 + d.trailer_value(i).size();
    FUZZ_CHECK(line <= limits.max_trailer_line);
    bytes += line + 2;
    o.trailers += d.trailer_lower_name(i);
    o.trailers += '\0';
    o.trailers += d.trailer_value(i);
    o.trailers += '\n';
  }
  FUZZ_CHECK(bytes <= limits.max_trailer_bytes);
  if (o.status == Status::kComplete) {
    FUZZ_CHECK(o.consumed >= 5 && in.substr(o.consumed - 2, 2) == "\r\n");
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t seed = data[0];
  const uint8_t pick = data[1];
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  ChunkedLimits limits;
  if (pick & 1) {
    limits.max_chunk_size = (pick >> 1) % 64;
    limits.max_chunk_line = 1 + (pick >> 2) % 16;
    limits.max_trailer_line = 4 + (pick >> 3) % 20;
    limits.max_trailers = (pick >> 4) % 4;
    limits.max_trailer_bytes = 8 + (pick >> 5) * 8;
  }
  Scoped<ChunkedDecoder> d;
  d.init(limits);
  const Outcome whole = decode(d, in, {}, limits);
  d.reset();
  FUZZ_CHECK(decode(d, in, fuzz::cuts_for(seed, in.size()), limits) == whole);
  if (in.size() <= 4096) {
    d.reset();
    FUZZ_CHECK(decode(d, in, fuzz::cuts_for(0, in.size()), limits) == whole);
  }
  return 0;
}
