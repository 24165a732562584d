// parser.cpp: see parser.hpp. Layer: pure.
#include "http/parser.hpp"

#include <algorithm>

namespace uvs::http {
namespace {

constexpr uint64_t kMaxLength = uint64_t{INT64_MAX};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// 1*DIGIT up to 2^63 - 1 (what a Lua integer holds), without overflow.
bool parse_decimal(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t x = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (kMaxLength - d) / 10) return false;
    x = x * 10 + d;
  }
  *out = x;
  return true;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

uint32_t clamp(uint32_t v) { return std::min(v, kMaxLimit); }

}  // namespace

void HeadParser::init(Kind kind, const Limits& limits, Allocator alloc) {
  kind_ = kind;
  limits_.max_start_line = clamp(limits.max_start_line);
  limits_.max_header_line = clamp(limits.max_header_line);
  limits_.max_headers = clamp(limits.max_headers);
  limits_.max_header_bytes = clamp(limits.max_header_bytes);
  store_.alloc = alloc;
  reset();
}

void HeadParser::reset(bool no_body) {
  store_.clear();
  line_.start(0);
  fields_.reset();
  state_ = State::kStartLine;
  error_ = Error::kNone;
  no_body_ = no_body && kind_ == Kind::kResponse;
  blank_ = 0;
  head_bytes_ = 0;
  method_ = method_len_ = target_ = target_len_ = 0;
  reason_ = reason_len_ = upgrade_ = upgrade_len_ = 0;
  major_ = minor_ = status_ = 0;
  framing_ = Framing::kNone;
  length_ = 0;
  keep_alive_ = expect_continue_ = false;
}

Status HeadParser::fail(Error e) {
  error_ = e;
  state_ = State::kError;
  return Status::kError;
}

Status HeadParser::feed(const char* p, size_t n, size_t* consumed) {
  *consumed = 0;
  if (state_ == State::kDone) return Status::kComplete;
  if (state_ == State::kError) return Status::kError;
  size_t off = 0;
  Error e = Error::kNone;
  while (state_ == State::kStartLine) {
    // Empty lines before the start line are skipped (RFC 9112 section 2.2) but count toward
    // its limit, so that a stream of CRLF cannot go on for ever.
    const uint32_t limit = limits_.max_start_line > blank_ ? limits_.max_start_line - blank_ : 0;
    size_t u = 0;
    const LineReader::Step step = line_.feed(store_, p + off, n - off, limit, &u, &e);
    off += u;
    head_bytes_ += u;
    *consumed = off;
    switch (step) {
      case LineReader::Step::kMore:
        return Status::kNeedMore;
      case LineReader::Step::kError:
        return fail(e);
      case LineReader::Step::kTooLong:
        return fail(kind_ == Kind::kRequest ? Error::kUriTooLong : Error::kStatusLineTooLong);
      case LineReader::Step::kDone:
        break;
    }
    if (line_.length() == 0) {
      if (blank_ + 2 > limits_.max_start_line) {
        return fail(kind_ == Kind::kRequest ? Error::kUriTooLong : Error::kStatusLineTooLong);
      }
      blank_ += 2;
      line_.start(0);
      continue;
    }
    const std::string_view line = store_.view(line_.begin(), line_.length());
    e = kind_ == Kind::kRequest ? parse_request_line(line) : parse_status_line(line);
    if (e != Error::kNone) return fail(e);
    fields_.reset();
    state_ = State::kFields;
  }
  const FieldLimits fl{limits_.max_header_line, limits_.max_headers, limits_.max_header_bytes};
  size_t u = 0;
  const Status st = fields_.feed(store_, fl, p + off, n - off, &u, &e);
  off += u;
  head_bytes_ += u;
  *consumed = off;
  if (st == Status::kNeedMore) return st;
  if (st == Status::kError) return fail(e);
  e = finish();
  if (e != Error::kNone) return fail(e);
  state_ = State::kDone;
  return Status::kComplete;
}

Error HeadParser::parse_version(std::string_view v, Error malformed) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
      !is_digit(v[7])) {
    return malformed;
  }
  major_ = v[5] - '0';
  minor_ = v[7] - '0';
  // HTTP/1.x for any x is understood as the highest 1.x we speak (RFC 9110 section 2.5).
  return major_ == 1 ? Error::kNone : Error::kVersionNotSupported;
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 section 3), one SP each.
Error HeadParser::parse_request_line(std::string_view line) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return Error::kBadRequestLine;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Error::kBadRequestLine;
  if (!is_token(line.substr(0, sp1))) return Error::kBadMethod;
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty()) return Error::kBadTarget;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) return Error::kBadTarget;
  }
  const Error e = parse_version(line.substr(sp2 + 1), Error::kBadVersion);
  if (e != Error::kNone) return e;
  const uint32_t base = line_.begin();
  method_ = base;
  method_len_ = static_cast<uint32_t>(sp1);
  target_ = base + static_cast<uint32_t>(sp1 + 1);
  target_len_ = static_cast<uint32_t>(target.size());
  return Error::kNone;
}

