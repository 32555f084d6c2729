// SIMD value types for the elementwise math, one set per instruction set: the including file's
// compile flags pick it (__AVX512F__: 512-bit registers, __AVX2__ + __FMA__: 256-bit, neither:
// one scalar per "vector", plain C++ the compiler may auto-vectorise). Every type lives in the
// namespace FASTBP_VM_NS that the including .cpp file defines, so the copies compiled with
// different flags never mix at link time.
//
// Vec<T> (T = float | double), W lanes:
//   Vec<T>(t) broadcast, load/store (unaligned), + - * /, fma(a, b, c) = a*b + c (one rounding),
//   comparisons -> Mask<T>, select(m, a, b) = m ? a : b, vmin/vmax (x86 rule: the SECOND
//   operand is returned when either is NaN, so vmin(c, x) keeps a NaN x), vabs, and the bit
//   access the math needs: Int<T> (int32 / int64 lanes) with + -, logical shifts, as_int/as_vec,
//   int_like(v, k): k in every Int lane of v's width.
//   hsum(v): the lanes summed in a fixed order (lane 0 first).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef FASTBP_VM_NS
#error "define FASTBP_VM_NS before including vecmath_simd.h"
#endif

namespace fastbp {
namespace FASTBP_VM_NS {

template <typename T>
struct Vec;

#if defined(__AVX512F__)
#define FASTBP_VM_DEFINE(T, S, RI, RM, W_, SUF, ISUF, MT)                                     \
  struct Int##S {                                                                              \
    __m512i v;                                                                                 \
  };                                                                                           \
  struct Mask##S {                                                                             \
    MT m;                                                                                      \
  };                                                                                           \
  template <>                                                                                  \
  struct Vec<T> {                                                                              \
    static constexpr int W = W_;                                                               \
    __m512##SUF v;                                                                             \
    Vec() = default;                                                                           \
    Vec(__m512##SUF x) : v(x) {}                                                               \
    Vec(T x) : v(_mm512_set1_##RM(x)) {}                                                       \
    static Vec load(const T* p) { return _mm512_loadu_##RM(p); }                               \
    void store(T* p) const { _mm512_storeu_##RM(p, v); }                                       \
    void stream(T* p) const { _mm512_stream_##RM(p, v); } /* (p: 64-byte aligned) */           \
  };                                                                                           \
  inline Vec<T> operator+(Vec<T> a, Vec<T> b) { return _mm512_add_##RM(a.v, b.v); }            \
  inline Vec<T> operator-(Vec<T> a, Vec<T> b) { return _mm512_sub_##RM(a.v, b.v); }            \
  inline Vec<T> operator*(Vec<T> a, Vec<T> b) { return _mm512_mul_##RM(a.v, b.v); }            \
  inline Vec<T> operator/(Vec<T> a, Vec<T> b) { return _mm512_div_##RM(a.v, b.v); }            \
  inline Vec<T> fma(Vec<T> a, Vec<T> b, Vec<T> c) { return _mm512_fmadd_##RM(a.v, b.v, c.v); } \
  inline Vec<T> vmin(Vec<T> a, Vec<T> b) { return _mm512_min_##RM(a.v, b.v); }                \
  inline Vec<T> vmax(Vec<T> a, Vec<T> b) { return _mm512_max_##RM(a.v, b.v); }                \
  inline Vec<T> vabs(Vec<T> a) { return _mm512_abs_##RM(a.v); }                                \
  inline Mask##S cmp_lt(Vec<T> a, Vec<T> b) { return {_mm512_cmp_##RM##_mask(a.v, b.v, _CMP_LT_OQ)}; } \
  inline Mask##S cmp_le(Vec<T> a, Vec<T> b) { return {_mm512_cmp_##RM##_mask(a.v, b.v, _CMP_LE_OQ)}; } \
  inline Mask##S cmp_eq(Vec<T> a, Vec<T> b) { return {_mm512_cmp_##RM##_mask(a.v, b.v, _CMP_EQ_OQ)}; } \
  inline Mask##S is_nan(Vec<T> a) { return {_mm512_cmp_##RM##_mask(a.v, a.v, _CMP_UNORD_Q)}; } \
  inline Mask##S operator|(Mask##S a, Mask##S b) { return {MT(a.m | b.m)}; }                   \
  inline Vec<T> select(Mask##S m, Vec<T> a, Vec<T> b) {                                        \
    return _mm512_mask_blend_##RM(m.m, b.v, a.v);                                              \
  }                                                                                            \
  inline Int##S as_int(Vec<T> a) { return {_mm512_cast##RM##_si512(a.v)}; }                   \
  inline Vec<T> as_vec(Int##S a) { return _mm512_castsi512_##RM(a.v); }                       \
  inline Int##S operator+(Int##S a, Int##S b) { return {_mm512_add_##ISUF(a.v, b.v)}; }        \
  inline Int##S operator-(Int##S a, Int##S b) { return {_mm512_sub_##ISUF(a.v, b.v)}; }        \
  inline Int##S int_like(Vec<T>, int64_t x) { return {_mm512_set1_##ISUF(RI(x))}; }                            \
  template <int N>                                                                             \
  inline Int##S shl(Int##S a) { return {_mm512_slli_##ISUF(a.v, N)}; }                         \
  template <int N>                                                                             \
  inline Int##S shr(Int##S a) { return {_mm512_srli_##ISUF(a.v, N)}; }                         \
  inline T hsum(Vec<T> a) {                                                                    \
    alignas(64) T t[W_];                                                                       \
    a.store(t);                                                                                \
    T s = t[0];                                                                                \
    for (int i = 1; i < W_; ++i) s += t[i];                                                    \
    return s;                                                                                  \
  }
FASTBP_VM_DEFINE(float, F, int32_t, ps, 16, , epi32, __mmask16)
FASTBP_VM_DEFINE(double, D, int64_t, pd, 8, d, epi64, __mmask8)
#undef FASTBP_VM_DEFINE

#elif defined(__AVX2__) && defined(__FMA__)
#define FASTBP_VM_DEFINE(T, S, RI, RM, W_, SUF, ISUF, SET1I)                                  \
  struct Int##S {                                                                              \
    __m256i v;                                                                                 \
  };                                                                                           \
  struct Mask##S {                                                                             \
    __m256##SUF m;                                                                             \
  };                                                                                           \
  template <>                                                                                  \
  struct Vec<T> {                                                                              \
    static constexpr int W = W_;                                                               \
    __m256##SUF v;                                                                             \
    Vec() = default;                                                                           \
    Vec(__m256##SUF x) : v(x) {}                                                               \
    Vec(T x) : v(_mm256_set1_##RM(x)) {}                                                       \
    static Vec load(const T* p) { return _mm256_loadu_##RM(p); }                              \
    void store(T* p) const { _mm256_storeu_##RM(p, v); }                                       \
    void stream(T* p) const { _mm256_stream_##RM(p, v); } /* (p: 32-byte aligned) */           \
  };                                                                                           \
  inline Vec<T> operator+(Vec<T> a, Vec<T> b) { return _mm256_add_##RM(a.v, b.v); }            \
  inline Vec<T> operator-(Vec<T> a, Vec<T> b) { return _mm256_sub_##RM(a.v, b.v); }            \
  inline Vec<T> operator*(Vec<T> a, Vec<T> b) { return _mm256_mul_##RM(a.v, b.v); }            \
  inline Vec<T> operator/(Vec<T> a, Vec<T> b) { return _mm256_div_##RM(a.v, b.v); }            \
  inline Vec<T> fma(Vec<T> a, Vec<T> b, Vec<T> c) { return _mm256_fmadd_##RM(a.v, b.v, c.v); } \
  inline Vec<T> vmin(Vec<T> a, Vec<T> b) { return _mm256_min_##RM(a.v, b.v); }                \
  inline Vec<T> vmax(Vec<T> a, Vec<T> b) { return _mm256_max_##RM(a.v, b.v); }                \
  inline Vec<T> vabs(Vec<T> a) { return _mm256_andnot_##RM(_mm256_set1_##RM(T(-0.0)), a.v); }  \
  inline Mask##S cmp_lt(Vec<T> a, Vec<T> b) { return {_mm256_cmp_##RM(a.v, b.v, _CMP_LT_OQ)}; } \
  inline Mask##S cmp_le(Vec<T> a, Vec<T> b) { return {_mm256_cmp_##RM(a.v, b.v, _CMP_LE_OQ)}; } \
  inline Mask##S cmp_eq(Vec<T> a, Vec<T> b) { return {_mm256_cmp_##RM(a.v, b.v, _CMP_EQ_OQ)}; } \
  inline Mask##S is_nan(Vec<T> a) { return {_mm256_cmp_##RM(a.v, a.v, _CMP_UNORD_Q)}; }       \
  inline Mask##S operator|(Mask##S a, Mask##S b) { return {_mm256_or_##RM(a.m, b.m)}; }        \
  inline Vec<T> select(Mask##S m, Vec<T> a, Vec<T> b) {                                        \
    return _mm256_blendv_##RM(b.v, a.v, m.m);                                                  \
  }                                                                                            \
  inline Int##S as_int(Vec<T> a) { return {_mm256_cast##RM##_si256(a.v)}; }                   \
  inline Vec<T> as_vec(Int##S a) { return _mm256_castsi256_##RM(a.v); }                       \
  inline Int##S operator+(Int##S a, Int##S b) { return {_mm256_add_##ISUF(a.v, b.v)}; }        \
  inline Int##S operator-(Int##S a, Int##S b) { return {_mm256_sub_##ISUF(a.v, b.v)}; }        \
  inline Int##S int_like(Vec<T>, int64_t x) { return {SET1I(RI(x))}; }                                         \
  template <int N>                                                                             \
  inline Int##S shl(Int##S a) { return {_mm256_slli_##ISUF(a.v, N)}; }                         \
  template <int N>                                                                             \
  inline Int##S shr(Int##S a) { return {_mm256_srli_##ISUF(a.v, N)}; }                         \
  inline T hsum(Vec<T> a) {                                                                    \
    alignas(32) T t[W_];                                                                       \
    a.store(t);                                                                                \
    T s = t[0];                                                                                \
    for (int i = 1; i < W_; ++i) s += t[i];                                                    \
    return s;                                                                                  \
  }
FASTBP_VM_DEFINE(float, F, int32_t, ps, 8, , epi32, _mm256_set1_epi32)
FASTBP_VM_DEFINE(double, D, int64_t, pd, 4, d, epi64, _mm256_set1_epi64x)
#undef FASTBP_VM_DEFINE

#else
// One lane: plain C++ on scalars (the baseline build).
#define FASTBP_VM_DEFINE(T, S, RI, BS)                                                           \
  struct Int##S {                                                                              \
    RI v;                                                                                      \
  };                                                                                           \
  struct Mask##S {                                                                             \
    bool m;                                                                                    \
  };                                                                                           \
  template <>                                                                                  \
  struct Vec<T> {                                                                              \
    static constexpr int W = 1;                                                                \
    T v;                                                                                       \
    Vec() = default;                                                                           \
    Vec(T x) : v(x) {}                                                                         \
    static Vec load(const T* p) { return *p; }                                                 \
    void store(T* p) const { *p = v; }                                                         \
    void stream(T* p) const { *p = v; }                                                        \
  };                                                                                           \
  inline Vec<T> operator+(Vec<T> a, Vec<T> b) { return a.v + b.v; }                            \
  inline Vec<T> operator-(Vec<T> a, Vec<T> b) { return a.v - b.v; }                            \
  inline Vec<T> operator*(Vec<T> a, Vec<T> b) { return a.v * b.v; }                            \
  inline Vec<T> operator/(Vec<T> a, Vec<T> b) { return a.v / b.v; }                            \
  inline Vec<T> fma(Vec<T> a, Vec<T> b, Vec<T> c) { return __builtin_fma##BS(a.v, b.v, c.v); }  \
  inline Vec<T> vmin(Vec<T> a, Vec<T> b) { return a.v < b.v ? a.v : b.v; }                     \
  inline Vec<T> vmax(Vec<T> a, Vec<T> b) { return a.v > b.v ? a.v : b.v; }                     \
  inline Vec<T> vabs(Vec<T> a) { return __builtin_fabs##BS(a.v); }                              \
  inline Mask##S cmp_lt(Vec<T> a, Vec<T> b) { return {a.v < b.v}; }                            \
  inline Mask##S cmp_le(Vec<T> a, Vec<T> b) { return {a.v <= b.v}; }                           \
  inline Mask##S cmp_eq(Vec<T> a, Vec<T> b) { return {a.v == b.v}; }                           \
  inline Mask##S is_nan(Vec<T> a) { return {a.v != a.v}; }                                     \
  inline Mask##S operator|(Mask##S a, Mask##S b) { return {a.m || b.m}; }                      \
  inline Vec<T> select(Mask##S m, Vec<T> a, Vec<T> b) { return m.m ? a.v : b.v; }              \
  inline Int##S as_int(Vec<T> a) {                                                             \
    Int##S r;                                                                                  \
    std::memcpy(&r.v, &a.v, sizeof(T));                                                        \
    return r;                                                                                  \
  }                                                                                            \
  inline Vec<T> as_vec(Int##S a) {                                                             \
    T r;                                                                                       \
    std::memcpy(&r, &a.v, sizeof(T));                                                          \
    return r;                                                                                  \
  }                                                                                            \
  inline Int##S operator+(Int##S a, Int##S b) { return {RI(a.v + b.v)}; }                      \
  inline Int##S operator-(Int##S a, Int##S b) { return {RI(a.v - b.v)}; }                      \
  inline Int##S int_like(Vec<T>, int64_t x) { return {RI(x)}; }                                                \
  template <int N>                                                                             \
  inline Int##S shl(Int##S a) { return {RI(a.v << N)}; }                                       \
  template <int N>                                                                             \
  inline Int##S shr(Int##S a) { return {RI(a.v >> N)}; }                                       \
  inline T hsum(Vec<T> a) { return a.v; }
// Unsigned lanes: shifts are logical and wrap-around adds are defined, as in the vector ISAs.
FASTBP_VM_DEFINE(float, F, uint32_t, f)
FASTBP_VM_DEFINE(double, D, uint64_t, )
#undef FASTBP_VM_DEFINE
#endif

// Loads / stores of the first m (1 <= m <= W) lanes; the other lanes read as 0 and are not
// written. Masked moves on the vector ISAs (no lane past m is touched, so no fault and no
// store-forwarding stall through a bounce buffer: on tiny layers the tails are most of the work).
// tile_n(p, d), d a power of two <= W: lane k holds p[k % d] (one masked load and one permute;
// W scalar stores read back as one vector would stall store forwarding).
#if defined(__AVX512F__)
inline Vec<float> load_n(const float* p, int64_t m) {
  if (m == Vec<float>::W) return Vec<float>::load(p);
  return _mm512_maskz_loadu_ps(__mmask16((1u << m) - 1u), p);
}
inline Vec<double> load_n(const double* p, int64_t m) {
  if (m == Vec<double>::W) return Vec<double>::load(p);
  return _mm512_maskz_loadu_pd(__mmask8((1u << m) - 1u), p);
}
inline void store_n(float* p, int64_t m, Vec<float> v) {
  _mm512_mask_storeu_ps(p, __mmask16((1u << m) - 1u), v.v);
}
inline void store_n(double* p, int64_t m, Vec<double> v) {
  _mm512_mask_storeu_pd(p, __mmask8((1u << m) - 1u), v.v);
}
inline Vec<float> tile_n(const float* p, int64_t d) {
  const __m512i k = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_permutexvar_ps(_mm512_and_si512(k, _mm512_set1_epi32(int(d - 1))), load_n(p, d).v);
}
inline Vec<double> tile_n(const double* p, int64_t d) {
  const __m512i k = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm512_permutexvar_pd(_mm512_and_si512(k, _mm512_set1_epi64(d - 1)), load_n(p, d).v);
}
#elif defined(__AVX2__) && defined(__FMA__)
inline __m256i lanes_below(int64_t m) {  // all-ones in the 32-bit lanes i < m
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(m)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256i lanes_below64(int64_t m) {  // all-ones in the 64-bit lanes i < m
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), _mm256_setr_epi64x(0, 1, 2, 3));
}
inline Vec<float> load_n(const float* p, int64_t m) {
  if (m == Vec<float>::W) return Vec<float>::load(p);
  return _mm256_maskload_ps(p, lanes_below(m));
}
inline Vec<double> load_n(const double* p, int64_t m) {
  if (m == Vec<double>::W) return Vec<double>::load(p);
  return _mm256_maskload_pd(p, lanes_below64(m));
}
inline void store_n(float* p, int64_t m, Vec<float> v) {
  if (m == Vec<float>::W) return v.store(p);
  _mm256_maskstore_ps(p, lanes_below(m), v.v);
}
inline void store_n(double* p, int64_t m, Vec<double> v) {
  if (m == Vec<double>::W) return v.store(p);
  _mm256_maskstore_pd(p, lanes_below64(m), v.v);
}
inline Vec<float> tile_n(const float* p, int64_t d) {
  const __m256i k = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_permutevar8x32_ps(load_n(p, d).v,
                                  _mm256_and_si256(k, _mm256_set1_epi32(int(d - 1))));
}
inline Vec<double> tile_n(const double* p, int64_t d) {  // 32-bit lanes 2l, 2l+1 of lane l % d
  const __m256i k = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lo = _mm256_and_si256(k, _mm256_set1_epi32(1));
  const __m256i l = _mm256_and_si256(_mm256_srli_epi32(k, 1), _mm256_set1_epi32(int(d - 1)));
  const __m256i idx = _mm256_or_si256(_mm256_slli_epi32(l, 1), lo);
  return _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(load_n(p, d).v), idx));
}
#else
template <typename T>
inline Vec<T> load_n(const T* p, int64_t) {
  return Vec<T>::load(p);  // one lane: m is 1
}
template <typename T>
inline void store_n(T* p, int64_t, Vec<T> v) {
  v.store(p);
}
template <typename T>
inline Vec<T> tile_n(const T* p, int64_t) {
  return Vec<T>::load(p);
}
#endif

// vsqrt(v): the correctly rounded square root of every lane; zero_signed(v): a zero with the
// sign of each lane of v (bit operations only: no arithmetic on a subnormal lane).
#if defined(__AVX512F__)
inline Vec<float> vsqrt(Vec<float> a) { return _mm512_sqrt_ps(a.v); }
inline Vec<double> vsqrt(Vec<double> a) { return _mm512_sqrt_pd(a.v); }
inline Vec<float> zero_signed(Vec<float> a) { return _mm512_and_ps(a.v, _mm512_set1_ps(-0.0f)); }
inline Vec<double> zero_signed(Vec<double> a) {
  return _mm512_and_pd(a.v, _mm512_set1_pd(-0.0));
}
#elif defined(__AVX2__) && defined(__FMA__)
inline Vec<float> vsqrt(Vec<float> a) { return _mm256_sqrt_ps(a.v); }
inline Vec<double> vsqrt(Vec<double> a) { return _mm256_sqrt_pd(a.v); }
inline Vec<float> zero_signed(Vec<float> a) { return _mm256_and_ps(a.v, _mm256_set1_ps(-0.0f)); }
inline Vec<double> zero_signed(Vec<double> a) {
  return _mm256_and_pd(a.v, _mm256_set1_pd(-0.0));
}
#else
inline Vec<float> vsqrt(Vec<float> a) { return __builtin_sqrtf(a.v); }
inline Vec<double> vsqrt(Vec<double> a) { return __builtin_sqrt(a.v); }
inline Vec<float> zero_signed(Vec<float> a) { return __builtin_copysignf(0.0f, a.v); }
inline Vec<double> zero_signed(Vec<double> a) { return __builtin_copysign(0.0, a.v); }
#endif

}  // namespace FASTBP_VM_NS
}  // namespace fastbp
