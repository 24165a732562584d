// fields.hpp: the building blocks shared by the head parser and the chunked decoder's trailers:
// growable storage with no destructor, a line reader that checks bytes as they arrive, and a
// field-section reader (RFC 9112 section 5) that keeps every field in order.
// Layer: pure (no lua.h, no uv.h).
//
// Nothing here has a destructor. The objects may live in Lua userdata memory, where a Lua error
// (a longjmp) can end their life at any moment; the memory they own comes from an Allocator
// with lua_Alloc's contract and is given back by an explicit release(), which the owner calls
// (the Lua binding from __gc, C++ code through Scoped<T>).
//
// Each byte of a head is copied once, from the caller's chunk into the storage, as it is read.
// Names and values are offsets into that storage, so growing it never invalidates them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "http/error.hpp"

namespace uvs::http {

// What a feed call ended with. kData is the chunked decoder's only: a slice of body data.
enum class Status : uint8_t { kNeedMore, kData, kComplete, kError };

// lua_Alloc's contract: nsize 0 frees ptr and returns null; otherwise returns a block of nsize
// bytes holding the first min(osize, nsize) bytes of ptr, or null (ptr left untouched).
using AllocFn = void* (*)(void* ud, void* ptr, size_t osize, size_t nsize);
void* heap_alloc(void* ud, void* ptr, size_t osize, size_t nsize);

struct Allocator {
  AllocFn fn = &heap_alloc;
  void* ud = nullptr;
};

// No limit may exceed this, so that every offset fits in 32 bits.
inline constexpr uint32_t kMaxLimit = uint32_t{1} << 24;

// A growable array of trivially copyable T, owned by whoever calls release().
template <class T>
class PodVector {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  [[nodiscard]] T* data() const { return data_; }
  [[nodiscard]] uint32_t size() const { return size_; }
  [[nodiscard]] T& operator[](uint32_t i) const { return data_[i]; }
  void clear() { size_ = 0; }
  // Appends n items; false (and nothing appended) if the storage cannot grow.
  [[nodiscard]] bool append(const Allocator& a, const T* items, size_t n) {
    if (n > cap_ - size_ && !grow(a, n)) return false;
    if (n > 0) std::memcpy(data_ + size_, items, n * sizeof(T));
    size_ += static_cast<uint32_t>(n);
    return true;
  }
  [[nodiscard]] bool push(const Allocator& a, const T& item) { return append(a, &item, 1); }
  void release(const Allocator& a) {
    if (data_) a.fn(a.ud, data_, size_t{cap_} * sizeof(T), 0);
    data_ = nullptr;
    size_ = cap_ = 0;
  }

 private:
  bool grow(const Allocator& a, size_t n) {
    size_t want = size_t{cap_} * 2;
    if (want < 64) want = 64;
    if (want < size_t{size_} + n) want = size_t{size_} + n;
    if (want > UINT32_MAX) return false;
    void* p = a.fn(a.ud, data_, size_t{cap_} * sizeof(T), want * sizeof(T));
    if (!p) return false;
    data_ = static_cast<T*>(p);
    cap_ = static_cast<uint32_t>(want);
    return true;
  }

  T* data_ = nullptr;
  uint32_t size_ = 0;
  uint32_t cap_ = 0;
};

// One field line: offsets into the byte storage. `lower` is the name in lower case, stored
// right after the line.
struct Field {
  uint32_t name;
  uint32_t name_len;
  uint32_t lower;
  uint32_t value;
  uint32_t value_len;
};

struct Store {
  PodVector<char> bytes;
  PodVector<Field> fields;
  Allocator alloc;

  [[nodiscard]] std::string_view view(uint32_t at, uint32_t n) const {
    return {bytes.data() + at, n};
  }
  void clear() {
    bytes.clear();
    fields.clear();
  }
  void release() {
    bytes.release(alloc);
    fields.release(alloc);
  }
};

// Byte classes (RFC 9110 section 5.6.2 and 5.5).
[[nodiscard]] bool is_tchar(unsigned char c);
[[nodiscard]] inline bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }
[[nodiscard]] inline char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}
// ASCII case-insensitive equality.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b);
// `s` without leading and trailing SP and HTAB.
[[nodiscard]] std::string_view trim_ows(std::string_view s);

// Reads one CRLF-terminated line into the storage, checking each byte as it arrives: a CR must
// be followed by LF, an LF must follow a CR, control bytes other than HTAB are refused, and the
// line (without its CRLF) may not be longer than the limit given with each call.
class LineReader {
 public:
  enum class Step : uint8_t { kMore, kDone, kTooLong, kError };

  void start(uint32_t at) {
    begin_ = at;
    length_ = 0;
    cr_ = false;
  }
  [[nodiscard]] uint32_t begin() const { return begin_; }
  [[nodiscard]] uint32_t length() const { return length_; }

  // Reads from [p, p + n) and sets *used to the bytes taken. kMore: all taken, the line goes
  // on. kDone: the line ended (its CRLF is taken, not stored). kTooLong: the next byte would
  // make the line longer than `limit` (it is not taken). kError: *err says why; *used stops
  // before the faulty byte.
  [[nodiscard]] Step feed(Store& s, const char* p, size_t n, size_t limit, size_t* used,
                          Error* err);

 private:
  uint32_t begin_ = 0;
  uint32_t length_ = 0;
  bool cr_ = false;
};

struct FieldLimits {
  uint32_t max_line;   // one field line, without its CRLF
  uint32_t max_count;  // field lines
  uint32_t max_bytes;  // all field lines, each with its CRLF (the final empty line not counted)
};

// Reads a field section up to and including the empty line that ends it. Each field line
// becomes a Field in the store, in the order received; repeated fields are kept apart.
class FieldSection {
 public:
  void reset() {
    in_line_ = false;
    bytes_ = 0;
  }
  // kNeedMore (all taken), kComplete (*used ends after the empty line) or kError (*err set,
  // *used stops before the faulty byte, or after the line found malformed).
  [[nodiscard]] Status feed(Store& s, const FieldLimits& limits, const char* p, size_t n,
                            size_t* used, Error* err);
  // The bytes of the field lines read so far, as counted against max_bytes.
  [[nodiscard]] uint32_t bytes() const { return bytes_; }

 private:
  [[nodiscard]] Error parse_line(Store& s);

  LineReader line_;
  bool in_line_ = false;
  uint32_t bytes_ = 0;
};

// Splits a comma-separated list value (RFC 9110 section 5.6.1) and calls f(element) for each
// element, trimmed of OWS; empty elements are passed too, as empty views. Stops early, and
// returns false, when f returns false.
template <class F>
bool for_each_element(std::string_view list, F&& f) {
  for (;;) {
    const size_t comma = list.find(',');
    if (!f(trim_ows(list.substr(0, comma)))) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

// A T that releases its storage when it goes out of scope (C++ callers and tests; the Lua
// binding releases from __gc instead).
template <class T>
class Scoped : public T {
 public:
  using T::T;
  Scoped() = default;
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;
  ~Scoped() { T::release(); }
};

}  // namespace uvs::http
