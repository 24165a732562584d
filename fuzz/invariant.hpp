// invariant.hpp: CHECK(cond) for the fuzz targets that assert properties of what they parse.
// A broken invariant aborts, so libFuzzer keeps the input as a finding; unlike assert(), it
// stays on in every build type.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace uvs::fuzz {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

}  // namespace uvs::fuzz

#define CHECK(cond)                        \
  do {                                     \
    if (!(cond)) ::uvs::fuzz::fail(#cond); \
  } while (0)
