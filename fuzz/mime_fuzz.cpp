// mime_fuzz.cpp: the MIME codecs of src/mime/codec.* on arbitrary input and chunking.
// fuzz-link: mime_codec
//
// The input gives a payload, the points where it is cut into chunks, a line length and a few
// flags. Besides the sanitizers, the harness checks:
//   - every codec gives the same output whether the payload comes in one piece or in chunks
//     (the incremental state: held-back atoms, wrap columns, EOL and dot contexts);
//   - base64: decode(encode(x)) == x, the encoding is 4 * ceil(n / 3) alphabet characters;
//     decoding arbitrary bytes gives 3 bytes per 4 alphabet characters at most;
//   - quoted-printable, text and binary markers: decode(encode(x)) == x, also after wrap_qp at
//     any line length of at least 4 (where no escape can be split), whose lines then fit;
//     decoding arbitrary bytes never grows them;
//   - wrap_text: lines fit, and the text without its line breaks is unchanged;
//   - normalize_eol: with the CRLF marker the output has no bare CR or LF, and normalising it
//     again changes nothing;
//   - stuff_dots: undoing the stuffing gives the input back; no line of the output starts with a
//     single dot.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "invariant.hpp"
#include "mime/codec.hpp"

namespace mime = uvs::mime;

namespace {

// The payload cut at the given points (each taken modulo the payload's length, sorted by use).
std::vector<std::string_view> cut(std::string_view s, const std::vector<size_t>& points) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  for (size_t p : points) {
    const size_t len = s.empty() ? 0 : p % (s.size() - at + 1);
    parts.push_back(s.substr(at, len));
    at += len;
  }
  parts.push_back(s.substr(at));
  return parts;
}

template <class Codec>
std::string run(Codec& codec, const std::vector<std::string_view>& parts, bool finish) {
  std::string s;
  mime::StringOutput out(&s);
  for (std::string_view p : parts)
    codec.update(p, out);
  if constexpr (std::is_same_v<Codec, mime::Base64Encoder> ||
                std::is_same_v<Codec, mime::QpEncoder>) {
    if (finish) codec.finish(out);
  }
  out.flush();
  return s;
}

using WrapFn = int64_t (*)(int64_t, int64_t, std::string_view, mime::Output&);

std::string wrap(WrapFn fn, int64_t length, const std::vector<std::string_view>& parts,
                 std::string_view end_break) {
  std::string s;
  mime::StringOutput out(&s);
  int64_t left = length;
  for (std::string_view p : parts)
    left = fn(left, length, p, out);
  if (mime::wrap_needs_break(left, length)) out.put(end_break);
  out.flush();
  return s;
}

std::string eol(int64_t ctx, const std::vector<std::string_view>& parts, std::string_view marker) {
  std::string s;
  mime::StringOutput out(&s);
  for (std::string_view p : parts)
    ctx = mime::normalize_eol(ctx, p, marker, out);
  out.flush();
  return s;
}

std::string dots(const std::vector<std::string_view>& parts) {
  std::string s;
  mime::StringOutput out(&s);
  int64_t state = 2;  // a message body starts at the start of a line
  for (std::string_view p : parts)
    state = mime::stuff_dots(state, p, out);
  out.flush();
  return s;
}

// The lines of `s` split at CRLF, each checked to be at most `length` bytes.
void check_line_lengths(const std::string& s, int64_t length) {
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find("\r\n", start);
    if (end == std::string::npos) end = s.size();
    CHECK(static_cast<int64_t>(end - start) <= length);
    start = end + 2;
  }
}

std::string without_breaks(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '\r' && c != '\n') out += c;
  }
  return out;
}

bool is_alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

void check_base64(std::string_view in, const std::vector<std::string_view>& parts) {
  const std::string whole = mime::base64_encode(in);
  mime::Base64Encoder e;
  CHECK(run(e, parts, true) == whole);
  CHECK(whole.size() == (in.size() + 2) / 3 * 4);
  size_t pad = 0;
  for (size_t i = 0; i < whole.size(); i++) {
    if (whole[i] == '=') {
      pad++;
    } else {
      CHECK(is_alphabet(whole[i]) && pad == 0);
    }
  }
  CHECK(pad == (3 - in.size() % 3) % 3);
  CHECK(mime::base64_decode(whole) == in);
  // Decoding arbitrary bytes, whole and in chunks.
  const std::string decoded = mime::base64_decode(in);
  mime::Base64Decoder d;
  CHECK(run(d, parts, false) == decoded);
  size_t digits = 0;
  for (char c : in)
    digits += is_alphabet(c) || c == '=';
  CHECK(decoded.size() <= digits / 4 * 3);
  CHECK(d.pending().size() == digits % 4);
}

