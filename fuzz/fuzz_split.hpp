// fuzz_split.hpp: what the fuzz targets share: the cuts derived from the input and a check
// that aborts with a message (libFuzzer then keeps the input that broke it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace fuzz {

// Cut offsets for n bytes from a seed byte: seed 0 cuts after every byte, otherwise piece
// sizes follow a small generator seeded by it (1 to 2 * (seed % 32) + 1 bytes).
inline std::vector<size_t> cuts_for(uint8_t seed, size_t n) {
  std::vector<size_t> cuts;
  uint32_t x = seed * 2654435761u + 1;
  const uint32_t span = seed == 0 ? 1 : 2 * (seed % 32) + 1;
  for (size_t at = 0;;) {
    x = x * 1103515245u + 12345u;
    at += seed == 0 ? 1 : 1 + (x >> 16) % span;
    if (at >= n) return cuts;
    cuts.push_back(at);
  }
}

}  // namespace fuzz
