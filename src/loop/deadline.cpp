// deadline.cpp: see deadline.hpp. Layer: pure.
#include "loop/deadline.hpp"

#include <algorithm>
#include <climits>
#include <cmath>

namespace uvs::loop {

double Deadline::remaining(double now) const {
  const double elapsed = now - start_;
  if (t_.block < 0.0 && t_.total < 0.0) return -1.0;
  if (t_.block < 0.0) return std::max(t_.total - elapsed, 0.0);
  if (t_.total < 0.0) return std::max(t_.block - elapsed, 0.0);
  return std::min(t_.block, std::max(t_.total - elapsed, 0.0));
}

int wait_ms(double seconds) {
  if (seconds < 0.0) return -1;
  const double ms = std::ceil(seconds * 1e3);
  if (ms >= static_cast<double>(INT_MAX)) return INT_MAX;
  return static_cast<int>(ms);
}

}  // namespace uvs::loop
