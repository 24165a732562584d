// parser.hpp: an incremental HTTP/1.1 message-head parser (RFC 9112 sections 2 to 6) for
// requests and responses.
// Layer: pure (no lua.h, no uv.h).
//
// The head may arrive cut anywhere, down to one byte per call: feed() takes each chunk, copies
// the head's bytes once into the parser's storage, and says whether more is needed, the head is
// complete (and how many bytes of this chunk it used, so that the body starts right after), or
// which fault it found. Every fault is found at the same byte whatever the cuts, so a split
// message gives the same result as the whole one.
//
// Once complete, the parser also answers what a server or client must know next: how the body
// is framed, whether the connection stays open, whether the client waits for 100 Continue, and
// whether it asks for a protocol upgrade.
//
// The parser has no destructor (see fields.hpp): its owner calls release().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/error.hpp"
#include "http/fields.hpp"

namespace uvs::http {

enum class Kind : uint8_t { kRequest, kResponse };

// How the message body is delimited (RFC 9112 section 6.3).
enum class Framing : uint8_t {
  kNone,     // no body: a request without Content-Length or Transfer-Encoding, a 1xx, 204 or 304
             // response, or a response to HEAD
  kLength,   // content_length() bytes (possibly 0)
  kChunked,  // the chunked transfer coding (see chunked.hpp)
  kClose,    // a response body that ends when the connection closes
};

// Safe defaults; each may be set from 0 to kMaxLimit.
struct Limits {
  uint32_t max_start_line = 8192;     // request or status line, without its CRLF; empty lines
                                      // before it count too
  uint32_t max_header_line = 8192;    // one field line, without its CRLF
  uint32_t max_headers = 100;         // field lines
  uint32_t max_header_bytes = 32768;  // all field lines, each with its CRLF
};

class HeadParser {
 public:
  // A request parser with the default limits and the C heap.
  HeadParser() = default;
  // Sets what to parse, the limits (clamped to kMaxLimit) and where storage comes from, then
  // resets. Call release() first if the parser already holds storage from another allocator.
  void init(Kind kind, const Limits& limits, Allocator alloc = {});
  // Makes the parser ready for the next head, keeping its storage. `no_body` (responses only)
  // says the request was HEAD, so the response has no body whatever its fields say.
  void reset(bool no_body = false);
  // Gives the storage back; reset() makes the parser usable again.
  void release() { store_.release(); }

  // Reads the next chunk of the head. kNeedMore: all of it was taken. kComplete: *consumed
  // bytes of this chunk ended the head. kError: error() says why, and *consumed stops before
  // the faulty byte (or after the line found faulty). After kComplete or kError, feed returns
  // the same status again, consuming nothing, until reset().
  [[nodiscard]] Status feed(const char* data, size_t n, size_t* consumed);

  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] const Limits& limits() const { return limits_; }
  [[nodiscard]] Error error() const { return error_; }
  [[nodiscard]] bool complete() const { return state_ == State::kDone; }
  // Bytes of the head taken so far, over every call since reset().
  [[nodiscard]] size_t head_bytes() const { return head_bytes_; }

  // The start line, valid once the head is complete.
  [[nodiscard]] std::string_view method() const { return store_.view(method_, method_len_); }
  [[nodiscard]] std::string_view target() const { return store_.view(target_, target_len_); }
  [[nodiscard]] int version_major() const { return major_; }
  [[nodiscard]] int version_minor() const { return minor_; }
  [[nodiscard]] int status() const { return status_; }
  [[nodiscard]] std::string_view reason() const { return store_.view(reason_, reason_len_); }

  // The fields, in the order received.
  [[nodiscard]] uint32_t field_count() const { return store_.fields.size(); }
  [[nodiscard]] std::string_view name(uint32_t i) const {
    return store_.view(store_.fields[i].name, store_.fields[i].name_len);
  }
  [[nodiscard]] std::string_view lower_name(uint32_t i) const {
    return store_.view(store_.fields[i].lower, store_.fields[i].name_len);
  }
  [[nodiscard]] std::string_view value(uint32_t i) const {
    return store_.view(store_.fields[i].value, store_.fields[i].value_len);
  }

  // What the fields mean, valid once the head is complete.
  [[nodiscard]] Framing framing() const { return framing_; }
  [[nodiscard]] uint64_t content_length() const { return length_; }
  [[nodiscard]] bool keep_alive() const { return keep_alive_; }
  // An HTTP/1.1 request with "Expect: 100-continue".
  [[nodiscard]] bool expect_continue() const { return expect_continue_; }
  // The Upgrade field's value when an upgrade is asked for (a request with Upgrade and
  // "Connection: upgrade", HTTP/1.1 or later) or granted (a 101 response); empty otherwise.
  [[nodiscard]] std::string_view upgrade() const { return store_.view(upgrade_, upgrade_len_); }

 private:
  enum class State : uint8_t { kStartLine, kFields, kDone, kError };

  [[nodiscard]] Error parse_request_line(std::string_view line);
  [[nodiscard]] Error parse_status_line(std::string_view line);
  [[nodiscard]] Error parse_version(std::string_view v, Error malformed);
  [[nodiscard]] Error finish();
  Status fail(Error e);

  Kind kind_ = Kind::kRequest;
  State state_ = State::kStartLine;
  Error error_ = Error::kNone;
  bool no_body_ = false;
  Limits limits_;
  Store store_;
  LineReader line_;
  FieldSection fields_;
  uint32_t blank_ = 0;  // bytes of the empty lines before the start line
  size_t head_bytes_ = 0;

  uint32_t method_ = 0, method_len_ = 0;
  uint32_t target_ = 0, target_len_ = 0;
  uint32_t reason_ = 0, reason_len_ = 0;
  uint32_t upgrade_ = 0, upgrade_len_ = 0;
  int major_ = 0, minor_ = 0, status_ = 0;
  Framing framing_ = Framing::kNone;
  uint64_t length_ = 0;
  bool keep_alive_ = false;
  bool expect_continue_ = false;
};

static_assert(std::is_trivially_destructible_v<HeadParser>);

// The path of a request-target: the target up to "?", and for an absolute-form target (scheme
// "://" authority path) the part from the path's "/" on; other targets ("*", authority-form)
// are returned up to "?" as they are. A view into `target`.
[[nodiscard]] std::string_view request_path(std::string_view target);

}  // namespace uvs::http
