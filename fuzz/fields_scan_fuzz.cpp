// fields_scan_fuzz.cpp: the header-block scanner of socket.http's client against a model of the
// line reader it stands in for.
// fuzz-link: net_core
//
// The input's first two bytes choose the limits (max_line, max_bytes), the rest is what the
// receive buffer holds. The model reads it as lua/socket/http.lua's read_headers does: lines
// end at LF with every CR dropped, a name is what precedes the first colon (lower-cased), the
// value what follows after Lua's %s, a line starting with a space or tab continues the value,
// a repeated field is joined with ", ", a line longer than max_line or lines adding up past
// max_bytes are errors. Checked, besides the sanitizers:
//   - kPlain: the model succeeds on the same bytes with the same block length, and gives the
//     same fields (after the scanner's names are lower-cased), none repeated;
//   - kIncomplete: the model finds no end of the block among the complete lines;
//   - every offset the scanner returns lies inside the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "invariant.hpp"
#include "socket/fields_scan.hpp"

using uvs::socket::scan_fields;
using uvs::socket::ScannedField;
using uvs::socket::ScannedFields;
using uvs::socket::ScanResult;

namespace {

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
  return s;
}

bool lua_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

enum class Model { kIncomplete, kDone, kError };

// read_headers over `data`; on kDone, `*fields` and `*used` (bytes up to the blank line's LF).
Model model(const std::string& data, size_t max_line, size_t max_bytes,
            std::map<std::string, std::string>* fields, size_t* used) {
  std::map<std::string, std::string> out;
  std::string name;
  std::string value;
  bool have = false;
  size_t pos = 0;
  size_t total = 0;
  auto flush = [&] {
    if (!have) return;
    auto it = out.find(name);
    if (it == out.end()) {
      out.emplace(name, value);
    } else {
      it->second += ", " + value;
    }
    have = false;
  };
  while (true) {
    const size_t lf = data.find('\n', pos);
    if (lf == std::string::npos) return Model::kIncomplete;
    std::string line;
    for (size_t i = pos; i < lf; ++i) {
      if (data[i] != '\r') line += data[i];
    }
    pos = lf + 1;
    if (line.empty()) {
      flush();
      *fields = out;
      *used = pos;
      return Model::kDone;
    }
    if (line.size() > max_line) return Model::kError;
    total += line.size();
    if (total > max_bytes) return Model::kError;
    if (have && (line[0] == ' ' || line[0] == '\t')) {
      value += line;
      continue;
    }
    flush();
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return Model::kError;
    name = lower(line.substr(0, colon));
    size_t v = colon + 1;
    while (v < line.size() && lua_space(line[v]))
      ++v;
    value = line.substr(v);
    have = true;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 2) return 0;
  const size_t max_line = bytes[0];
  const size_t max_bytes = static_cast<size_t>(bytes[1]) * 4;
  const std::string data(reinterpret_cast<const char*>(bytes) + 2, size - 2);
  ScannedFields out;
  const ScanResult r = scan_fields(data.data(), data.size(), max_line, max_bytes, 64, &out);
  std::map<std::string, std::string> want;
  size_t used = 0;
  const Model m = model(data, max_line, max_bytes, &want, &used);
  if (r == ScanResult::kPlain) {
    CHECK(m == Model::kDone);
    CHECK(out.consumed == used);
    CHECK(out.count >= 0 && out.count <= ScannedFields::kMax);
    std::map<std::string, std::string> got;
    for (int i = 0; i < out.count; ++i) {
      const ScannedField& f = out.field[i];
      CHECK(size_t{f.name} + f.name_len <= used);
      CHECK(size_t{f.value} + f.value_len <= used);
      CHECK(f.name_len <= 64);
      const bool fresh =
          got.emplace(lower(data.substr(f.name, f.name_len)), data.substr(f.value, f.value_len))
              .second;
      CHECK(fresh);
    }
    CHECK(got == want);
  } else if (r == ScanResult::kIncomplete) {
    CHECK(m == Model::kIncomplete);
  }
  return 0;
}
