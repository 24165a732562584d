// fields_scan.cpp: see fields_scan.hpp.
#include "socket/fields_scan.hpp"

#include <cstring>

namespace uvs::socket {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool same_name(const char* data, const ScannedField& a, const ScannedField& b) {
  if (a.name_len != b.name_len) return false;
  for (uint32_t i = 0; i < a.name_len; ++i) {
    if (lower(data[a.name + i]) != lower(data[b.name + i])) return false;
  }
  return true;
}

// What Lua's %s matches, less LF and CR (which a line here cannot hold).
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

}  // namespace

ScanResult scan_fields(const char* data, size_t n, size_t max_line, size_t max_bytes,
                       size_t max_name, ScannedFields* out) {
  out->count = 0;
  size_t pos = 0;
  size_t total = 0;
  // Offsets are 32-bit: a block that does not fit is unusual by far.
  if (n > UINT32_MAX) n = UINT32_MAX;
  while (true) {
    // An empty buffer may have no storage at all: memchr must not see its null pointer.
    if (pos >= n) return ScanResult::kIncomplete;
    const auto* lf = static_cast<const char*>(std::memchr(data + pos, '\n', n - pos));
    if (!lf) return ScanResult::kIncomplete;
    const auto end_lf = static_cast<size_t>(lf - data);
    size_t end = end_lf;
    if (end > pos && data[end - 1] == '\r') --end;
    const size_t len = end - pos;
    if (len == 0) {
      out->consumed = end_lf + 1;
      return ScanResult::kPlain;
    }
    if (len > max_line) return ScanResult::kUnusual;
    total += len;
    if (total > max_bytes) return ScanResult::kUnusual;
    const char* line = data + pos;
    // A continuation line, a CR inside the line, a line without a name: the reader's.
    if (line[0] == ' ' || line[0] == '\t') return ScanResult::kUnusual;
    if (std::memchr(line, '\r', len)) return ScanResult::kUnusual;
    const auto* colon = static_cast<const char*>(std::memchr(line, ':', len));
    if (!colon || colon == line) return ScanResult::kUnusual;
    if (out->count == ScannedFields::kMax) return ScanResult::kUnusual;
    ScannedField f;
    f.name = static_cast<uint32_t>(pos);
    f.name_len = static_cast<uint32_t>(colon - line);
    if (f.name_len > max_name) return ScanResult::kUnusual;
    size_t v = static_cast<size_t>(colon - data) + 1;
    while (v < end && is_space(data[v]))
      ++v;
    f.value = static_cast<uint32_t>(v);
    f.value_len = static_cast<uint32_t>(end - v);
    for (int i = 0; i < out->count; ++i) {
      if (same_name(data, out->field[i], f)) return ScanResult::kUnusual;
    }
    out->field[out->count++] = f;
    pos = end_lf + 1;
  }
}

}  // namespace uvs::socket
