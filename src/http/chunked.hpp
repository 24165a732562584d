// chunked.hpp: an incremental decoder for the chunked transfer coding (RFC 9112 section 7.1).
// Layer: pure (no lua.h, no uv.h).
//
// The decoder reads the encoded body in chunks cut anywhere and hands back the data as slices
// of the caller's own chunks: data is never copied. Chunk-size lines are read byte by byte
// with nothing stored (extensions are checked against the grammar, bounded, and dropped);
// the trailer section is read like a head's fields and kept (see fields.hpp).
//
// The decoder has no destructor: its owner calls release().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/error.hpp"
#include "http/fields.hpp"

namespace uvs::http {

struct ChunkedLimits {
  uint64_t max_chunk_size = uint64_t{INT64_MAX};  // one chunk's size
  uint32_t max_chunk_line = 4096;      // a chunk-size line with its extensions, without CRLF
  uint32_t max_trailer_line = 8192;    // one trailer field line, without its CRLF
  uint32_t max_trailers = 100;         // trailer field lines
  uint32_t max_trailer_bytes = 32768;  // all trailer field lines, each with its CRLF
};

class ChunkedDecoder {
 public:
  struct Step {
    Status status;          // kNeedMore, kData, kComplete or kError
    size_t consumed;        // bytes of the input used (the data slice among them)
    std::string_view data;  // kData: body bytes, a slice of the input
  };

  ChunkedDecoder() = default;
  // Sets the limits (line limits clamped to kMaxLimit) and the allocator, then resets.
  void init(const ChunkedLimits& limits, Allocator alloc = {});
  void reset();
  void release() { store_.release(); }

  // Decodes from [p, p + n) up to the next piece of data. kNeedMore: all taken, no data.
  // kData: `data` holds body bytes; call again with the rest of the input. kComplete: the last
  // chunk and the trailer section are read and `consumed` ends right after them. kError:
  // error() says why, and `consumed` stops before the faulty byte. After kComplete or kError
  // the same status comes back, consuming nothing, until reset().
  [[nodiscard]] Step feed(const char* p, size_t n);

  [[nodiscard]] Error error() const { return error_; }
  [[nodiscard]] bool complete() const { return state_ == State::kDone; }
  // Body bytes handed out so far, and bytes of the encoding taken so far, since reset().
  [[nodiscard]] uint64_t body_bytes() const { return body_bytes_; }
  [[nodiscard]] uint64_t encoded_bytes() const { return encoded_bytes_; }

  // The trailer fields, once complete.
  [[nodiscard]] uint32_t trailer_count() const { return store_.fields.size(); }
  [[nodiscard]] std::string_view trailer_name(uint32_t i) const {
    return store_.view(store_.fields[i].name, store_.fields[i].name_len);
  }
  [[nodiscard]] std::string_view trailer_lower_name(uint32_t i) const {
    return store_.view(store_.fields[i].lower, store_.fields[i].name_len);
  }
  [[nodiscard]] std::string_view trailer_value(uint32_t i) const {
    return store_.view(store_.fields[i].value, store_.fields[i].value_len);
  }

 private:
  enum class State : uint8_t {
    kSizeStart,  // the first hex digit
    kSize,       // more hex digits
    kSizeWs,     // BWS after the size: ";" must follow
    kExtStart,   // after ";": BWS, then an extension name
    kExtName,
    kExtNameWs,  // BWS after a name: "=", ";" or CR
    kValStart,   // after "=": BWS, then a token or a quoted string
    kValToken,
    kValQuoted,
    kValEscape,  // after a backslash in a quoted string
    kValWs,      // after a value: BWS, then ";" or CR
    kSizeLf,     // CR seen, LF must follow
    kData,
    kDataCr,
    kDataLf,
    kTrailers,
    kDone,
    kError,
  };

  [[nodiscard]] Error size_line_byte(unsigned char c);
  Step fail(Error e, size_t consumed);

  ChunkedLimits limits_;
  State state_ = State::kSizeStart;
  Error error_ = Error::kNone;
  uint32_t line_ = 0;  // bytes of the chunk-size line so far
  uint64_t size_ = 0;  // the chunk being read: its size, then the bytes still to come
  uint64_t body_bytes_ = 0;
  uint64_t encoded_bytes_ = 0;
  Store store_;
  FieldSection trailers_;
};

static_assert(std::is_trivially_destructible_v<ChunkedDecoder>);

}  // namespace uvs::http
