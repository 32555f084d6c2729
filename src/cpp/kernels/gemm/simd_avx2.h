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
  static inline T hsum(V v) {  // fixed tree: halves, then the pair
    __m128d x = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    x = _mm_add_sd(x, _mm_unpackhi_pd(x, x));
    return _mm_cvtsd_f64(x);
  }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
