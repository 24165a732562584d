// websocket.hpp: the WebSocket protocol (RFC 6455) without I/O: an incremental frame parser, a
// frame encoder, the checker of the rules a sequence of frames must follow to form messages,
// and the handshake's accept key.
// Layer: pure (no lua.h, no uv.h).
//
// The frame parser reads frames cut anywhere and hands back each header, then the payload as
// slices of the caller's own chunks, still masked: the caller unmasks them in place or while
// copying them out (apply_mask), whichever its buffers allow. No extension is ever negotiated,
// so the RSV bits must be zero.
//
// Nothing here owns memory or has a destructor; every object may live in Lua userdata.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/utf8.hpp"

namespace uvs::http::ws {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xa,
};

[[nodiscard]] inline bool is_control(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }
// One of the six opcodes RFC 6455 defines.
[[nodiscard]] bool is_known_opcode(uint8_t op);

enum class Error : uint8_t {
  kNone,
  // Frames (close code 1002, protocol error, unless said otherwise).
  kReservedBits,       // RSV1-3 set with no extension negotiated
  kReservedOpcode,     // opcodes 3-7 and B-F
  kFragmentedControl,  // a control frame without FIN
  kControlTooLong,     // a control frame with more than 125 bytes of payload
  kUnmaskedFrame,      // a client frame that is not masked (a server reads it)
  kMaskedFrame,        // a server frame that is masked (a client reads it)
  kNonMinimalLength,   // a 16- or 64-bit length that would have fitted in fewer bits
  kLengthTopBit,       // a 64-bit length with its most significant bit set
  kFrameTooBig,        // payload over the frame limit (1009, message too big)
  // Messages.
  kContinuationWithoutStart,  // a continuation frame outside a fragmented message
  kMessageNotFinished,        // a text or binary frame inside a fragmented message
  kMessageTooBig,             // a message over the message limit (1009)
  kInvalidUtf8,               // a text message or close reason that is not UTF-8 (1007)
  kBadClosePayload,           // a close payload of one byte
  kBadCloseCode,              // a close code not allowed on the wire (RFC 6455 7.4)
};

// A short lower-case phrase naming the error, stable for Lua code to compare; "" for kNone.
[[nodiscard]] const char* error_name(Error e);
// The close code an endpoint sends when it fails the connection this way (1002, 1007, 1009).
[[nodiscard]] uint16_t error_close_code(Error e);

// A close code that may appear in a close frame: 1000-1003, 1007-1014 (those the IANA
// registry defines; 1004-1006 and 1015 may never be sent) and 3000-4999.
[[nodiscard]] bool valid_close_code(uint16_t code);

// Which end reads: a server reads the client's frames, which must be masked; a client reads
// the server's, which must not be.
enum class Role : uint8_t { kServer, kClient };

struct FrameHeader {
  bool fin = false;
  Opcode opcode = Opcode::kContinuation;
  bool masked = false;
  uint8_t mask[4] = {};
  uint64_t length = 0;
};

class FrameParser {
 public:
  enum class Event : uint8_t {
    kNeedMore,  // all of the input taken
    kHeader,    // header() is the next frame's
    kPayload,   // data/size: payload bytes, still masked, at payload offset `offset`
    kError,     // error() says why
  };
  struct Step {
    Event event;
    size_t consumed;   // bytes of the input used
    const char* data;  // kPayload: a slice of the input
    size_t size;
    uint64_t offset;  // kPayload: where the slice starts in the frame's payload
    bool end;         // kHeader, kPayload: the frame's payload is complete
  };

  static constexpr uint64_t kDefaultMaxPayload = uint64_t{16} << 20;

  void init(Role role, uint64_t max_payload = kDefaultMaxPayload) {
    role_ = role;
    max_payload_ = max_payload;
    reset();
  }
  void reset() {
    have_ = 0;
    need_ = 2;
    in_payload_ = false;
    left_ = 0;
    offset_ = 0;
    error_ = Error::kNone;
  }

  // Reads from [p, p + n) up to the next event. A frame gives one kHeader (with `end` set if
  // its payload is empty), then kPayload slices until one has `end` set. On kError `consumed`
  // stops before the faulty byte, and the error sticks until reset().
  [[nodiscard]] Step feed(const char* p, size_t n);

