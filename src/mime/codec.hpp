// codec.hpp: the MIME content codecs behind mime.core: base64, quoted-printable, line wrapping,
// end-of-line normalisation and SMTP dot-stuffing.
// Layer: pure (no lua.h, no uv.h).
//
// Every codec is incremental: input may be cut into chunks anywhere, and feeding the chunks one
// by one gives the same output as feeding their concatenation at once. What a codec must keep
// between chunks is explicit: either a small object (the bytes of an unfinished atom, at most
// three) or an integer the caller passes back in (the wrap column, the EOL and dot contexts),
// which is how the Lua functions hand their state to the caller.
//
// Output goes through `Output`, a small staging buffer that hands full blocks to a flush
// callback. It has no destructor, so a flush callback may raise a Lua error (longjmp) without
// skipping any cleanup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace uvs::mime {

class Output {
 public:
  using FlushFn = void (*)(void* ctx, const char* data, size_t n);

  Output(FlushFn fn, void* ctx) : fn_(fn), ctx_(ctx) {}
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void put(char c) {
    if (used_ == sizeof(buf_)) flush();
    buf_[used_++] = c;
  }
  void put(std::string_view s) {
    for (char c : s)
      put(c);
  }
  // Hands the staged bytes to the callback. Call it once more after the last put.
  void flush() {
    if (used_ > 0) fn_(ctx_, buf_, used_);
    used_ = 0;
  }

 private:
  FlushFn fn_;
  void* ctx_;
  size_t used_ = 0;
  char buf_[512];
};

// An Output that appends to a std::string (tests and C++ callers).
class StringOutput : public Output {
 public:
  explicit StringOutput(std::string* dst) : Output(&append, dst) {}

 private:
  static void append(void* ctx, const char* data, size_t n) {
    static_cast<std::string*>(ctx)->append(data, n);
  }
};

inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kSoftBreak = "=\r\n";

// The bytes a codec holds back until it knows what they become.
class Pending {
 public:
  [[nodiscard]] size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] unsigned char operator[](size_t i) const { return bytes_[i]; }
  [[nodiscard]] std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_), size_};
  }
  void push(unsigned char c) { bytes_[size_++] = c; }
  void drop_front() {
    for (size_t i = 1; i < size_; ++i)
      bytes_[i - 1] = bytes_[i];
    --size_;
  }
  void clear() { size_ = 0; }

 private:
  unsigned char bytes_[4] = {};
  size_t size_ = 0;
};

// Base64 (RFC 4648 section 4, no line breaks). Groups of 3 input bytes become 4 characters.
class Base64Encoder {
 public:
  void update(std::string_view in, Output& out);
  // Encodes the 1 or 2 held-back bytes with "=" padding; the encoder is then empty.
  void finish(Output& out);
  // The input bytes not encoded yet (0 to 2).
  [[nodiscard]] std::string_view pending() const { return held_.view(); }

 private:
  Pending held_;
};

// Base64 decoding. Bytes outside the alphabet (line breaks included) are skipped; "=" counts as
// a zero digit, and a group whose third or fourth character is "=" yields 1 or 2 bytes.
class Base64Decoder {
 public:
  void update(std::string_view in, Output& out);
  // The valid characters of an unfinished group (0 to 3); an unfinished group at the end of
  // the data is dropped.
  [[nodiscard]] std::string_view pending() const { return held_.view(); }

 private:
  Pending held_;
};

// Quoted-printable (RFC 2045 section 6.7), without line length limits (see wrap_qp). Bytes 33
// to 126 except "=" stay as they are; space and tab stay unless a line break follows them; a
// CRLF pair becomes `marker` ("\r\n" for text, "=0D=0A" for binary data); everything else
// becomes =XX with upper-case hex.
class QpEncoder {
 public:
  explicit QpEncoder(std::string_view marker = kCrlf) : marker_(marker) {}
  void update(std::string_view in, Output& out);
  // Encodes the held-back bytes as they stand and ends with a soft line break if there were
  // any (so that a final space or tab is not taken as trailing whitespace).
  void finish(Output& out);
  // The input bytes not encoded yet (0 to 2): a CR, or a space or tab with what follows it.
  [[nodiscard]] std::string_view pending() const { return held_.view(); }

 private:
  bool emit_first(Output& out);
  std::string_view marker_;
  Pending held_;
};

// Quoted-printable decoding. "=XX" (hex in either case) becomes its byte, "=" CRLF (a soft
// line break) disappears, a malformed "=" escape is kept as its three bytes, CRLF is kept, and
// other control bytes, bare CR and LF included, and bytes above 126 are dropped.
class QpDecoder {
 public:
  void update(std::string_view in, Output& out);
  // The input bytes of an unfinished escape or line break (0 to 2); they are dropped at the end
  // of the data.
  [[nodiscard]] std::string_view pending() const { return held_.view(); }

 private:
  void step(unsigned char c, Output& out);
  Pending held_;
};

// Line wrapping. `left` is how many more bytes fit on the current line and is returned updated.
// wrap_text cuts lines longer than `length` with CRLF; CR bytes are dropped and LF becomes CRLF.
[[nodiscard]] int64_t wrap_text(int64_t left, int64_t length, std::string_view in, Output& out);
// wrap_qp does the same for quoted-printable text with soft line breaks ("=" CRLF), never
// inside an =XX escape, so that no line is longer than `length` bytes.
[[nodiscard]] int64_t wrap_qp(int64_t left, int64_t length, std::string_view in, Output& out);
// At the end of the data a line that was started needs a final break.
[[nodiscard]] inline bool wrap_needs_break(int64_t left, int64_t length) { return left < length; }

// End-of-line normalisation: CR, LF, CRLF and LFCR each become one `marker`; a repeated CR or
// LF counts as a new line each time. `ctx` is the CR or LF byte that ended the previous chunk,
// or 0, and is returned updated.
[[nodiscard]] int64_t normalize_eol(int64_t ctx, std::string_view in, std::string_view marker,
                                    Output& out);

// SMTP dot-stuffing (RFC 5321 section 4.5.2): a "." at the start of a line is doubled. `state`
// counts the bytes of CRLF just seen (2 means "at the start of a line") and is returned updated.
[[nodiscard]] int64_t stuff_dots(int64_t state, std::string_view in, Output& out);

// Whole-string helpers (C++ callers and tests).
std::string base64_encode(std::string_view in);
std::string base64_decode(std::string_view in);
std::string qp_encode(std::string_view in, std::string_view marker = kCrlf);
std::string qp_decode(std::string_view in);

}  // namespace uvs::mime
