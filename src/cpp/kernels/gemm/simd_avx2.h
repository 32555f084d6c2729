// AVX2 + FMA vector traits for gemm_simd_impl.h. Only for files compiled with -mavx2 -mfma.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace fastbp {
namespace gemm_detail {
namespace {

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
