// http_websocket_test.cpp: WebSocket frames and messages (src/http/websocket.hpp): the RFC 6455
// examples both ways, every fault, every limit at its boundary, the message rules, the
// handshake key, and the same frames for every way of cutting the input.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "http/websocket.hpp"

using namespace uvs::http::ws;

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b)
    s += static_cast<char>(c);
  return s;
}

const uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};

// The RFC 6455 section 5.7 examples.
const std::string kHelloUnmasked = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
const std::string kHelloMasked =
    bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
const std::string kHelFragment = bytes({0x01, 0x03, 0x48, 0x65, 0x6c});
const std::string kLoFragment = bytes({0x80, 0x02, 0x6c, 0x6f});
const std::string kPingUnmasked = bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
const std::string kPongMasked =
    bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});

struct Options {
  Role role = Role::kClient;
  uint64_t max_payload = FrameParser::kDefaultMaxPayload;
  uint64_t max_message = MessageChecker::kDefaultMaxMessage;
  bool check = true;
};

// Parses `in` cut at `cuts` and tells every frame (unmasked) and the fault, as text.
struct Outcome {
  std::string frames;
  std::string error;
  size_t consumed = 0;
  bool operator==(const Outcome& o) const {
    return frames == o.frames && error == o.error && consumed == o.consumed;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "frames [" << o.frames << "] error \"" << o.error << "\" consumed " << o.consumed;
}

Outcome run(const std::string& in, const Options& opt = {}, const std::vector<size_t>& cuts = {}) {
  FrameParser fp;
  fp.init(opt.role, opt.max_payload);
  MessageChecker mc;
  mc.init(opt.max_message);
  Outcome o;
  std::string payload;
  size_t at = 0;
  for (size_t k = 0; k <= cuts.size() && o.error.empty(); ++k) {
    const size_t end = k < cuts.size() ? cuts[k] : in.size();
    std::string chunk = in.substr(at, end - at);  // unmasked in place
    char* p = &chunk[0];
    size_t n = chunk.size();
    while (o.error.empty()) {
      const FrameParser::Step s = fp.feed(p, n);
      REQUIRE(s.consumed <= n);
      o.consumed += s.consumed;
      Error e = Error::kNone;
      const FrameHeader& h = fp.header();
      if (s.event == FrameParser::Event::kError) {
        e = fp.error();
      } else if (s.event == FrameParser::Event::kHeader) {
        payload.clear();
        if (opt.check) e = mc.on_header(h);
      } else if (s.event == FrameParser::Event::kPayload) {
        REQUIRE(s.data == p);
        REQUIRE(s.offset == payload.size());
        char* d = p;
        if (h.masked) apply_mask(h.mask, s.offset, d, s.size);
        payload.append(d, s.size);
        size_t accepted = 0;
        if (opt.check) e = mc.on_payload(h, d, s.size, &accepted);
        if (e != Error::kNone) o.consumed -= s.size - accepted;
      }
      if (e == Error::kNone && s.end && s.event != FrameParser::Event::kNeedMore) {
        REQUIRE(payload.size() == h.length);
        if (opt.check) e = mc.on_frame_end(h);
        o.frames +=
            std::to_string(h.fin) + " " + std::to_string(int(h.opcode)) + " [" + payload + "]";
        if (opt.check && h.opcode == Opcode::kClose) {
          o.frames +=
              " close " + std::to_string(mc.close_code()) + " " + std::string(mc.close_reason());
        }
        o.frames += "\n";
      }
      if (e != Error::kNone) o.error = error_name(e);
      p += s.consumed;
      n -= s.consumed;
      if (s.event == FrameParser::Event::kNeedMore) {
        REQUIRE(n == 0);
        break;
      }
    }
    at = end;
  }
  return o;
}

std::string error_of(const std::string& in, const Options& opt = {}) {
  const Outcome o = run(in, opt);
  CHECK_FALSE(o.error.empty());
  return o.error;
}

Options server() {
  Options o;
  o.role = Role::kServer;
  return o;
}

std::string close_frame(uint16_t code, const std::string& reason) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xff);
  return encode_frame(Opcode::kClose, p + reason);
}

}  // namespace

