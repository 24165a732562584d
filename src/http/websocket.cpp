// websocket.cpp: see websocket.hpp. Layer: pure.
#include "http/websocket.hpp"

#include <algorithm>
#include <cstring>

#include "http/sha1.hpp"
#include "mime/codec.hpp"

namespace uvs::http::ws {

bool is_known_opcode(uint8_t op) { return op <= 2 || (op >= 8 && op <= 10); }

const char* error_name(Error e) {
  switch (e) {
    case Error::kNone:
      return "";
    case Error::kReservedBits:
      return "reserved bits set";
    case Error::kReservedOpcode:
      return "reserved opcode";
    case Error::kFragmentedControl:
      return "fragmented control frame";
    case Error::kControlTooLong:
      return "control frame too long";
    case Error::kUnmaskedFrame:
      return "unmasked frame";
    case Error::kMaskedFrame:
      return "masked frame";
    case Error::kNonMinimalLength:
      return "non-minimal length";
    case Error::kLengthTopBit:
      return "length too large";
    case Error::kFrameTooBig:
      return "frame too big";
    case Error::kContinuationWithoutStart:
      return "continuation without start";
    case Error::kMessageNotFinished:
      return "message not finished";
    case Error::kMessageTooBig:
      return "message too big";
    case Error::kInvalidUtf8:
      return "invalid utf-8";
    case Error::kBadClosePayload:
      return "bad close payload";
    case Error::kBadCloseCode:
      return "bad close code";
  }
  return "unknown error";
}

uint16_t error_close_code(Error e) {
  switch (e) {
    case Error::kNone:
      return 0;
    case Error::kFrameTooBig:
    case Error::kMessageTooBig:
      return 1009;
    case Error::kInvalidUtf8:
      return 1007;
    default:
      return 1002;
  }
}

bool valid_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

FrameParser::Step FrameParser::fail(Error e, size_t consumed) {
  error_ = e;
  return {Event::kError, consumed, nullptr, 0, 0, false};
}

// Checks the header byte just read (bytes_[have_ - 1]) as soon as it says something.
Error FrameParser::header_byte() {
  const uint8_t b0 = bytes_[0];
  if (have_ == 1) {
    if (b0 & 0x70) return Error::kReservedBits;
    if (!is_known_opcode(b0 & 0x0f)) return Error::kReservedOpcode;
    header_.fin = (b0 & 0x80) != 0;
    header_.opcode = static_cast<Opcode>(b0 & 0x0f);
    return Error::kNone;
  }
  const uint8_t len7 = bytes_[1] & 0x7f;
  const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  if (have_ == 2) {
    header_.masked = (bytes_[1] & 0x80) != 0;
    if (role_ == Role::kServer && !header_.masked) return Error::kUnmaskedFrame;
    if (role_ == Role::kClient && header_.masked) return Error::kMaskedFrame;
    if (is_control(header_.opcode)) {
      if (!header_.fin) return Error::kFragmentedControl;
      if (len7 > 125) return Error::kControlTooLong;
    }
    need_ = static_cast<uint8_t>(2 + ext + (header_.masked ? 4 : 0));
  }
  if (have_ == 2 + ext) {
    uint64_t length = len7;
    if (ext > 0) {
      length = 0;
      for (size_t i = 0; i < ext; ++i)
        length = (length << 8) | bytes_[2 + i];
      if (ext == 8 && (length >> 63) != 0) return Error::kLengthTopBit;
      if (length < (ext == 2 ? 126u : 65536u)) return Error::kNonMinimalLength;
    }
    if (length > max_payload_) return Error::kFrameTooBig;
    header_.length = length;
  }
  if (have_ == need_ && header_.masked) std::memcpy(header_.mask, bytes_ + need_ - 4, 4);
  return Error::kNone;
}

FrameParser::Step FrameParser::feed(const char* p, size_t n) {
  if (error_ != Error::kNone) return {Event::kError, 0, nullptr, 0, 0, false};
  if (in_payload_) {
    if (n == 0) return {Event::kNeedMore, 0, nullptr, 0, 0, false};
    const size_t take = static_cast<size_t>(std::min<uint64_t>(left_, n));
    const uint64_t at = offset_;
    left_ -= take;
    offset_ += take;
    const bool end = left_ == 0;
    if (end) in_payload_ = false;
    return {Event::kPayload, take, p, take, at, end};
  }
  for (size_t i = 0; i < n;) {
    bytes_[have_++] = static_cast<uint8_t>(p[i++]);
    const Error e = header_byte();
    if (e != Error::kNone) return fail(e, i - 1);
    if (have_ < need_) continue;
    if (!header_.masked) std::memset(header_.mask, 0, 4);
    have_ = 0;
    need_ = 2;
    offset_ = 0;
    left_ = header_.length;
    in_payload_ = left_ > 0;
    return {Event::kHeader, i, nullptr, 0, 0, left_ == 0};
  }
  return {Event::kNeedMore, n, nullptr, 0, 0, false};
}

void apply_mask(const uint8_t key[4], uint64_t offset, const char* in, char* out, size_t n) {
  // Rotate the key to the slice's starting offset, then XOR a word at a time.
  uint8_t k[4];
  for (int i = 0; i < 4; ++i)
    k[i] = key[(offset + static_cast<uint64_t>(i)) & 3];
  uint32_t word;
  std::memcpy(&word, k, 4);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t x;
    std::memcpy(&x, in + i, 4);
    x ^= word;
    std::memcpy(out + i, &x, 4);
  }
  for (; i < n; ++i)
    out[i] = static_cast<char>(in[i] ^ k[i & 3]);
}

