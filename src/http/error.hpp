// error.hpp: the faults the HTTP/1.1 message parsers report (head parser and chunked decoder),
// each with a stable name for Lua and the status code a server answers with.
// Layer: pure (no lua.h, no uv.h).
#pragma once

#include <cstdint>

namespace uvs::http {

enum class Error : uint8_t {
  kNone,
  // 400 Bad Request: the message is malformed.
  kBadRequestLine,       // not "method SP target SP version"
  kBadMethod,            // the method is not a token
  kBadTarget,            // empty, or a byte outside visible ASCII
  kBadVersion,           // not "HTTP/" DIGIT "." DIGIT
  kBareCr,               // CR not followed by LF
  kBareLf,               // LF not preceded by CR
  kControlByte,          // NUL, DEL or another control byte (HTAB aside)
  kBadHeaderName,        // empty, not a token, or no colon
  kSpaceBeforeColon,     // whitespace between a field name and its colon
  kObsFold,              // a field line starting with whitespace (RFC 9112 5.2)
  kBadContentLength,     // not 1*DIGIT, or larger than 2^63 - 1
  kConflictingLength,    // Content-Length values that differ
  kLengthAndEncoding,    // both Content-Length and Transfer-Encoding
  kBadTransferEncoding,  // chunked twice, chunked not last (request), a bad list, or HTTP/1.0
  kMissingHost,          // an HTTP/1.1 request without Host (RFC 9112 3.2)
  kDuplicateHost,        // more than one Host
  kBadChunkSize,         // a chunk-size line that is not hex digits
  kBadChunkExtension,    // a chunk extension that breaks the grammar
  kBadChunkEnd,          // chunk data not followed by CRLF
  kChunkLineTooLong,     // a chunk-size line (with its extensions) over its limit
  // 414 URI Too Long: the request line is over its limit.
  kUriTooLong,
  // 431 Request Header Fields Too Large.
  kHeaderLineTooLong,  // one field line over its limit
  kTooManyHeaders,     // more field lines than allowed
  kHeadersTooLarge,    // the field section over its limit
  // 413 Content Too Large: a chunk size over its limit.
  kChunkTooLarge,
  // 501 Not Implemented: a transfer coding other than chunked in a request.
  kUnsupportedCoding,
  // 505 HTTP Version Not Supported: a major version other than 1.
  kVersionNotSupported,
  // Faults only a response can have; a gateway answers 502 Bad Gateway.
  kBadStatusLine,      // not "version SP 3DIGIT [SP reason]"
  kBadStatus,          // a status code outside 100-599
  kStatusLineTooLong,  // the status line over its limit
  // 500: the storage for the head could not grow.
  kNoMemory,
};

// A short lower-case phrase naming the error ("bad method", "obs-fold", ...), stable for Lua
// code to compare; "" for kNone.
[[nodiscard]] const char* error_name(Error e);

// The status code a server answers a request that fails this way (400, 413, 414, 431, 501,
// 505; 502 for the response-only faults; 500 for kNoMemory; 0 for kNone).
[[nodiscard]] int error_status(Error e);

}  // namespace uvs::http