// status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 section 4). A line
// that ends right after the code, without the SP, is taken too, as many servers send it.
Error HeadParser::parse_status_line(std::string_view line) {
  if (line.substr(0, 5) != "HTTP/") return Error::kBadStatusLine;
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return Error::kBadStatusLine;
  const Error e = parse_version(line.substr(0, sp), Error::kBadVersion);
  if (e != Error::kNone) return e;
  const std::string_view rest = line.substr(sp + 1);
  if (rest.size() < 3 || !is_digit(rest[0]) || !is_digit(rest[1]) || !is_digit(rest[2]) ||
      (rest.size() > 3 && rest[3] != ' ')) {
    return Error::kBadStatus;
  }
  status_ = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  if (status_ < 100 || status_ > 599) return Error::kBadStatus;
  if (rest.size() > 4) {
    reason_ = line_.begin() + static_cast<uint32_t>(sp + 5);
    reason_len_ = static_cast<uint32_t>(rest.size() - 4);
  }
  return Error::kNone;
}

// The fields that frame the message and steer the connection (RFC 9112 sections 6 and 9,
// RFC 9110 sections 7.2, 7.6.1, 7.8 and 10.1.1).
Error HeadParser::finish() {
  const bool request = kind_ == Kind::kRequest;
  const bool v11 = minor_ >= 1;
  bool have_length = false;
  uint64_t length = 0;
  bool have_te = false, te_bad = false, te_any = false, te_other = false, last_chunked = false;
  int chunked = 0;
  bool close = false, keep = false, conn_upgrade = false, expect = false, have_upgrade = false;
  int hosts = 0;
  Error e = Error::kNone;
  for (uint32_t i = 0; i < field_count(); ++i) {
    const std::string_view name = lower_name(i);
    const std::string_view v = value(i);
    if (name == "content-length") {
      // "42, 42" and repeated fields with one value are the same length (RFC 9110 8.6).
      for_each_element(v, [&](std::string_view el) {
        uint64_t x = 0;
        if (!parse_decimal(el, &x)) {
          e = Error::kBadContentLength;
        } else if (have_length && x != length) {
          e = Error::kConflictingLength;
        }
        have_length = true;
        length = x;
        return e == Error::kNone;
      });
      if (e != Error::kNone) return e;
    } else if (name == "transfer-encoding") {
      have_te = true;
      for_each_element(v, [&](std::string_view el) {
        if (el.empty()) return true;
        const size_t semi = el.find(';');
        const std::string_view coding = trim_ows(el.substr(0, semi));
        te_any = true;
        if (!is_token(coding)) te_bad = true;
        if (iequals(coding, "chunked")) {
          if (semi != std::string_view::npos) te_bad = true;  // chunked takes no parameters
          ++chunked;
          last_chunked = true;
        } else {
          te_other = true;
          last_chunked = false;
        }
        return true;
      });
    } else if (name == "connection") {
      for_each_element(v, [&](std::string_view el) {
        close = close || iequals(el, "close");
        keep = keep || iequals(el, "keep-alive");
        conn_upgrade = conn_upgrade || iequals(el, "upgrade");
        return true;
      });
    } else if (name == "expect") {
      for_each_element(v, [&](std::string_view el) {
        expect = expect || iequals(el, "100-continue");
        return true;
      });
    } else if (name == "host") {
      ++hosts;
    } else if (name == "upgrade" && !have_upgrade && !v.empty()) {
      have_upgrade = true;
      upgrade_ = store_.fields[i].value;
      upgrade_len_ = store_.fields[i].value_len;
    }
  }
  if (request && v11) {
    if (hosts == 0) return Error::kMissingHost;
    if (hosts > 1) return Error::kDuplicateHost;
  }
  if (have_te) {
    // Both at once is how requests are smuggled (RFC 9112 section 6.1): refuse the message.
    if (have_length) return Error::kLengthAndEncoding;
    // HTTP/1.0 has no transfer codings: its framing cannot be trusted.
    if (!v11) return Error::kBadTransferEncoding;
    if (te_bad || !te_any || chunked > 1) return Error::kBadTransferEncoding;
    if (request) {
      if (!last_chunked) {
        return te_other && chunked == 0 ? Error::kUnsupportedCoding : Error::kBadTransferEncoding;
      }
      if (te_other) return Error::kUnsupportedCoding;
    }
    framing_ = last_chunked ? Framing::kChunked : Framing::kClose;
  } else if (have_length) {
    framing_ = Framing::kLength;
    length_ = length;
  } else {
    framing_ = request ? Framing::kNone : Framing::kClose;
  }
  if (!request && (no_body_ || status_ < 200 || status_ == 204 || status_ == 304)) {
    framing_ = Framing::kNone;
    length_ = 0;
  }
  keep_alive_ = v11 ? !close : keep && !close;
  if (framing_ == Framing::kClose) keep_alive_ = false;
  expect_continue_ = request && v11 && expect;
  const bool upgrading = request ? v11 && conn_upgrade && have_upgrade : status_ == 101;
  if (!upgrading || !have_upgrade) upgrade_ = upgrade_len_ = 0;
  return Error::kNone;
}

std::string_view request_path(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path[0] == '/') return path;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(path[0])) return path;
  size_t i = 1;
  while (i < path.size() &&
         (alpha(path[i]) || digit(path[i]) || path[i] == '+' || path[i] == '-' || path[i] == '.')) {
    ++i;
  }
  if (path.substr(i, 3) != "://") return path;
  const size_t slash = path.find('/', i + 3);
  if (slash == std::string_view::npos) return path;
  return path.substr(slash);
}

}  // namespace uvs::http
