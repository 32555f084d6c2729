// AVX-512 packing of a transposed op(B) (B stored N x K, op(B)(p, j) = b[j*ldb + p]): 16x16
// (float) / 8x8 (double) in-register transposes instead of a scalar scatter. Only for files
// compiled with AVX-512 flags; internal linkage (see gemm_pack.h).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/gemm/gemm_pack.h"
#include "kernels/gemm/simd_avx512.h"  // (the in-register transposes)

namespace fastbp {
namespace gemm_detail {
namespace {

template <int NR>
void pack_b_avx512_f32(Trans trans, int64_t kc, int64_t nc, const float* b, int64_t ldb,
                       float* out) {
  static_assert(NR % 16 == 0, "NR must be a multiple of 16");
  if (trans == Trans::N) {
    pack_b_tmpl<float, NR>(trans, kc, nc, b, ldb, out);
    return;
  }
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t n = (nc - j0 < NR) ? (nc - j0) : NR;
    for (int64_t p = 0; p < kc; p += 16) {
      const int64_t q = (kc - p < 16) ? (kc - p) : 16;
      const __mmask16 km = (q >= 16) ? __mmask16(0xFFFF) : __mmask16((1u << q) - 1u);
      for (int jg = 0; jg < NR; jg += 16) {
        __m512 r[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t row = j0 + jg + j;
          r[j] = (jg + j < n) ? _mm512_maskz_loadu_ps(km, b + row * ldb + p) : _mm512_setzero_ps();
        }
        transpose16x16_ps(r);
        for (int64_t s = 0; s < q; ++s) _mm512_store_ps(out + (p + s) * NR + jg, r[s]);
      }
    }
    out += kc * NR;
  }
}

template <int NR>
void pack_b_avx512_f64(Trans trans, int64_t kc, int64_t nc, const double* b, int64_t ldb,
                       double* out) {
  static_assert(NR % 8 == 0, "NR must be a multiple of 8");
  if (trans == Trans::N) {
    pack_b_tmpl<double, NR>(trans, kc, nc, b, ldb, out);
    return;
  }
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t n = (nc - j0 < NR) ? (nc - j0) : NR;
    for (int64_t p = 0; p < kc; p += 8) {
      const int64_t q = (kc - p < 8) ? (kc - p) : 8;
      const __mmask8 km = (q >= 8) ? __mmask8(0xFF) : __mmask8((1u << q) - 1u);
      for (int jg = 0; jg < NR; jg += 8) {
        __m512d r[8];
        for (int j = 0; j < 8; ++j) {
          const int64_t row = j0 + jg + j;
          r[j] = (jg + j < n) ? _mm512_maskz_loadu_pd(km, b + row * ldb + p) : _mm512_setzero_pd();
        }
        transpose8x8_pd(r);
        for (int64_t s = 0; s < q; ++s) _mm512_store_pd(out + (p + s) * NR + jg, r[s]);
      }
    }
    out += kc * NR;
  }
}

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
