// GEMM dispatch. The core issue ships the naive kernel; the packed per-ISA engine replaces
// the body of gemm() (this file is the one place that swap touches).
#include "kernels/gemm/gemm.h"

namespace fastbp {

template <typename T>
void gemm(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_naive<T>(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm<float>(Trans, Trans, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(Trans, Trans, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace fastbp