TEST_CASE("the RFC 6455 examples parse", "[http][ws]") {
  CHECK(run(kHelloUnmasked).frames == "1 1 [Hello]\n");
  CHECK(run(kHelloMasked, server()).frames == "1 1 [Hello]\n");
  CHECK(run(kHelFragment + kLoFragment).frames == "0 1 [Hel]\n1 0 [lo]\n");
  CHECK(run(kPingUnmasked).frames == "1 9 [Hello]\n");
  CHECK(run(kPongMasked, server()).frames == "1 10 [Hello]\n");
  const std::string b256(256, 'x');
  const std::string f256 = bytes({0x82, 0x7e, 0x01, 0x00}) + b256;
  CHECK(run(f256).frames == "1 2 [" + b256 + "]\n");
  const std::string b64k(65536, 'y');
  const std::string f64k = bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}) + b64k;
  CHECK(run(f64k).frames == "1 2 [" + b64k + "]\n");
}

TEST_CASE("the encoder writes the RFC 6455 examples", "[http][ws]") {
  CHECK(encode_frame(Opcode::kText, "Hello") == kHelloUnmasked);
  CHECK(encode_frame(Opcode::kText, "Hello", true, kKey) == kHelloMasked);
  CHECK(encode_frame(Opcode::kText, "Hel", false) == kHelFragment);
  CHECK(encode_frame(Opcode::kContinuation, "lo") == kLoFragment);
  CHECK(encode_frame(Opcode::kPing, "Hello") == kPingUnmasked);
  CHECK(encode_frame(Opcode::kPong, "Hello", true, kKey) == kPongMasked);
  CHECK(encode_frame(Opcode::kBinary, std::string(256, 'x')).substr(0, 4) ==
        bytes({0x82, 0x7e, 0x01, 0x00}));
  CHECK(encode_frame(Opcode::kBinary, std::string(65536, 'y')).substr(0, 10) ==
        bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}));
  // Length encodings at their boundaries are minimal, and parse back.
  for (size_t len : {0u, 125u, 126u, 65535u, 65536u}) {
    const std::string payload(len, 'p');
    const std::string f = encode_frame(Opcode::kBinary, payload, true, kKey);
    CHECK(f.size() == len + (len < 126 ? 6 : len <= 65535 ? 8 : 14));
    CHECK(run(f, server()).frames == "1 2 [" + payload + "]\n");
  }
  uint8_t head[kMaxHeaderSize];
  CHECK(encode_header(head, true, Opcode::kBinary, uint64_t{1} << 40, nullptr) == 10);
  CHECK(head[1] == 127);
  CHECK(head[4] == 1);
}

TEST_CASE("masking in place and into another buffer, from any offset", "[http][ws]") {
  const uint8_t key[4] = {1, 2, 3, 4};
  std::string plain;
  for (int i = 0; i < 37; ++i)
    plain += static_cast<char>(i * 7);
  std::string whole = plain;
  apply_mask(key, 0, &whole[0], whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    REQUIRE(static_cast<uint8_t>(whole[i]) == (static_cast<uint8_t>(plain[i]) ^ key[i % 4]));
  }
  for (size_t cut = 0; cut <= plain.size(); ++cut) {
    std::string out(plain.size(), '\0');
    apply_mask(key, 0, plain.data(), &out[0], cut);
    apply_mask(key, cut, plain.data() + cut, &out[cut], plain.size() - cut);
    REQUIRE(out == whole);
  }
}

TEST_CASE("frame faults", "[http][ws]") {
  for (int rsv : {0x10, 0x20, 0x40, 0x70})
    CHECK(error_of(bytes({0x81 | rsv, 0x00})) == "reserved bits set");
  for (int op : {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf}) {
    CHECK(error_of(bytes({0x80 | op, 0x00})) == "reserved opcode");
  }
  CHECK(error_of(bytes({0x09, 0x00})) == "fragmented control frame");
  CHECK(error_of(bytes({0x08, 0x00})) == "fragmented control frame");
  CHECK(error_of(bytes({0x89, 0x7e, 0x00, 0x7e})) == "control frame too long");
  CHECK(error_of(kHelloUnmasked, server()) == "unmasked frame");
  CHECK(error_of(kHelloMasked) == "masked frame");
  CHECK(error_of(bytes({0x82, 0x7e, 0x00, 0x7d})) == "non-minimal length");
  CHECK(error_of(bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff})) == "non-minimal length");
  CHECK(error_of(bytes({0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0})) == "length too large");
  // Faults are found at the byte that shows them.
  Outcome o = run(bytes({0x81, 0x01, 0x41, 0xc1, 0x00}));
  CHECK(o.error == "reserved bits set");
  CHECK(o.consumed == 3);
  o = run(bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff}));
  CHECK(o.consumed == 9);
  CHECK(error_close_code(Error::kReservedBits) == 1002);
  CHECK(error_close_code(Error::kFrameTooBig) == 1009);
  CHECK(error_close_code(Error::kInvalidUtf8) == 1007);
  for (int e = 1; e <= static_cast<int>(Error::kBadCloseCode); ++e) {
    const std::string name = error_name(static_cast<Error>(e));
    CHECK_FALSE(name.empty());
    CHECK(name != "unknown error");
    CHECK(error_close_code(static_cast<Error>(e)) >= 1002);
  }
}

