// AVX-512 vector traits for gemm_simd_impl.h. Only for files compiled with -mavx512f etc.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace fastbp {
namespace gemm_detail {
namespace {

// r[0..15]: 16 rows of 16 floats -> r[q] = column q (in place).
inline void transpose16x16_ps(__m512* r) {
  __m512 t[16], u[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {
    u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c + 0] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[c + 4] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    r[c + 8] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}

// r[0..7]: 8 rows of 8 doubles -> r[q] = column q (in place).
inline void transpose8x8_pd(__m512d* r) {
  __m512d t[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm512_unpacklo_pd(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_pd(r[2 * k], r[2 * k + 1]);
  }
  for (int odd = 0; odd < 2; ++odd) {
    const __m512d v0 = _mm512_shuffle_f64x2(t[0 + odd], t[2 + odd], 0x44);
    const __m512d v1 = _mm512_shuffle_f64x2(t[0 + odd], t[2 + odd], 0xEE);
    const __m512d w0 = _mm512_shuffle_f64x2(t[4 + odd], t[6 + odd], 0x44);
    const __m512d w1 = _mm512_shuffle_f64x2(t[4 + odd], t[6 + odd], 0xEE);
    r[0 + odd] = _mm512_shuffle_f64x2(v0, w0, 0x88);
    r[2 + odd] = _mm512_shuffle_f64x2(v0, w0, 0xDD);
    r[4 + odd] = _mm512_shuffle_f64x2(v1, w1, 0x88);
    r[6 + odd] = _mm512_shuffle_f64x2(v1, w1, 0xDD);
  }
}

struct Avx512F32 {
  using T = float;
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int L = 16;
  static inline V zero() { return _mm512_setzero_ps(); }
  static inline V set1(T x) { return _mm512_set1_ps(x); }
  static inline V load(const T* p) { return _mm512_load_ps(p); }
  static inline V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static inline void storeu(T* p, V v) { _mm512_storeu_ps(p, v); }
  static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
  static inline Mask mask(int64_t n) {
    return n <= 0 ? Mask(0) : n >= L ? Mask(0xFFFF) : Mask((1u << n) - 1u);
  }
  static inline V maskz_loadu(Mask m, const T* p) { return _mm512_maskz_loadu_ps(m, p); }
  static inline void mask_storeu(T* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static inline T fma_scalar(T a, T b, T c) { return __builtin_fmaf(a, b, c); }
  // The L x L block of vectors r (rows) transposed in registers (r[q] = column q).
  static inline void transpose(V* r) { transpose16x16_ps(r); }
  // hsum of L vectors at once: lane k of the result is hsum(v[k]), by the same additions in
  // the same order (halves, quarters, pairs, then the last pair), two vectors per addition.
  static constexpr bool kHsumLanes = true;
  static inline V hsum_lanes(const V* v) {
    V h[8], x[4], y[2];
    for (int k = 0; k < 8; ++k)  // [h(v[2k]) | h(v[2k+1])], h = low 8 lanes + high 8 lanes
      h[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                           _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
    for (int k = 0; k < 4; ++k)  // 128-bit lane g: x(v[4k + g]) = h's low 4 + high 4
      x[k] = _mm512_add_ps(_mm512_shuffle_f32x4(h[2 * k], h[2 * k + 1], 0x88),
                           _mm512_shuffle_f32x4(h[2 * k], h[2 * k + 1], 0xDD));
    for (int k = 0; k < 2; ++k) {  // lane g: y(v[8k + g]), y(v[8k + 4 + g]); y = x01 + x23
      const __m512d a = _mm512_castps_pd(x[2 * k]), b = _mm512_castps_pd(x[2 * k + 1]);
      y[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                           _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    // lane 4g + m: y0 + y1 of v[4m + g]; then into lane 4m + g
    const V s = _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, s);
  }
  // The lanes summed as a fixed tree: halves, quarters, then pairs (same order every call).
  static inline T hsum(V v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }
};

struct Avx512F64 {
  using T = double;
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int L = 8;
  static inline V zero() { return _mm512_setzero_pd(); }
  static inline V set1(T x) { return _mm512_set1_pd(x); }
  static inline V load(const T* p) { return _mm512_load_pd(p); }
  static inline V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static inline void storeu(T* p, V v) { _mm512_storeu_pd(p, v); }
  static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static inline V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static inline V add(V a, V b) { return _mm512_add_pd(a, b); }
  static inline Mask mask(int64_t n) {
    return n <= 0 ? Mask(0) : n >= L ? Mask(0xFF) : Mask((1u << n) - 1u);
  }
  static inline V maskz_loadu(Mask m, const T* p) { return _mm512_maskz_loadu_pd(m, p); }
  static inline void mask_storeu(T* p, Mask m, V v) { _mm512_mask_storeu_pd(p, m, v); }
  static inline T fma_scalar(T a, T b, T c) { return __builtin_fma(a, b, c); }
  // The L x L block of vectors r (rows) transposed in registers (r[q] = column q).
  static inline void transpose(V* r) { transpose8x8_pd(r); }
  // hsum_lanes as in Avx512F32 (halves, quarters, then the pair)
  static constexpr bool kHsumLanes = true;
  static inline V hsum_lanes(const V* v) {
    V h[4], x[2];
    for (int k = 0; k < 4; ++k)  // [h(v[2k]) | h(v[2k+1])]
      h[k] = _mm512_add_pd(_mm512_shuffle_f64x2(v[2 * k], v[2 * k + 1], 0x44),
                           _mm512_shuffle_f64x2(v[2 * k], v[2 * k + 1], 0xEE));
    for (int k = 0; k < 2; ++k)  // 128-bit lane g: x(v[4k + g])
      x[k] = _mm512_add_pd(_mm512_shuffle_f64x2(h[2 * k], h[2 * k + 1], 0x88),
                           _mm512_shuffle_f64x2(h[2 * k], h[2 * k + 1], 0xDD));
    // lane 2g + m: x0 + x1 of v[4m + g]; then into lane 4m + g
    const V s = _mm512_add_pd(_mm512_unpacklo_pd(x[0], x[1]), _mm512_unpackhi_pd(x[0], x[1]));
    return _mm512_permutexvar_pd(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), s);
  }
  static inline T hsum(V v) {  // fixed tree: halves, quarters, then the pair
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d x = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    x = _mm_add_sd(x, _mm_unpackhi_pd(x, x));
    return _mm_cvtsd_f64(x);
  }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
