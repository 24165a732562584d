// fields.cpp: see fields.hpp. Layer: pure.
#include "http/fields.hpp"

#include <cstdlib>

namespace uvs::http {
namespace {

// What the line reader does with each byte.
enum ByteClass : uint8_t { kPlain, kCr, kLf, kCtl };

struct Tables {
  uint8_t line[256];
  bool tchar[256];
};

constexpr Tables make_tables() {
  Tables t{};
  for (int c = 0; c < 256; ++c) {
    t.line[c] = (c < 0x20 && c != '\t') || c == 0x7f ? kCtl : kPlain;
    t.tchar[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }
  t.line[static_cast<unsigned char>('\r')] = kCr;
  t.line[static_cast<unsigned char>('\n')] = kLf;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    t.tchar[static_cast<unsigned char>(c)] = true;
  return t;
}

constexpr Tables kTables = make_tables();

}  // namespace

void* heap_alloc(void*, void* ptr, size_t, size_t nsize) {
  if (nsize == 0) {
    std::free(ptr);
    return nullptr;
  }
  return std::realloc(ptr, nsize);
}

bool is_tchar(unsigned char c) { return kTables.tchar[c]; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

LineReader::Step LineReader::feed(Store& s, const char* p, size_t n, size_t limit, size_t* used,
                                  Error* err) {
  size_t i = 0;
  if (cr_) {
    // The CR that ended the previous chunk.
    if (n == 0) {
      *used = 0;
      return Step::kMore;
    }
    if (p[0] != '\n') {
      *used = 0;
      *err = Error::kBareCr;
      return Step::kError;
    }
    cr_ = false;
    *used = 1;
    return Step::kDone;
  }
  // Plain bytes are checked one by one and copied in runs.
  const size_t room = limit > length_ ? limit - length_ : 0;
  size_t run = 0;
  auto flush = [&]() {
    if (!s.bytes.append(s.alloc, p + i - run, run)) return false;
    length_ += static_cast<uint32_t>(run);
    run = 0;
    return true;
  };
  for (; i < n; ++i) {
    const uint8_t cls = kTables.line[static_cast<unsigned char>(p[i])];
    if (cls == kPlain) {
      if (run == room) {
        if (!flush()) break;
        *used = i;
        return Step::kTooLong;
      }
      ++run;
      continue;
    }
    if (!flush()) break;
    if (cls == kCr) {
      if (i + 1 == n) {
        cr_ = true;
        *used = n;
        return Step::kMore;
      }
      if (p[i + 1] != '\n') {
        *used = i + 1;
        *err = Error::kBareCr;
        return Step::kError;
      }
      *used = i + 2;
      return Step::kDone;
    }
    *used = i;
    *err = cls == kLf ? Error::kBareLf : Error::kControlByte;
    return Step::kError;
  }
  if (i == n && flush()) {
    *used = n;
    return Step::kMore;
  }
  *used = i - run;
  *err = Error::kNoMemory;
  return Step::kError;
}

Status FieldSection::feed(Store& s, const FieldLimits& limits, const char* p, size_t n,
                          size_t* used, Error* err) {
  size_t off = 0;
  for (;;) {
    if (!in_line_) {
      line_.start(s.bytes.size());
      in_line_ = true;
    }
    // The line may use what is left of the section's budget, less its own CRLF; once the
    // field count is reached, only the empty line fits.
    const bool full = s.fields.size() >= limits.max_count;
    const uint32_t left = limits.max_bytes - bytes_;
    size_t limit = full ? 0 : left >= 2 ? left - 2 : 0;
    if (limit > limits.max_line) limit = limits.max_line;
    size_t u = 0;
    const LineReader::Step step = line_.feed(s, p + off, n - off, limit, &u, err);
    off += u;
    *used = off;
    switch (step) {
      case LineReader::Step::kMore:
        return Status::kNeedMore;
      case LineReader::Step::kError:
        return Status::kError;
      case LineReader::Step::kTooLong:
        *err = full                                    ? Error::kTooManyHeaders
               : line_.length() + 1u > limits.max_line ? Error::kHeaderLineTooLong
                                                       : Error::kHeadersTooLarge;
        return Status::kError;
      case LineReader::Step::kDone:
        break;
    }
    in_line_ = false;
    if (line_.length() == 0) return Status::kComplete;
    bytes_ += line_.length() + 2;
    *err = parse_line(s);
    if (*err != Error::kNone) return Status::kError;
  }
}

Error FieldSection::parse_line(Store& s) {
  const uint32_t at = line_.begin();
  const std::string_view line = s.view(at, line_.length());
  if (is_ows(static_cast<unsigned char>(line[0]))) return Error::kObsFold;
  size_t i = 0;
  while (i < line.size() && is_tchar(static_cast<unsigned char>(line[i])))
    ++i;
  if (i == 0 || i == line.size()) return Error::kBadHeaderName;
  if (line[i] != ':') {
    size_t j = i;
    while (j < line.size() && is_ows(static_cast<unsigned char>(line[j])))
      ++j;
    return j < line.size() && line[j] == ':' ? Error::kSpaceBeforeColon : Error::kBadHeaderName;
  }
  const std::string_view value = trim_ows(line.substr(i + 1));
  Field f;
  f.name = at;
  f.name_len = static_cast<uint32_t>(i);
  f.value = at + static_cast<uint32_t>(value.data() - line.data());
  f.value_len = static_cast<uint32_t>(value.size());
  f.lower = s.bytes.size();
  // Lower-case the name into the storage, in small runs (appending may move the storage, and
  // the line with it, so the source is read back through its offset each time).
  char buf[64];
  for (uint32_t done = 0; done < f.name_len;) {
    uint32_t k = 0;
    for (; k < sizeof(buf) && done + k < f.name_len; ++k) {
      buf[k] = to_lower(s.bytes[at + done + k]);
    }
    if (!s.bytes.append(s.alloc, buf, k)) return Error::kNoMemory;
    done += k;
  }
  if (!s.fields.push(s.alloc, f)) return Error::kNoMemory;
  return Error::kNone;
}

}  // namespace uvs::http
