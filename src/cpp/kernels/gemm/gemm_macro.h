// The column loop around a micro-kernel (MacroFn, gemm_kernels.h), instantiated in each kernel
// file with that file's micro-kernel so the micro-kernel is inlined (no call per tile).
// Internal linkage (see gemm_pack.h).
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm_kernels.h"

namespace fastbp {
namespace gemm_detail {
namespace {

template <typename T, int MR, UKernelFn<T> UK>
void macro_kernel(int64_t kc, int64_t mc, int64_t n, const T* a, int64_t lda, bool a_packed,
                  const T* b, T* c, int64_t rs_c, int64_t cs_c, T alpha, T beta) {
  if (a_packed) {
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t m = (mc - ir < MR) ? (mc - ir) : MR;
      UK(kc, a + ir * kc, 1, MR, b, c + ir * rs_c, rs_c, cs_c, alpha, beta, m, n);
    }
  } else {
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t m = (mc - ir < MR) ? (mc - ir) : MR;
      UK(kc, a + ir * lda, lda, 1, b, c + ir * rs_c, rs_c, cs_c, alpha, beta, m, n);
    }
  }
}

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
