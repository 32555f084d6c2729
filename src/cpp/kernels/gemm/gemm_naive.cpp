// Naive GEMM: reference and fallback. Shapes as in gemm.h.
#include "kernels/gemm/gemm.h"

namespace fastbp {

template <typename T>
void gemm_naive(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha,
                const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      for (int64_t j = 0; j < N; ++j) c[j] = T(0);
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
    for (int64_t p = 0; p < K; ++p) {
      const T a = alpha * (transa == Trans::N ? A[i * lda + p] : A[p * lda + i]);
      if (transb == Trans::N) {
        const T* b = B + p * ldb;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      } else {
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + p];
      }
    }
  }
}

template void gemm_naive<float>(Trans, Trans, int64_t, int64_t, int64_t, float, const float*,
                                int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_naive<double>(Trans, Trans, int64_t, int64_t, int64_t, double, const double*,
                                 int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace fastbp