  [[nodiscard]] const FrameHeader& header() const { return header_; }
  [[nodiscard]] Error error() const { return error_; }
  [[nodiscard]] Role role() const { return role_; }
  [[nodiscard]] uint64_t max_payload() const { return max_payload_; }
  // Between frames (no header or payload byte of a frame read yet).
  [[nodiscard]] bool at_frame_boundary() const { return !in_payload_ && have_ == 0; }

 private:
  [[nodiscard]] Error header_byte();
  Step fail(Error e, size_t consumed);

  Role role_ = Role::kServer;
  uint64_t max_payload_ = kDefaultMaxPayload;
  FrameHeader header_;
  uint8_t bytes_[14] = {};
  uint8_t have_ = 0;  // header bytes read
  uint8_t need_ = 2;  // header bytes this frame has, once known
  bool in_payload_ = false;
  uint64_t left_ = 0;    // payload bytes still to come
  uint64_t offset_ = 0;  // payload bytes handed out
  Error error_ = Error::kNone;
};

// XORs n payload bytes that start at payload offset `offset` with the masking key: in place,
// or from `in` to `out` (which may be the same).
void apply_mask(const uint8_t key[4], uint64_t offset, char* data, size_t n);
void apply_mask(const uint8_t key[4], uint64_t offset, const char* in, char* out, size_t n);

// Checks that frames, in the order read, form valid messages: no continuation without a start,
// no new message inside a fragmented one, text that is UTF-8 across fragments, a message size
// limit, and well-formed close payloads. Feed it the unmasked payload.
class MessageChecker {
 public:
  static constexpr uint64_t kDefaultMaxMessage = uint64_t{16} << 20;

  void init(uint64_t max_message = kDefaultMaxMessage) {
    max_message_ = max_message;
    reset();
  }
  void reset() {
    in_message_ = false;
    text_ = false;
    size_ = 0;
    utf8_.reset();
    close_len_ = 0;
  }

  [[nodiscard]] Error on_header(const FrameHeader& h);
  // `*accepted`, if given, is set to the bytes of the slice taken before the faulty one (all n
  // when there is no fault), so that a fault is placed at the same byte whatever the slices.
  [[nodiscard]] Error on_payload(const FrameHeader& h, const char* data, size_t n,
                                 size_t* accepted = nullptr);
  [[nodiscard]] Error on_frame_end(const FrameHeader& h);

  // A fragmented message has started and not ended.
  [[nodiscard]] bool in_message() const { return in_message_; }
  // The message being read (or the last one) is text.
  [[nodiscard]] bool text() const { return text_; }
  // After the end of a close frame: its code (1005, "no status", when it had none) and reason.
  [[nodiscard]] uint16_t close_code() const;
  [[nodiscard]] std::string_view close_reason() const;

 private:
  uint64_t max_message_ = kDefaultMaxMessage;
  bool in_message_ = false;
  bool text_ = false;
  uint64_t size_ = 0;
  Utf8Checker utf8_;
  uint8_t close_len_ = 0;
  char close_[125] = {};
};

// The largest frame header: 2 bytes, a 64-bit length, a masking key.
inline constexpr size_t kMaxHeaderSize = 14;

// Writes a frame header (RSV bits zero) and returns its size. `mask` null: unmasked (a server's
// frames); otherwise the 4-byte key the caller chose (a client's frames must be masked with a
// fresh unpredictable key each, RFC 6455 section 5.3).
size_t encode_header(uint8_t out[kMaxHeaderSize], bool fin, Opcode op, uint64_t length,
                     const uint8_t* mask);
// A whole frame (C++ callers and tests).
std::string encode_frame(Opcode op, std::string_view payload, bool fin = true,
                         const uint8_t* mask = nullptr);

// The handshake (RFC 6455 section 4.2.2): Sec-WebSocket-Accept = base64(SHA-1(key + GUID)).
inline constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
inline constexpr size_t kAcceptKeySize = 28;
void accept_key(std::string_view key, char out[kAcceptKeySize]);
// A Sec-WebSocket-Key as a client must send it: the base64 of 16 bytes (24 characters).
[[nodiscard]] bool valid_client_key(std::string_view key);

}  // namespace uvs::http::ws
