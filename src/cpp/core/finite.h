// all_finite: are all `count` values finite (no NaN, no Inf)? Integer bit tests, so the loop
// vectorises under strict IEEE flags (std::isfinite does not: it is not vectorised there).
#pragma once
#include <cstdint>
#include <cstring>

namespace fastbp {

inline bool all_finite(const float* x, int64_t count) {
  const uint32_t exp = 0x7f800000u;
  uint32_t bad = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= uint32_t((b & exp) == exp);
  }
  return bad == 0;
}

inline bool all_finite(const double* x, int64_t count) {
  const uint64_t exp = 0x7ff0000000000000ull;
  uint64_t bad = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= uint64_t((b & exp) == exp);
  }
  return bad == 0;
}

}  // namespace fastbp