TEST_CASE("the payload limit and the control limit at their boundaries", "[http][ws][limits]") {
  Options o;
  o.max_payload = 300;
  CHECK(run(encode_frame(Opcode::kBinary, std::string(300, 'a')), o).error.empty());
  o.max_payload = 299;
  const Outcome big = run(encode_frame(Opcode::kBinary, std::string(300, 'a')), o);
  CHECK(big.error == "frame too big");
  CHECK(big.consumed == 3);  // before the length's last byte
  o.max_payload = 0;
  CHECK(run(encode_frame(Opcode::kBinary, ""), o).error.empty());
  CHECK(error_of(encode_frame(Opcode::kBinary, "a"), o) == "frame too big");
  CHECK(run(encode_frame(Opcode::kPing, std::string(125, 'p'))).error.empty());
  CHECK(error_of(bytes({0x89, 0x7e})) == "control frame too long");
  CHECK(run(close_frame(1000, std::string(123, 'r'))).error.empty());
}

TEST_CASE("the message-size limit at its boundary, over fragments", "[http][ws][limits]") {
  const std::string msg = encode_frame(Opcode::kBinary, "12345", false) +
                          encode_frame(Opcode::kPing, "ping") +
                          encode_frame(Opcode::kContinuation, "67890");
  Options o;
  o.max_message = 10;
  CHECK(run(msg, o).error.empty());
  o.max_message = 9;
  CHECK(run(msg, o).error == "message too big");
  CHECK(error_close_code(Error::kMessageTooBig) == 1009);
}

TEST_CASE("message rules", "[http][ws]") {
  const std::string cont = encode_frame(Opcode::kContinuation, "x");
  const std::string start = encode_frame(Opcode::kText, "a", false);
  CHECK(error_of(cont) == "continuation without start");
  CHECK(error_of(encode_frame(Opcode::kText, "a") + cont) == "continuation without start");
  CHECK(error_of(start + encode_frame(Opcode::kText, "b")) == "message not finished");
  CHECK(error_of(start + encode_frame(Opcode::kBinary, "b", false)) == "message not finished");
  // Control frames may come between the fragments of a message.
  const Outcome o = run(start + encode_frame(Opcode::kPing, "p") + encode_frame(Opcode::kPong, "") +
                        encode_frame(Opcode::kContinuation, "b"));
  CHECK(o.error.empty());
  CHECK(o.frames == "0 1 [a]\n1 9 [p]\n1 10 []\n1 0 [b]\n");
  // Without the checker, the same frames pass the frame parser.
  Options raw;
  raw.check = false;
  CHECK(run(cont, raw).error.empty());
}

TEST_CASE("text is UTF-8 across fragments, and checked as it arrives", "[http][ws]") {
  // "€" (E2 82 AC) cut between fragments is fine.
  const std::string euro = encode_frame(Opcode::kText, "\xe2", false) +
                           encode_frame(Opcode::kContinuation, "\x82", false) +
                           encode_frame(Opcode::kContinuation, "\xac");
  CHECK(run(euro).error.empty());
  CHECK(error_of(encode_frame(Opcode::kText, "\xe2\x82")) == "invalid utf-8");
  CHECK(error_of(encode_frame(Opcode::kText, "\xe2", false) +
                 encode_frame(Opcode::kContinuation, "\x82")) == "invalid utf-8");
  CHECK(error_of(encode_frame(Opcode::kText, "ok\xed\xa0\x80")) == "invalid utf-8");
  // Binary messages are not checked.
  CHECK(run(encode_frame(Opcode::kBinary, "\xff")).error.empty());
  // The fault shows before the frame ends: 2 header bytes and "a", then the bad byte.
  const std::string bad = encode_frame(Opcode::kText, "a\xff" + std::string(50, 'z'));
  const Outcome r = run(bad);
  CHECK(r.error == "invalid utf-8");
  CHECK(r.consumed == 3);
}

