// chunked.cpp: see chunked.hpp. Layer: pure.
//
// chunked-body   = *chunk last-chunk trailer-section CRLF
// chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
// last-chunk     = 1*("0") [ chunk-ext ] CRLF
// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
// chunk-ext-val  = token / quoted-string
//
// Whitespace is also taken before the CRLF of a chunk-size line, as it is before ";".
#include "http/chunked.hpp"

#include <algorithm>

namespace uvs::http {
namespace {

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// qdtext and the bytes a quoted-pair may escape (RFC 9110 section 5.6.4), HTAB and SP aside.
bool is_qdtext(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x5c && c != 0x7f); }
bool is_escapable(unsigned char c) { return c >= 0x21 && c != 0x7f; }

}  // namespace

void ChunkedDecoder::init(const ChunkedLimits& limits, Allocator alloc) {
  limits_ = limits;
  limits_.max_chunk_line = std::min(limits.max_chunk_line, kMaxLimit);
  limits_.max_trailer_line = std::min(limits.max_trailer_line, kMaxLimit);
  limits_.max_trailers = std::min(limits.max_trailers, kMaxLimit);
  limits_.max_trailer_bytes = std::min(limits.max_trailer_bytes, kMaxLimit);
  store_.alloc = alloc;
  reset();
}

void ChunkedDecoder::reset() {
  state_ = State::kSizeStart;
  error_ = Error::kNone;
  line_ = 0;
  size_ = 0;
  body_bytes_ = 0;
  encoded_bytes_ = 0;
  store_.clear();
  trailers_.reset();
}

ChunkedDecoder::Step ChunkedDecoder::fail(Error e, size_t consumed) {
  error_ = e;
  state_ = State::kError;
  encoded_bytes_ += consumed;
  return {Status::kError, consumed, {}};
}

// One byte of a chunk-size line other than its CR and LF.
Error ChunkedDecoder::size_line_byte(unsigned char c) {
  const bool ws = is_ows(c);
  switch (state_) {
    case State::kSizeStart:
    case State::kSize: {
      const int d = hex_value(c);
      if (d >= 0) {
        // size * 16 + d <= max, written so that nothing wraps.
        const uint64_t digit = static_cast<uint64_t>(d);
        if (digit > limits_.max_chunk_size || size_ > (limits_.max_chunk_size - digit) / 16) {
          return Error::kChunkTooLarge;
        }
        size_ = size_ * 16 + digit;
        state_ = State::kSize;
        return Error::kNone;
      }
      if (state_ == State::kSizeStart) return Error::kBadChunkSize;
      if (c == ';') {
        state_ = State::kExtStart;
      } else if (ws) {
        state_ = State::kSizeWs;
      } else {
        return Error::kBadChunkSize;
      }
      return Error::kNone;
    }
    case State::kSizeWs:
      if (c == ';') {
        state_ = State::kExtStart;
      } else if (!ws) {
        return Error::kBadChunkSize;
      }
      return Error::kNone;
    case State::kExtStart:
      if (is_tchar(c)) {
        state_ = State::kExtName;
      } else if (!ws) {
        return Error::kBadChunkExtension;
      }
      return Error::kNone;
    case State::kExtName:
    case State::kExtNameWs:
      if (state_ == State::kExtName && is_tchar(c)) return Error::kNone;
      if (ws) {
        state_ = State::kExtNameWs;
      } else if (c == ';') {
        state_ = State::kExtStart;
      } else if (c == '=') {
        state_ = State::kValStart;
      } else {
        return Error::kBadChunkExtension;
      }
      return Error::kNone;
    case State::kValStart:
      if (is_tchar(c)) {
        state_ = State::kValToken;
      } else if (c == '"') {
        state_ = State::kValQuoted;
      } else if (!ws) {
        return Error::kBadChunkExtension;
      }
      return Error::kNone;
    case State::kValToken:
    case State::kValWs:
      if (state_ == State::kValToken && is_tchar(c)) return Error::kNone;
      if (ws) {
        state_ = State::kValWs;
      } else if (c == ';') {
        state_ = State::kExtStart;
      } else {
        return Error::kBadChunkExtension;
      }
      return Error::kNone;
    case State::kValQuoted:
      if (c == '"') {
        state_ = State::kValWs;
      } else if (c == '\\') {
        state_ = State::kValEscape;
      } else if (!ws && !is_qdtext(c)) {
        return Error::kBadChunkExtension;
      }
      return Error::kNone;
    case State::kValEscape:
      if (!ws && !is_escapable(c)) return Error::kBadChunkExtension;
      state_ = State::kValQuoted;
      return Error::kNone;
    default:
      return Error::kBadChunkSize;
  }
}

ChunkedDecoder::Step ChunkedDecoder::feed(const char* p, size_t n) {
  if (state_ == State::kDone) return {Status::kComplete, 0, {}};
  if (state_ == State::kError) return {Status::kError, 0, {}};
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(p[i]);
    switch (state_) {
      case State::kData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(size_, n - i));
        size_ -= take;
        if (size_ == 0) state_ = State::kDataCr;
        body_bytes_ += take;
        encoded_bytes_ += i + take;
        return {Status::kData, i + take, std::string_view(p + i, take)};
      }
      case State::kDataCr:
      case State::kDataLf:
        if (c != (state_ == State::kDataCr ? '\r' : '\n')) return fail(Error::kBadChunkEnd, i);
        state_ = state_ == State::kDataCr ? State::kDataLf : State::kSizeStart;
        line_ = 0;
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return fail(Error::kBareCr, i);
        ++i;
        if (size_ == 0) {
          state_ = State::kTrailers;
        } else {
          state_ = State::kData;
        }
        break;
      case State::kTrailers: {
        const FieldLimits fl{limits_.max_trailer_line, limits_.max_trailers,
                             limits_.max_trailer_bytes};
        size_t u = 0;
        Error e = Error::kNone;
        const Status st = trailers_.feed(store_, fl, p + i, n - i, &u, &e);
        i += u;
        if (st == Status::kError) return fail(e, i);
        if (st == Status::kComplete) {
          state_ = State::kDone;
          encoded_bytes_ += i;
          return {Status::kComplete, i, {}};
        }
        break;
      }
      default: {
        // The chunk-size line.
        if (c == '\r') {
          if (state_ == State::kSizeStart) return fail(Error::kBadChunkSize, i);
          if (state_ == State::kExtStart || state_ == State::kValStart ||
              state_ == State::kValQuoted || state_ == State::kValEscape) {
            return fail(Error::kBadChunkExtension, i);
          }
          state_ = State::kSizeLf;
          ++i;
          break;
        }
        if (c == '\n') return fail(Error::kBareLf, i);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(Error::kControlByte, i);
        if (line_ == limits_.max_chunk_line) return fail(Error::kChunkLineTooLong, i);
        const Error e = size_line_byte(c);
        if (e != Error::kNone) return fail(e, i);
        ++line_;
        ++i;
        break;
      }
    }
  }
  encoded_bytes_ += n;
  return {Status::kNeedMore, n, {}};
}

}  // namespace uvs::http
