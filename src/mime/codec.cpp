// codec.cpp: the MIME content codecs (see codec.hpp).
// Layer: pure (no lua.h, no uv.h).
#include "mime/codec.hpp"

#include <array>

namespace uvs::mime {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kHexDigits[] = "0123456789ABCDEF";
constexpr unsigned char kInvalid = 0xff;

// Digit value of each byte in base64, kInvalid outside the alphabet; "=" reads as 0.
constexpr std::array<unsigned char, 256> make_base64_values() {
  std::array<unsigned char, 256> v{};
  for (auto& x : v)
    x = kInvalid;
  for (unsigned char i = 0; i < 64; ++i)
    v[static_cast<unsigned char>(kAlphabet[i])] = i;
  v['='] = 0;
  return v;
}
constexpr auto kBase64Values = make_base64_values();

// Value of a hex digit in either case, or -1.
int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// How the quoted-printable encoder treats a byte.
enum class QpClass : unsigned char {
  kLiteral,     // written as is
  kEscaped,     // always =XX
  kWhitespace,  // space or tab: as is, unless a line break follows
  kCr,          // the start of a line break, if LF follows
};

QpClass qp_class(unsigned char c) {
  if (c == ' ' || c == '\t') return QpClass::kWhitespace;
  if (c == '\r') return QpClass::kCr;
  if (c >= 33 && c <= 126 && c != '=') return QpClass::kLiteral;
  return QpClass::kEscaped;
}

void put_escape(unsigned char c, Output& out) {
  out.put('=');
  out.put(kHexDigits[c >> 4]);
  out.put(kHexDigits[c & 0x0f]);
}

bool is_eol_byte(int64_t c) { return c == '\r' || c == '\n'; }

}  // namespace

// --- base64 ----------------------------------------------------------------------------------

void Base64Encoder::update(std::string_view in, Output& out) {
  for (char ch : in) {
    held_.push(static_cast<unsigned char>(ch));
    if (held_.size() < 3) continue;
    const uint32_t group = (uint32_t{held_[0]} << 16) | (uint32_t{held_[1]} << 8) | held_[2];
    for (int shift = 18; shift >= 0; shift -= 6)
      out.put(kAlphabet[(group >> shift) & 0x3f]);
    held_.clear();
  }
}

void Base64Encoder::finish(Output& out) {
  if (held_.empty()) return;
  // Pad the group with zero bytes, write the digits that carry input bits, then "=".
  const uint32_t group =
      (uint32_t{held_[0]} << 16) | (held_.size() > 1 ? uint32_t{held_[1]} << 8 : 0);
  const int digits = static_cast<int>(held_.size()) + 1;
  for (int i = 0; i < 4; ++i) {
    out.put(i < digits ? kAlphabet[(group >> (18 - 6 * i)) & 0x3f] : '=');
  }
  held_.clear();
}

void Base64Decoder::update(std::string_view in, Output& out) {
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (kBase64Values[c] == kInvalid) continue;
    held_.push(c);
    if (held_.size() < 4) continue;
    uint32_t group = 0;
    for (size_t i = 0; i < 4; ++i)
      group = (group << 6) | kBase64Values[held_[i]];
    const int bytes = held_[2] == '=' ? 1 : held_[3] == '=' ? 2 : 3;
    for (int i = 0; i < bytes; ++i)
      out.put(static_cast<char>((group >> (16 - 8 * i)) & 0xff));
    held_.clear();
  }
}

// --- quoted-printable ------------------------------------------------------------------------

// Writes the first held byte if what follows it is known, and drops it. Returns false when it
// must wait for more input.
bool QpEncoder::emit_first(Output& out) {
  const unsigned char c = held_[0];
  switch (qp_class(c)) {
    case QpClass::kCr:
      if (held_.size() < 2) return false;
      if (held_[1] == '\n') {
        out.put(marker_);
        held_.clear();
        return true;
      }
      put_escape(c, out);
      break;
    case QpClass::kWhitespace:
      if (held_.size() < 3) return false;
      if (held_[1] == '\r' && held_[2] == '\n') {
        // Trailing whitespace would be stripped in transit: escape it.
        put_escape(c, out);
        out.put(marker_);
        held_.clear();
        return true;
      }
      out.put(static_cast<char>(c));
      break;
    case QpClass::kEscaped:
      put_escape(c, out);
      break;
    case QpClass::kLiteral:
      out.put(static_cast<char>(c));
      break;
  }
  held_.drop_front();
  return true;
}

