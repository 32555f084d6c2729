// all_finite: are all `count` values finite (no NaN, no Inf)? Integer bit tests (all exponent
// bits set means NaN or Inf), so the loop vectorises under strict IEEE flags, which
// std::isfinite does not.
#pragma once
#include <cstdint>
#include <cstring>

namespace fastbp {

namespace detail {
template <typename T, typename Bits, Bits kExp>
inline bool all_finite_bits(const T* x, int64_t count) {
  static_assert(sizeof(T) == sizeof(Bits), "bit pattern width");
  Bits bad = 0;
  for (int64_t i = 0; i < count; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= Bits((b & kExp) == kExp);
  }
  return bad == 0;
}
}  // namespace detail

inline bool all_finite(const float* x, int64_t count) {
  return detail::all_finite_bits<float, uint32_t, 0x7f800000u>(x, count);
}
inline bool all_finite(const double* x, int64_t count) {
  return detail::all_finite_bits<double, uint64_t, 0x7ff0000000000000ull>(x, count);
}

}  // namespace fastbp