void check_qp(std::string_view in, const std::vector<std::string_view>& parts, int64_t length) {
  for (std::string_view marker : {mime::kCrlf, std::string_view("=0D=0A")}) {
    const std::string whole = mime::qp_encode(in, marker);
    mime::QpEncoder e(marker);
    CHECK(run(e, parts, true) == whole);
    CHECK(mime::qp_decode(whole) == in);
    // Wrapped as mime.wrap("quoted-printable") does it, in chunks of the encoded text.
    const std::vector<std::string_view> wparts =
        cut(whole, {static_cast<size_t>(length) * 7, static_cast<size_t>(length) * 3, 1, 2});
    const std::string wrapped = wrap(&mime::wrap_qp, length, wparts, mime::kSoftBreak);
    CHECK(wrapped == wrap(&mime::wrap_qp, length, {whole}, mime::kSoftBreak));
    check_line_lengths(wrapped, length);
    CHECK(mime::qp_decode(wrapped) == in);
  }
  // Decoding arbitrary bytes, whole and in chunks.
  const std::string decoded = mime::qp_decode(in);
  mime::QpDecoder d;
  CHECK(run(d, parts, false) == decoded);
  CHECK(decoded.size() <= in.size());
}

void check_wrap_text(std::string_view in, const std::vector<std::string_view>& parts,
                     int64_t length) {
  const std::string whole = wrap(&mime::wrap_text, length, {in}, mime::kCrlf);
  CHECK(wrap(&mime::wrap_text, length, parts, mime::kCrlf) == whole);
  check_line_lengths(whole, length < 1 ? 1 : length);
  CHECK(without_breaks(whole) == without_breaks(in));
}

void check_eol(std::string_view in, const std::vector<std::string_view>& parts,
               std::string_view marker) {
  const std::string whole = eol(0, {in}, marker);
  CHECK(eol(0, parts, marker) == whole);
  if (marker == mime::kCrlf) {
    for (size_t i = 0; i < whole.size(); i++) {
      if (whole[i] == '\r') CHECK(i + 1 < whole.size() && whole[i + 1] == '\n');
      if (whole[i] == '\n') CHECK(i > 0 && whole[i - 1] == '\r');
    }
    CHECK(eol(0, {whole}, marker) == whole);
  }
  // Only line breaks change: with a marker made of CR and LF alone, the rest is untouched.
  if (without_breaks(marker).empty()) CHECK(without_breaks(whole) == without_breaks(in));
}

void check_dots(std::string_view in, const std::vector<std::string_view>& parts) {
  const std::string whole = dots({in});
  CHECK(dots(parts) == whole);
  // Undo: drop the first of two dots at each line start.
  std::string undone;
  bool line_start = true;
  for (size_t i = 0; i < whole.size(); i++) {
    if (line_start && whole[i] == '.') {
      CHECK(i + 1 < whole.size() && whole[i + 1] == '.');
      i++;
    }
    undone += whole[i];
    line_start = undone.size() >= 2 && undone.compare(undone.size() - 2, 2, "\r\n") == 0;
  }
  CHECK(undone == in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int64_t length = fdp.ConsumeIntegralInRange<int64_t>(4, 120);
  const int64_t any_length = fdp.ConsumeIntegralInRange<int64_t>(-2, 120);
  std::vector<size_t> points;
  const int n = fdp.ConsumeIntegralInRange<int>(0, 12);
  for (int i = 0; i < n; i++)
    points.push_back(fdp.ConsumeIntegralInRange<size_t>(0, 300));
  const std::string marker = fdp.ConsumeRandomLengthString(6);
  const std::string payload = fdp.ConsumeRemainingBytesAsString();
  const std::vector<std::string_view> parts = cut(payload, points);

  check_base64(payload, parts);
  check_qp(payload, parts, length);
  check_wrap_text(payload, parts, any_length);
  check_eol(payload, parts, mime::kCrlf);
  check_eol(payload, parts, marker);
  check_dots(payload, parts);
  return 0;
}
