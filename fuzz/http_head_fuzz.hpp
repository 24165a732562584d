// http_head_fuzz.hpp: the body of the request and response fuzz targets.
//
// Input: byte 0 picks the cuts, byte 1 the limits (and, for a response, whether it answers
// HEAD); the rest is the message. The parse of the whole message, of the cut message and of
// the message byte by byte must agree exactly, consume no more than they were given, stop
// a complete head right after its CRLF CRLF, and keep to every limit.
#pragma once

#include <string>
#include <string_view>

#include "fuzz_split.hpp"
#include "http/parser.hpp"

namespace fuzz {

using namespace uvs::http;

struct HeadOutcome {
  Status status;
  Error error;
  size_t consumed;
  std::string head;
  bool operator==(const HeadOutcome& o) const {
    return status == o.status && error == o.error && consumed == o.consumed && head == o.head;
  }
};

inline std::string describe(const HeadParser& p) {
  std::string s;
  s += p.method();
  s += '\n';
  s += p.target();
  s += '\n';
  s += std::to_string(p.version_major() * 10 + p.version_minor()) + " " +
       std::to_string(p.status()) + "\n";
  s += p.reason();
  s += '\n';
  for (uint32_t i = 0; i < p.field_count(); ++i) {
    s += p.name(i);
    s += '\0';
    s += p.lower_name(i);
    s += '\0';
    s += p.value(i);
    s += '\n';
  }
  s += std::to_string(static_cast<int>(p.framing())) + " " + std::to_string(p.content_length()) +
       " " + std::to_string(p.keep_alive()) + std::to_string(p.expect_continue()) + " ";
  s += p.upgrade();
  return s;
}

inline void check_limits(const HeadParser& p, std::string_view msg, size_t consumed) {
  const Limits& l = p.limits();
  FUZZ_CHECK(consumed >= 4 && msg.substr(consumed - 4, 4) == "\r\n\r\n");
  FUZZ_CHECK(p.field_count() <= l.max_headers);
  size_t bytes = 0;
  for (uint32_t i = 0; i < p.field_count(); ++i) {
    const size_t line = p.name(i).size() + 1 + p.value(i).size();
    FUZZ_CHECK(line <= l.max_header_line);
    FUZZ_CHECK(p.lower_name(i).size() == p.name(i).size());
    for (size_t k = 0; k < p.name(i).size(); ++k) {
      FUZZ_CHECK(to_lower(p.name(i)[k]) == p.lower_name(i)[k]);
    }
    bytes += line + 2;
  }
  FUZZ_CHECK(bytes <= l.max_header_bytes);
  if (p.kind() == Kind::kRequest) {
    FUZZ_CHECK(p.method().size() + p.target().size() + 10 <= l.max_start_line);
    // the path is a piece of the target, without its query
    const std::string_view target = p.target();
    const std::string_view path = request_path(target);
    FUZZ_CHECK(path.data() >= target.data() &&
               path.data() + path.size() <= target.data() + target.size());
    FUZZ_CHECK(path.find('?') == std::string_view::npos);
    FUZZ_CHECK(path == target.substr(0, target.find('?')) || path[0] == '/');
  } else {
    FUZZ_CHECK(p.status() >= 100 && p.status() <= 599);
  }
  FUZZ_CHECK(p.version_major() == 1);
  if (p.framing() != Framing::kLength) FUZZ_CHECK(p.content_length() == 0);
  FUZZ_CHECK(p.content_length() <= uint64_t{INT64_MAX});
}

inline HeadOutcome feed(HeadParser& p, std::string_view msg, const std::vector<size_t>& cuts) {
  HeadOutcome o{Status::kNeedMore, Error::kNone, 0, {}};
  size_t at = 0;
  for (size_t k = 0; k <= cuts.size(); ++k) {
    const size_t end = k < cuts.size() ? cuts[k] : msg.size();
    size_t used = 0;
    o.status = p.feed(msg.data() + at, end - at, &used);
    FUZZ_CHECK(used <= end - at);
    o.consumed += used;
    if (o.status != Status::kNeedMore) break;
    FUZZ_CHECK(used == end - at);
    at = end;
  }
  FUZZ_CHECK(o.consumed == p.head_bytes());
  FUZZ_CHECK(o.consumed <= msg.size());
  o.error = p.error();
  FUZZ_CHECK((o.status == Status::kError) == (o.error != Error::kNone));
  if (o.status == Status::kComplete) {
    check_limits(p, msg, o.consumed);
    o.head = describe(p);
  }
  return o;
}

inline int run_head(Kind kind, const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t seed = data[0];
  const uint8_t pick = data[1];
  const std::string_view msg(reinterpret_cast<const char*>(data + 2), size - 2);
  Limits limits;
  if (pick & 1) {
    // Small limits, so that every limit is reached often.
    limits.max_start_line = 8 + (pick >> 1) % 40;
    limits.max_header_line = 4 + (pick >> 2) % 30;
    limits.max_headers = (pick >> 3) % 6;
    limits.max_header_bytes = 10 + (pick >> 4) * 6;
  }
  const bool head = kind == Kind::kResponse && (pick & 2);
  Scoped<HeadParser> p;
  p.init(kind, limits);
  p.reset(head);
  const HeadOutcome whole = feed(p, msg, {});
  p.reset(head);  // the same parser again: its storage is reused
  const HeadOutcome cut = feed(p, msg, cuts_for(seed, msg.size()));
  FUZZ_CHECK(cut == whole);
  if (msg.size() <= 4096) {
    p.reset(head);
    FUZZ_CHECK(feed(p, msg, cuts_for(0, msg.size())) == whole);
  }
  return 0;
}

}  // namespace fuzz
