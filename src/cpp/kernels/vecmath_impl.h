// The elementwise math of vecmath.h on SIMD values (vecmath_simd.h), included once per
// instruction set inside namespace FASTBP_VM_NS. Accuracy and special values: see vecmath.h.
//
// exp / expm1: x = k ln2 + r, |r| <= ln2/2 (k by the round-to-nearest "magic number" add,
//   ln2 split in two so k ln2_hi is exact); expm1(r) = r + r^2 Q(r) with Q the Taylor series
//   (degree 13 in double, 8 in float); exp(x) = 2^k (1 + expm1(r)), the 2^k applied as two
//   exact power-of-two factors so that overflow, underflow and subnormal results come out of
//   the multiplication; expm1(x) = 2 (2^(k-1) expm1(r) + (2^(k-1) - 1/2)).
// log1p: u = 1 + x rounded, c = (1 + x - u) / u its correction; u = 2^e m with m in
//   [sqrt(1/2), sqrt(2)); log(m) = f - s (f - R), f = m - 1 (exact), s = f / (2 + f),
//   R = 2 s^2/3 + 2 s^4/5 + ... (the atanh series); log1p = e ln2 + log(m) + c.
// tanh: t = expm1(-2|x|), tanh|x| = -t / (2 + t), the sign of x restored.
// erf: |x| < 1: x P(x^2); 1 <= |x| < X (6 double, 4 float): 1 - exp(-x^2) R(|x|) with
//   exp(-x^2) corrected for the rounding of x^2; beyond, +-1 (vecmath_coeffs.h).
// ncdf(z) = Phi(z) = (1 + erf(z / sqrt 2)) / 2, with Phi = erfc(|x|)/2 directly on the
//   negative side (no cancellation).
#pragma once
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/vecmath.h"
#include "kernels/vecmath_coeffs.h"
#include "kernels/vecmath_simd.h"

