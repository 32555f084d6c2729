// AVX2 + FMA vector traits for gemm_simd_impl.h. Only for files compiled with -mavx2 -mfma.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace fastbp {
namespace gemm_detail {
namespace {

// r[0..7]: 8 rows of 8 floats -> r[q] = column q (in place).
inline void transpose8x8_ps(__m256* r) {
  __m256 t[8], u[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 2; ++k) {  // u[4k + c]: column c | column c + 4 of rows 4k..4k+3
    u[4 * k + 0] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// r[0..3]: 4 rows of 4 doubles -> r[q] = column q (in place).
inline void transpose4x4_pd(__m256d* r) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

struct Avx2F32 {
  using T = float;
  using V = __m256;
  using Mask = __m256i;
  static constexpr int L = 8;
  static inline V zero() { return _mm256_setzero_ps(); }
  static inline V set1(T x) { return _mm256_set1_ps(x); }
  static inline V load(const T* p) { return _mm256_load_ps(p); }
  static inline V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static inline void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
  static inline Mask mask(int64_t n) {
    const int nn = n <= 0 ? 0 : n >= L ? L : int(n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nn), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline V maskz_loadu(Mask m, const T* p) { return _mm256_maskload_ps(p, m); }
  static inline void mask_storeu(T* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
  static inline T fma_scalar(T a, T b, T c) { return __builtin_fmaf(a, b, c); }
  // The L x L block of vectors r (rows) transposed in registers (r[q] = column q).
  static inline void transpose(V* r) { transpose8x8_ps(r); }
  // hsum of L vectors at once: lane k of the result is hsum(v[k]), by the same additions in
  // the same order (halves, pairs, then the last pair), two vectors per addition.
  static constexpr bool kHsumLanes = true;
  static inline V hsum_lanes(const V* v) {
    V h[4], y[2];
    for (int k = 0; k < 4; ++k)  // [x(v[2k]) | x(v[2k+1])], x = low 4 lanes + high 4 lanes
      h[k] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x20),
                           _mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x31));
    for (int k = 0; k < 2; ++k) {  // 128-bit lane g: y(v[4k + g]), y(v[4k + 2 + g])
      const __m256d a = _mm256_castps_pd(h[2 * k]), b = _mm256_castps_pd(h[2 * k + 1]);
      y[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                           _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    // lane 4g + m: y0 + y1 of v[2m + g]; then into lane 2m + g
    const V s = _mm256_add_ps(_mm256_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm256_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }
  // The lanes summed as a fixed tree: halves, then pairs (the same order on every call).
  static inline T hsum(V v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }
};

struct Avx2F64 {
  using T = double;
  using V = __m256d;
  using Mask = __m256i;
  static constexpr int L = 4;
  static inline V zero() { return _mm256_setzero_pd(); }
  static inline V set1(T x) { return _mm256_set1_pd(x); }
  static inline V load(const T* p) { return _mm256_load_pd(p); }
  static inline V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static inline void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static inline V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static inline V add(V a, V b) { return _mm256_add_pd(a, b); }
  static inline Mask mask(int64_t n) {
    const long long nn = n <= 0 ? 0 : n >= L ? L : n;
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(nn), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static inline V maskz_loadu(Mask m, const T* p) { return _mm256_maskload_pd(p, m); }
  static inline void mask_storeu(T* p, Mask m, V v) { _mm256_maskstore_pd(p, m, v); }
  static inline T fma_scalar(T a, T b, T c) { return __builtin_fma(a, b, c); }
  // The L x L block of vectors r (rows) transposed in registers (r[q] = column q).
  static inline void transpose(V* r) { transpose4x4_pd(r); }
  // hsum_lanes as in Avx2F32 (halves, then the pair)
  static constexpr bool kHsumLanes = true;
  static inline V hsum_lanes(const V* v) {
    const V h0 = _mm256_add_pd(_mm256_permute2f128_pd(v[0], v[1], 0x20),
                               _mm256_permute2f128_pd(v[0], v[1], 0x31));
    const V h1 = _mm256_add_pd(_mm256_permute2f128_pd(v[2], v[3], 0x20),
                               _mm256_permute2f128_pd(v[2], v[3], 0x31));
    // lane 2g + m: x0 + x1 of v[2m + g]; then into lane 2m + g
    const V s = _mm256_add_pd(_mm256_unpacklo_pd(h0, h1), _mm256_unpackhi_pd(h0, h1));
    return _mm256_permute4x64_pd(s, _MM_SHUFFLE(3, 1, 2, 0));
  }
  static inline T hsum(V v) {  // fixed tree: halves, then the pair
    __m128d x = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    x = _mm_add_sd(x, _mm_unpackhi_pd(x, x));
    return _mm_cvtsd_f64(x);
  }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
