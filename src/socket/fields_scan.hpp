// fields_scan.hpp: the header block of an HTTP response found whole in a receive buffer, in its
// plain form, so that socket.http's client can take it in one call instead of a receive per
// line. Layer: pure (no lua.h, no uv.h).
//
// The client's own reader (lua/socket/http.lua, read_headers) stays the definition: lines end
// at LF with every CR dropped, a name is what comes before the first colon, lower-cased, the
// value what follows it after any spaces, a line that starts with a space or tab continues the
// previous value, a repeated field is joined with ", ". This scanner answers only where that
// reading is trivial and agrees with it byte for byte: a block whose lines each end in LF or
// CRLF, with no other CR, no continuation, no repeated name, every line under the limits. For
// anything else it says kUnusual and the caller reads line by line as before, which gives the
// same answer (or the same error) it always gave.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uvs::socket {

struct ScannedField {
  uint32_t name;  // offsets into the scanned bytes
  uint32_t name_len;
  uint32_t value;
  uint32_t value_len;
};

struct ScannedFields {
  static constexpr int kMax = 32;  // more fields than this: kUnusual
  ScannedField field[kMax];
  int count = 0;
  size_t consumed = 0;  // bytes of the block, its blank line included
};

enum class ScanResult : uint8_t {
  kIncomplete,  // no blank line in the bytes yet
  kPlain,       // *out holds the block
  kUnusual,     // read it line by line
};

// Scans data[0, n) for a header block. `max_line`: the longest line accepted (CR excluded);
// `max_bytes`: the most bytes all lines may add up to (CRs and LFs excluded); `max_name`: the
// longest name returned (a longer one is kUnusual).
[[nodiscard]] ScanResult scan_fields(const char* data, size_t n, size_t max_line, size_t max_bytes,
                                     size_t max_name, ScannedFields* out);

}  // namespace uvs::socket
