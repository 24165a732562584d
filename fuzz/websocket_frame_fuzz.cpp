// websocket_frame_fuzz.cpp: libFuzzer target for the WebSocket frame parser and message
// fuzz-link: http_parse mime_codec
// checker.
//
// Input: byte 0 picks the cuts, byte 1 the role and the limits; the rest is a byte stream of
// frames. Parsing it whole, cut and byte by byte must give the same frames and fault; no frame
// may break a limit; and since a valid frame has exactly one encoding (RSV zero, minimal
// length), encoding each frame read again must give back the bytes it was read from.
#include <string>
#include <string_view>

#include "fuzz_split.hpp"
#include "http/websocket.hpp"

namespace {

using namespace uvs::http::ws;

struct Outcome {
  std::string frames;
  std::string reencoded;  // every complete frame, encoded again
  Error error = Error::kNone;
  size_t consumed = 0;
  size_t framed = 0;  // bytes of the complete frames
  bool operator==(const Outcome& o) const {
    return frames == o.frames && reencoded == o.reencoded && error == o.error &&
           consumed == o.consumed && framed == o.framed;
  }
};

Outcome run(Role role, uint64_t max_payload, uint64_t max_message, std::string_view in,
            const std::vector<size_t>& cuts) {
  FrameParser fp;
  fp.init(role, max_payload);
  MessageChecker mc;
  mc.init(max_message);
  Outcome o;
  std::string payload;
  uint64_t message = 0;
  size_t at = 0;
  for (size_t k = 0; k <= cuts.size() && o.error == Error::kNone; ++k) {
    const size_t end = k < cuts.size() ? cuts[k] : in.size();
    std::string chunk(in.substr(at, end - at));
    char* p = chunk.empty() ? nullptr : &chunk[0];
    size_t n = chunk.size();
    while (o.error == Error::kNone) {
      const FrameParser::Step s = fp.feed(p, n);
      FUZZ_CHECK(s.consumed <= n);
      o.consumed += s.consumed;
      const FrameHeader& h = fp.header();
      Error e = Error::kNone;
      if (s.event == FrameParser::Event::kError) {
        e = fp.error();
        FUZZ_CHECK(e != Error::kNone);
      } else if (s.event == FrameParser::Event::kHeader) {
        payload.clear();
        FUZZ_CHECK(h.length <= max_payload);
        FUZZ_CHECK(h.masked == (role == Role::kServer));
        if (is_control(h.opcode)) FUZZ_CHECK(h.fin && h.length <= 125);
        e = mc.on_header(h);
        if (e == Error::kNone && !is_control(h.opcode)) {
          if (h.opcode != Opcode::kContinuation) message = 0;
          message += h.length;
          FUZZ_CHECK(message <= max_message);
        }
      } else if (s.event == FrameParser::Event::kPayload) {
        FUZZ_CHECK(s.data == p && s.size == s.consumed && s.offset == payload.size());
        apply_mask(h.mask, s.offset, p, s.size);
        payload.append(p, s.size);
        FUZZ_CHECK(payload.size() <= h.length);
        size_t accepted = 0;
        e = mc.on_payload(h, p, s.size, &accepted);
        FUZZ_CHECK(accepted <= s.size);
        if (e != Error::kNone) o.consumed -= s.size - accepted;
      }
      if (e == Error::kNone && s.end && s.event != FrameParser::Event::kNeedMore) {
        FUZZ_CHECK(payload.size() == h.length);
        FUZZ_CHECK(fp.at_frame_boundary());
        e = mc.on_frame_end(h);
        o.frames += std::to_string(h.fin) + " " + std::to_string(int(h.opcode)) + " ";
        o.frames += payload;
        o.frames += '\n';
        if (e == Error::kNone && h.opcode == Opcode::kClose) {
          FUZZ_CHECK(mc.close_code() == 1005 || valid_close_code(mc.close_code()));
        }
        o.reencoded += encode_frame(h.opcode, payload, h.fin, h.masked ? h.mask : nullptr);
        o.framed = o.consumed;
      }
      o.error = e;
      if (p) p += s.consumed;
      n -= s.consumed;
      if (s.event == FrameParser::Event::kNeedMore) {
        FUZZ_CHECK(n == 0);
        break;
      }
    }
    at = end;
  }
  FUZZ_CHECK(o.consumed <= in.size());
  FUZZ_CHECK(o.reencoded == in.substr(0, o.framed));
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t seed = data[0];
  const uint8_t pick = data[1];
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  const Role role = (pick & 1) ? Role::kServer : Role::kClient;
  uint64_t max_payload = FrameParser::kDefaultMaxPayload;
  uint64_t max_message = MessageChecker::kDefaultMaxMessage;
  if (pick & 2) {
    max_payload = (pick >> 2) * 8;
    max_message = (pick >> 4) * 40;
  }
  const Outcome whole = run(role, max_payload, max_message, in, {});
  FUZZ_CHECK(run(role, max_payload, max_message, in, fuzz::cuts_for(seed, in.size())) == whole);
  if (in.size() <= 4096) {
    FUZZ_CHECK(run(role, max_payload, max_message, in, fuzz::cuts_for(0, in.size())) == whole);
  }
  return 0;
}