void QpEncoder::update(std::string_view in, Output& out) {
  for (char ch : in) {
    held_.push(static_cast<unsigned char>(ch));
    while (!held_.empty() && emit_first(out)) {
    }
  }
}

void QpEncoder::finish(Output& out) {
  if (held_.empty()) return;
  for (size_t i = 0; i < held_.size(); ++i) {
    const unsigned char c = held_[i];
    if (qp_class(c) == QpClass::kLiteral) {
      out.put(static_cast<char>(c));
    } else {
      put_escape(c, out);
    }
  }
  out.put(kSoftBreak);
  held_.clear();
}

void QpDecoder::step(unsigned char c, Output& out) {
  held_.push(c);
  switch (held_[0]) {
    case '=': {
      if (held_.size() < 3) return;
      if (held_[1] == '\r' && held_[2] == '\n') {
        held_.clear();  // soft line break
        return;
      }
      const int hi = hex_value(held_[1]);
      const int lo = hex_value(held_[2]);
      if (hi < 0 || lo < 0) {
        out.put(held_.view());  // not an escape: keep it as it came
      } else {
        out.put(static_cast<char>(hi * 16 + lo));
      }
      held_.clear();
      return;
    }
    case '\r': {
      if (held_.size() < 2) return;
      const unsigned char next = held_[1];
      held_.clear();
      if (next == '\n') {
        out.put(kCrlf);
      } else {
        step(next, out);  // a bare CR is dropped; the byte after it counts on its own
      }
      return;
    }
    default:
      if (c == '\t' || (c >= 32 && c <= 126)) out.put(static_cast<char>(c));
      held_.clear();
      return;
  }
}

void QpDecoder::update(std::string_view in, Output& out) {
  for (char ch : in)
    step(static_cast<unsigned char>(ch), out);
}

// --- line wrapping ---------------------------------------------------------------------------

int64_t wrap_text(int64_t left, int64_t length, std::string_view in, Output& out) {
  for (char c : in) {
    if (c == '\r') continue;
    if (c == '\n') {
      out.put(kCrlf);
      left = length;
      continue;
    }
    if (left <= 0) {
      out.put(kCrlf);
      left = length;
    }
    out.put(c);
    --left;
  }
  return left;
}

int64_t wrap_qp(int64_t left, int64_t length, std::string_view in, Output& out) {
  for (char c : in) {
    if (c == '\r') continue;
    if (c == '\n') {
      out.put(kCrlf);
      left = length;
      continue;
    }
    // An escape needs room for its 3 bytes plus the "=" of a soft break; any other byte needs
    // room for itself plus that "=".
    const int64_t room = c == '=' ? 3 : 1;
    if (left <= room) {
      out.put(kSoftBreak);
      left = length;
    }
    out.put(c);
    --left;
  }
  return left;
}

// --- end of line and dot-stuffing ------------------------------------------------------------

int64_t normalize_eol(int64_t ctx, std::string_view in, std::string_view marker, Output& out) {
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (!is_eol_byte(c)) {
      out.put(ch);
      ctx = 0;
    } else if (!is_eol_byte(ctx)) {
      out.put(marker);  // a new line break starts
      ctx = c;
    } else {
      // The second byte of a pair: the same byte again is another break, the other one
      // completes CRLF or LFCR.
      if (c == ctx) out.put(marker);
      ctx = 0;
    }
  }
  return ctx;
}

int64_t stuff_dots(int64_t state, std::string_view in, Output& out) {
  for (char c : in) {
    out.put(c);
    if (c == '\r') {
      state = 1;
    } else if (c == '\n') {
      state = state == 1 ? 2 : 0;
    } else {
      if (c == '.' && state == 2) out.put('.');
      state = 0;
    }
  }
  return state;
}

// --- whole strings ---------------------------------------------------------------------------

std::string base64_encode(std::string_view in) {
  std::string s;
  StringOutput out(&s);
  Base64Encoder e;
  e.update(in, out);
  e.finish(out);
  out.flush();
  return s;
}

std::string base64_decode(std::string_view in) {
  std::string s;
  StringOutput out(&s);
  Base64Decoder d;
  d.update(in, out);
  out.flush();
  return s;
}

std::string qp_encode(std::string_view in, std::string_view marker) {
  std::string s;
  StringOutput out(&s);
  QpEncoder e(marker);
  e.update(in, out);
  e.finish(out);
  out.flush();
  return s;
}

std::string qp_decode(std::string_view in) {
  std::string s;
  StringOutput out(&s);
  QpDecoder d;
  d.update(in, out);
  out.flush();
  return s;
}

}  // namespace uvs::mime
