// AVX-512 vector traits for gemm_simd_impl.h. Only for files compiled with -mavx512f etc.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace fastbp {
namespace gemm_detail {
namespace {

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
  static inline Mask mask(int64_t n) {
    return n <= 0 ? Mask(0) : n >= L ? Mask(0xFFFF) : Mask((1u << n) - 1u);
  }
  static inline V maskz_loadu(Mask m, const T* p) { return _mm512_maskz_loadu_ps(m, p); }
  static inline void mask_storeu(T* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static inline T fma_scalar(T a, T b, T c) { return __builtin_fmaf(a, b, c); }
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
  static inline Mask mask(int64_t n) {
    return n <= 0 ? Mask(0) : n >= L ? Mask(0xFF) : Mask((1u << n) - 1u);
  }
  static inline V maskz_loadu(Mask m, const T* p) { return _mm512_maskz_loadu_pd(m, p); }
  static inline void mask_storeu(T* p, Mask m, V v) { _mm512_mask_storeu_pd(p, m, v); }
  static inline T fma_scalar(T a, T b, T c) { return __builtin_fma(a, b, c); }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