TEST_CASE("a UTF-8 fault is placed at its byte whatever the slices (fuzz finding)",
          "[http][ws][regress]") {
  // Found by websocket_frame_fuzz: the checker took the whole slice before saying the text was
  // bad, so the fault's place depended on where the input was cut.
  const std::string in = bytes({0x81, 0x03, 0xe2, 0x32, 0x82, 0x28});
  const Outcome whole = run(in);
  CHECK(whole.error == "invalid utf-8");
  CHECK(whole.consumed == 3);
  for (size_t i = 0; i <= in.size(); ++i)
    CHECK(run(in, {}, {i}) == whole);
  MessageChecker mc;
  mc.init();
  FrameHeader h;
  h.fin = true;
  h.opcode = Opcode::kText;
  h.length = 5;
  REQUIRE(mc.on_header(h) == Error::kNone);
  size_t accepted = 99;
  CHECK(mc.on_payload(h, "ab\xe2\x32z", 5, &accepted) == Error::kInvalidUtf8);
  CHECK(accepted == 3);
}

TEST_CASE("close payloads", "[http][ws]") {
  CHECK(run(encode_frame(Opcode::kClose, "")).frames == "1 8 [] close 1005 \n");
  CHECK(run(close_frame(1000, "bye")).frames.find("close 1000 bye") != std::string::npos);
  for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                        3000, 3999, 4000, 4999}) {
    INFO(code);
    CHECK(valid_close_code(code));
    CHECK(run(close_frame(code, "")).error.empty());
  }
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    INFO(code);
    CHECK_FALSE(valid_close_code(code));
    CHECK(error_of(close_frame(code, "")) == "bad close code");
  }
  CHECK(error_of(encode_frame(Opcode::kClose, "\x03")) == "bad close payload");
  CHECK(error_of(close_frame(1000, "\xce\xba\xff")) == "invalid utf-8");
  CHECK(error_of(close_frame(1000, "\xce")) == "invalid utf-8");
  CHECK(run(close_frame(1000, "\xce\xba")).error.empty());
}

TEST_CASE("the handshake accept key", "[http][ws]") {
  char out[kAcceptKeySize];
  accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
  // RFC 6455 section 1.3.
  CHECK(std::string(out, sizeof(out)) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  accept_key("", out);
  CHECK(std::string(out, sizeof(out)) == "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
  CHECK(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK(valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  CHECK_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZR=="));  // stray bits in the padding
  CHECK_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));
  CHECK_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=A"));
  CHECK_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25j*Q=="));
  CHECK_FALSE(valid_client_key(""));
}

namespace {

std::vector<std::pair<Options, std::string>> corpus() {
  const std::string masked_seq =
      encode_frame(Opcode::kText, "caf\xc3", false, kKey) +
      encode_frame(Opcode::kPing, "are you there", true, kKey) +
      encode_frame(Opcode::kContinuation, "\xa9 au lait", true, kKey) +
      encode_frame(Opcode::kBinary, std::string(300, '\x05'), true, kKey) +
      encode_frame(Opcode::kBinary, "", true, kKey) +
      encode_frame(Opcode::kClose, std::string("\x03\xe8") + "done", true, kKey);
  Options small = server();
  small.max_payload = 200;
  return {
      {Options{}, kHelloUnmasked + kHelFragment + kPingUnmasked + kLoFragment},
      {server(), kHelloMasked + kPongMasked + masked_seq},
      {small, masked_seq},
      {Options{}, kHelloUnmasked + encode_frame(Opcode::kText, "\xe2\x82\x28")},
      {Options{}, bytes({0x81, 0x03, 0xe2, 0x32, 0x82, 0x28})},
      {Options{}, kHelloUnmasked + bytes({0x82, 0x7e, 0x00, 0x10})},
      {server(), kHelloMasked + bytes({0xc1, 0x80})},
      {Options{}, encode_frame(Opcode::kClose, "\x03\xedx")},
  };
}

}  // namespace

TEST_CASE("every split of frame sequences gives the same frames and result", "[http][ws][split]") {
  std::mt19937 rng(7);
  for (const auto& [opt, in] : corpus()) {
    const Outcome whole = run(in, opt);
    for (size_t i = 0; i <= in.size(); ++i) {
      REQUIRE(run(in, opt, {i}) == whole);
      for (size_t j = i; j <= in.size(); j += 5)
        REQUIRE(run(in, opt, {i, j}) == whole);
    }
    std::vector<size_t> every;
    for (size_t i = 1; i < in.size(); ++i)
      every.push_back(i);
    CHECK(run(in, opt, every) == whole);
    for (int round = 0; round < 50; ++round) {
      std::vector<size_t> cuts;
      for (size_t at = 0;;) {
        at += rng() % 16;
        if (at >= in.size()) break;
        cuts.push_back(at);
      }
      REQUIRE(run(in, opt, cuts) == whole);
    }
  }
}
