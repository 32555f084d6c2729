// Packing routines (templates), included by every kernel file so each ISA gets its own
// auto-vectorised copy. Everything here has internal linkage (anonymous namespace): the same
// template compiled with different -m flags must never be merged by the linker.
// Layouts: see gemm_kernels.h. No std:: calls on purpose (inline library functions compiled
// with AVX flags could be picked by the linker for baseline code).
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace fastbp {
namespace gemm_detail {
namespace {

// out[p*MR + i] = op(A)(i, p); `a` points at op(A)(0, 0).
template <typename T, int MR>
void pack_a_tmpl(Trans trans, int64_t mc, int64_t kc, const T* a, int64_t lda, T* out) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t m = (mc - i0 < MR) ? (mc - i0) : MR;
    if (trans == Trans::N) {
      // op(A)(i, p) = a[i*lda + p]: MR row streams, interleaved.
      if (m == MR) {
        const T* rows[MR];
        for (int i = 0; i < MR; ++i) rows[i] = a + (i0 + i) * lda;
        int64_t p = 0;
        for (; p + 4 <= kc; p += 4) {
          for (int q = 0; q < 4; ++q)
            for (int i = 0; i < MR; ++i) out[(p + q) * MR + i] = rows[i][p + q];
        }
        for (; p < kc; ++p)
          for (int i = 0; i < MR; ++i) out[p * MR + i] = rows[i][p];
      } else {
        for (int64_t p = 0; p < kc; ++p)
          for (int i = 0; i < MR; ++i) out[p * MR + i] = (i < m) ? a[(i0 + i) * lda + p] : T(0);
      }
    } else {
      // op(A)(i, p) = a[p*lda + i]: contiguous runs of MR.
      const T* src = a + i0;
      if (m == MR) {
        for (int64_t p = 0; p < kc; ++p)
          for (int i = 0; i < MR; ++i) out[p * MR + i] = src[p * lda + i];
      } else {
        for (int64_t p = 0; p < kc; ++p)
          for (int i = 0; i < MR; ++i) out[p * MR + i] = (i < m) ? src[p * lda + i] : T(0);
      }
    }
    out += kc * MR;
  }
}

// out[p*NR + j] = op(B)(p, j); `b` points at op(B)(0, 0).
template <typename T, int NR>
void pack_b_tmpl(Trans trans, int64_t kc, int64_t nc, const T* b, int64_t ldb, T* out) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t n = (nc - j0 < NR) ? (nc - j0) : NR;
    if (trans == Trans::N) {
      // op(B)(p, j) = b[p*ldb + j]: contiguous copies of NR.
      const T* src = b + j0;
      if (n == NR) {
        for (int64_t p = 0; p < kc; ++p)
          for (int j = 0; j < NR; ++j) out[p * NR + j] = src[p * ldb + j];
      } else {
        for (int64_t p = 0; p < kc; ++p) {
          for (int64_t j = 0; j < n; ++j) out[p * NR + j] = src[p * ldb + j];
          for (int64_t j = n; j < NR; ++j) out[p * NR + j] = T(0);
        }
      }
    } else {
      // op(B)(p, j) = b[j*ldb + p]: a transpose, done in 8 x NR blocks so that reads are
      // runs of 8 and writes stay inside a few cache lines.
      const T* src = b + j0 * ldb;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        for (int64_t j = 0; j < n; ++j) {
          const T* s = src + j * ldb + p;
          for (int q = 0; q < 8; ++q) out[(p + q) * NR + j] = s[q];
        }
        for (int64_t j = n; j < NR; ++j)
          for (int q = 0; q < 8; ++q) out[(p + q) * NR + j] = T(0);
      }
      for (; p < kc; ++p) {
        for (int64_t j = 0; j < n; ++j) out[p * NR + j] = src[j * ldb + p];
        for (int64_t j = n; j < NR; ++j) out[p * NR + j] = T(0);
      }
    }
    out += kc * NR;
  }
}

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