void apply_mask(const uint8_t key[4], uint64_t offset, char* data, size_t n) {
  apply_mask(key, offset, data, data, n);
}

Error MessageChecker::on_header(const FrameHeader& h) {
  if (h.opcode == Opcode::kClose) close_len_ = 0;
  if (is_control(h.opcode)) return Error::kNone;
  if (h.opcode == Opcode::kContinuation) {
    if (!in_message_) return Error::kContinuationWithoutStart;
  } else {
    if (in_message_) return Error::kMessageNotFinished;
    in_message_ = true;
    text_ = h.opcode == Opcode::kText;
    size_ = 0;
    utf8_.reset();
  }
  if (h.length > max_message_ - size_) return Error::kMessageTooBig;
  size_ += h.length;
  return Error::kNone;
}

Error MessageChecker::on_payload(const FrameHeader& h, const char* data, size_t n,
                                 size_t* accepted) {
  if (accepted) *accepted = n;
  if (h.opcode == Opcode::kClose) {
    // A control payload is at most 125 bytes: the frame parser has seen to it.
    const size_t take = std::min(n, sizeof(close_) - close_len_);
    std::memcpy(close_ + close_len_, data, take);
    close_len_ = static_cast<uint8_t>(close_len_ + take);
    return Error::kNone;
  }
  if (is_control(h.opcode) || !text_) return Error::kNone;
  size_t bad = 0;
  if (utf8_.feed(data, n, &bad)) return Error::kNone;
  if (accepted) *accepted = bad;
  return Error::kInvalidUtf8;
}

Error MessageChecker::on_frame_end(const FrameHeader& h) {
  if (h.opcode == Opcode::kClose) {
    if (close_len_ == 1) return Error::kBadClosePayload;
    if (close_len_ >= 2) {
      if (!valid_close_code(close_code())) return Error::kBadCloseCode;
      Utf8Checker reason;
      if (!reason.feed(close_ + 2, close_len_ - 2u) || !reason.complete()) {
        return Error::kInvalidUtf8;
      }
    }
    return Error::kNone;
  }
  if (is_control(h.opcode) || !h.fin) return Error::kNone;
  in_message_ = false;
  if (text_ && !utf8_.complete()) return Error::kInvalidUtf8;
  return Error::kNone;
}

uint16_t MessageChecker::close_code() const {
  if (close_len_ < 2) return 1005;
  return static_cast<uint16_t>((static_cast<uint8_t>(close_[0]) << 8) |
                               static_cast<uint8_t>(close_[1]));
}

std::string_view MessageChecker::close_reason() const {
  if (close_len_ < 2) return {};
  return {close_ + 2, close_len_ - 2u};
}

size_t encode_header(uint8_t out[kMaxHeaderSize], bool fin, Opcode op, uint64_t length,
                     const uint8_t* mask) {
  size_t n = 0;
  out[n++] = static_cast<uint8_t>((fin ? 0x80 : 0) | static_cast<uint8_t>(op));
  const uint8_t m = mask ? 0x80 : 0;
  if (length < 126) {
    out[n++] = static_cast<uint8_t>(m | length);
  } else if (length <= 0xffff) {
    out[n++] = m | 126;
    out[n++] = static_cast<uint8_t>(length >> 8);
    out[n++] = static_cast<uint8_t>(length);
  } else {
    out[n++] = m | 127;
    for (int i = 7; i >= 0; --i)
      out[n++] = static_cast<uint8_t>(length >> (8 * i));
  }
  if (mask) {
    std::memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

std::string encode_frame(Opcode op, std::string_view payload, bool fin, const uint8_t* mask) {
  uint8_t head[kMaxHeaderSize];
  const size_t h = encode_header(head, fin, op, payload.size(), mask);
  std::string s(reinterpret_cast<const char*>(head), h);
  s += payload;
  if (mask) apply_mask(mask, 0, &s[h], payload.size());
  return s;
}

namespace {

struct FixedOut {
  char* p;
  size_t n;
  size_t cap;
};

void put_fixed(void* ctx, const char* data, size_t n) {
  auto* o = static_cast<FixedOut*>(ctx);
  const size_t take = std::min(n, o->cap - o->n);
  std::memcpy(o->p + o->n, data, take);
  o->n += take;
}

bool is_b64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

void accept_key(std::string_view key, char out[kAcceptKeySize]) {
  Sha1 h;
  h.update(key);
  h.update(kGuid);
  uint8_t digest[Sha1::kDigestSize];
  h.finish(digest);
  FixedOut fixed{out, 0, kAcceptKeySize};
  mime::Output o(&put_fixed, &fixed);
  mime::Base64Encoder enc;
  enc.update({reinterpret_cast<const char*>(digest), sizeof(digest)}, o);
  enc.finish(o);
  o.flush();
}

bool valid_client_key(std::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i) {
    if (!is_b64(key[i])) return false;
  }
  // The last character carries 2 bits of the 16th byte and 4 bits of padding, which are zero.
  const char last = key[21];
  return last == 'A' || last == 'Q' || last == 'g' || last == 'w';
}

}  // namespace uvs::http::ws