namespace fastbp {
namespace FASTBP_VM_NS {

template <typename T>
struct VmConst;
template <>
struct VmConst<double> {
  static constexpr double log2e = 1.4426950408889634, ln2_hi = 0.6931471803691238,
                          ln2_lo = 1.9082149292705877e-10, magic = 6755399441055744.0,  // 1.5*2^52
      exp_hi = 710.0, exp_lo = -746.0, expm1_lo = -40.0, sqrt_half = 0.7071067811865476,
                          tiny = 0x1p-54, erf_big = 6.0;
  static constexpr int mant = 52, bias = 1023, kbias = 2048, taylor = 13, atanh_terms = 10;
};
template <>
struct VmConst<float> {
  static constexpr float log2e = 1.44269504f, ln2_hi = 0.693145751953125f,
                         ln2_lo = 1.428606765330187e-06f, magic = 12582912.0f,  // 1.5*2^23
      exp_hi = 89.0f, exp_lo = -104.0f, expm1_lo = -18.0f, sqrt_half = 0.70710677f,
                         tiny = 0x1p-25f, erf_big = 4.0f;
  static constexpr int mant = 23, bias = 127, kbias = 256, taylor = 8, atanh_terms = 4;
};

// p(x) = c[0] + c[1] x + ... by Horner with FMA.
template <typename T, int N>
inline Vec<T> horner(const T (&c)[N], Vec<T> x) {
  Vec<T> p(c[N - 1]);
  for (int i = N - 2; i >= 0; --i) p = fma(p, x, Vec<T>(c[i]));
  return p;
}

// Reduction for exp/expm1 (x already clamped): returns r and sets kd (integral) and the
// integer k in the Int lanes.
template <typename T, typename I>
inline Vec<T> exp_reduce(Vec<T> x, Vec<T>& kd, I& k) {
  using C = VmConst<T>;
  const Vec<T> t = fma(x, Vec<T>(C::log2e), Vec<T>(C::magic));
  kd = t - Vec<T>(C::magic);
  k = as_int(t) - as_int(Vec<T>(C::magic));
  const Vec<T> r = fma(kd, Vec<T>(-C::ln2_hi), x);
  return fma(kd, Vec<T>(-C::ln2_lo), r);
}

// Series coefficients: 1/2!, 1/3!, ... (Taylor of (e^r - 1 - r) / r^2) and 2/3, 2/5, ...
// (2 atanh(s) = 2s + s R(s^2)), computed at compile time.
template <typename T>
struct VmSeries {
  static constexpr int NT = VmConst<T>::taylor - 1, NA = VmConst<T>::atanh_terms;
  T taylor[NT];
  T atanh[NA];
  constexpr VmSeries() : taylor(), atanh() {
    double f = 1.0;
    for (int i = 0; i < NT; ++i) {
      f *= double(i + 2);
      taylor[i] = T(1.0 / f);
    }
    for (int i = 0; i < NA; ++i) atanh[i] = T(2.0 / double(2 * i + 3));
  }
};
template <typename T>
inline constexpr VmSeries<T> kVmSeries{};

// expm1(r) for |r| <= ln2/2: r + r^2 (1/2! + r/3! + ...), Taylor to degree C::taylor.
template <typename T>
inline Vec<T> expm1_poly(Vec<T> r) {
  return fma(r * r, horner(kVmSeries<T>.taylor, r), r);
}

// 2^k as two power-of-two factors s1 * s2 = 2^k (each a normal number for the clamped k).
template <typename T, typename I>
inline void pow2_split(I k, Vec<T>& s1, Vec<T>& s2) {
  using C = VmConst<T>;
  const I hb = shr<1>(k + int_like(Vec<T>(T(0)), C::kbias));  // floor(k/2) + kbias/2
  s1 = as_vec(shl<C::mant>(hb + int_like(Vec<T>(T(0)), C::bias - C::kbias / 2)));
  s2 = as_vec(shl<C::mant>(k - hb + int_like(Vec<T>(T(0)), C::bias + C::kbias / 2)));
}

template <typename T>
inline Vec<T> vexp(Vec<T> x) {
  using C = VmConst<T>;
  x = vmax(Vec<T>(C::exp_lo), vmin(Vec<T>(C::exp_hi), x));  // NaN kept (second operand)
  Vec<T> kd;
  decltype(as_int(x)) k;
  const Vec<T> r = exp_reduce(x, kd, k);
  const Vec<T> p = Vec<T>(T(1)) + expm1_poly(r);
  Vec<T> s1, s2;
  pow2_split<T>(k, s1, s2);
  return (p * s1) * s2;
}

// expm1 of x already clamped to [expm1_lo, exp_hi] (or NaN), without vexpm1's return of tiny
// arguments as themselves (vtanh returns its own tiny arguments).
template <typename T>
inline Vec<T> expm1_clamped(Vec<T> xc) {
  using C = VmConst<T>;
  Vec<T> kd;
  decltype(as_int(xc)) k;
  const Vec<T> r = exp_reduce(xc, kd, k);
  const Vec<T> q = expm1_poly(r);
  // s = 2^(k-1) exactly (k - 1 >= -60 and <= 1023 after the clamp)
  const Vec<T> s = as_vec(shl<C::mant>(k + int_like(xc, C::bias - 1)));
  return Vec<T>(T(2)) * fma(s, q, s - Vec<T>(T(0.5)));
}

template <typename T>
inline Vec<T> vexpm1(Vec<T> x) {
  using C = VmConst<T>;
  const Vec<T> res = expm1_clamped(vmax(Vec<T>(C::expm1_lo), vmin(Vec<T>(C::exp_hi), x)));
  return select(cmp_lt(vabs(x), Vec<T>(C::tiny)), x, res);  // +-0, subnormals: x itself
}

template <typename T>
inline Vec<T> vlog1p(Vec<T> x) {
  using C = VmConst<T>;
  using V = Vec<T>;
  const V one(T(1));
  const V u = one + x;
  const V c = select(cmp_le(one, x), one - (u - x), x - (u - one)) / u;
  // u = 2^e m, m in [sqrt(1/2), sqrt(2)): shift the mantissa threshold to the exponent boundary
  const auto ub = as_int(u);
  const auto eb = shr<C::mant>(ub + (as_int(one) - as_int(V(C::sqrt_half))));  // e + bias
  const V m = as_vec(ub - shl<C::mant>(eb - int_like(x, C::bias)));
  const V two_m(T(std::is_same<T, double>::value ? 0x1p52 : 0x1p23));
  const V e = as_vec(as_int(two_m) + eb) - (two_m + V(T(C::bias)));
  const V f = m - one;
  const V s = f / (V(T(2)) + f);
  const V z = s * s;
  const V R = z * horner(kVmSeries<T>.atanh, z);
  const V lo = fma(e, V(C::ln2_lo), c);
  V res = fma(e, V(C::ln2_hi), f - (s * (f - R) - lo));
  const V inf(std::numeric_limits<T>::infinity());
  res = select(cmp_eq(x, inf), inf, res);
  res = select(cmp_eq(x, V(T(-1))), V(-std::numeric_limits<T>::infinity()), res);
  res = select(cmp_lt(x, V(T(-1))), V(std::numeric_limits<T>::quiet_NaN()), res);
  return select(cmp_lt(vabs(x), V(C::tiny)) | is_nan(x), x, res);
}

template <typename T>
inline Vec<T> vtanh(Vec<T> x) {
  using V = Vec<T>;
  // (-2|x| <= 0 needs no upper clamp; its tiny values are x's, returned below: vexpm1's
  // bits with four operations less, a tenth of a tanh)
  const V t = expm1_clamped(vmax(V(VmConst<T>::expm1_lo), V(T(-2)) * vabs(x)));
  const V r = (V(T(0)) - t) / (V(T(2)) + t);
  const V res = select(cmp_lt(x, V(T(0))), V(T(0)) - r, r);
  return select(cmp_lt(vabs(x), V(VmConst<T>::tiny)), x, res);  // +-0, tiny: x
}

// erfc(a) for a >= 1 (clamped to C::erf_big; 0 is returned beyond it only by the callers).
template <typename T>
inline Vec<T> erfc_big(Vec<T> a) {
  using C = VmConst<T>;
  using V = Vec<T>;
  a = vmin(V(C::erf_big), vmax(V(T(1)), a));
  const V xx = a * a;
  const V err = fma(a, a, V(T(0)) - xx);  // a^2 = xx + err exactly
  const V e = vexp(V(T(0)) - xx) * (V(T(1)) - err);
  V R;
  if constexpr (std::is_same<T, double>::value) {
    const auto mid = cmp_lt(a, V(2.5));
    const V v = a - select(mid, V(1.75), V(4.25));
    constexpr int N = sizeof(vmcoef::kErfcMidF64) / sizeof(double);
    R = V(0.0);
    for (int i = N - 1; i >= 0; --i)
      R = fma(R, v, select(mid, V(vmcoef::kErfcMidF64[i]), V(vmcoef::kErfcTailF64[i])));
  } else {
    R = horner(vmcoef::kErfcTailF32, a - V(2.5f));
  }
  return e * R;
}

template <typename T>
inline Vec<T> erf_small(Vec<T> x) {
  if constexpr (std::is_same<T, double>::value) {
    return x * horner(vmcoef::kErfSmallF64, x * x);
  } else {
    return x * horner(vmcoef::kErfSmallF32, x * x);
  }
}

template <typename T>
inline Vec<T> verf(Vec<T> x) {
  using V = Vec<T>;
  const V a = vabs(x);
  const V big = V(T(1)) - erfc_big(a);
  return select(cmp_lt(a, V(T(1))), erf_small(x), select(cmp_lt(x, V(T(0))), V(T(0)) - big, big));
}

// Phi(z) = (1 + erf(z / sqrt 2)) / 2; 0 where erfc(|z| / sqrt 2) is beyond the tables.
template <typename T>
inline Vec<T> vncdf(Vec<T> z) {
  using V = Vec<T>;
  const V half(T(0.5));
  const V x = z * V(T(0.70710678118654752440));
  const V a = vabs(x);
  const V ec = select(cmp_lt(V(VmConst<T>::erf_big), a), V(T(0)), half * erfc_big(a));
  const V big = select(cmp_lt(x, V(T(0))), ec, V(T(1)) - ec);
  return select(cmp_lt(a, V(T(1))), fma(half, erf_small(x), half), big);
}

// 1 / (1 + exp(-z)): exact limits 0 and 1, relative error a few ulp everywhere.
template <typename T>
inline Vec<T> vsigmoid(Vec<T> z) {
  const Vec<T> one(T(1));
  return one / (one + vexp(Vec<T>(T(0)) - z));
}

// y[i] = f(x[i]) over n elements, W at a time (the tail through a zero-padded register).
template <typename T, typename F>
inline void map_n(T* y, const T* x, int64_t n, F f) {
  constexpr int W = Vec<T>::W;
  for (int64_t i = 0; i < n; i += W) {
    const int64_t m = n - i < W ? n - i : W;
    store_n(y + i, m, f(load_n(x + i, m)));
  }
}

// The array interface of vecmath.h for this instruction set.
template <typename T>
void vecmath_array(VecFn fn, T* y, const T* x, int64_t n) {
  using V = Vec<T>;
  switch (fn) {
    case VecFn::exp: return map_n(y, x, n, [](V v) { return vexp(v); });
    case VecFn::expm1: return map_n(y, x, n, [](V v) { return vexpm1(v); });
    case VecFn::log1p: return map_n(y, x, n, [](V v) { return vlog1p(v); });
    case VecFn::tanh: return map_n(y, x, n, [](V v) { return vtanh(v); });
    case VecFn::erf: return map_n(y, x, n, [](V v) { return verf(v); });
  }
}

}  // namespace FASTBP_VM_NS
}  // namespace fastbp
