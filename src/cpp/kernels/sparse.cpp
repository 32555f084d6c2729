#include "kernels/sparse.h"

#include <algorithm>

#include "core/threading.h"

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastbp {

namespace {

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kParallelWork = int64_t(1) << 16;

int team_size(int64_t work, int64_t parts) {
#ifdef FASTBP_HAVE_OPENMP
  if (work < kParallelWork || omp_in_parallel()) return 1;
  return int(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), parts)));
#else
  (void)work;
  (void)parts;
  return 1;
#endif
}

// C[r0:r1) = A[r0:r1) · B
template <typename T>
void rows_times(T* C, const int64_t* indptr, const int64_t* indices, const T* values,
                int64_t r0, int64_t r1, const T* B, int64_t p) {
  for (int64_t i = r0; i < r1; ++i) {
    T* c = C + i * p;
    std::fill(c, c + p, T(0));
    for (int64_t q = indptr[i]; q < indptr[i + 1]; ++q) {
      const T v = values[q];
      const T* b = B + indices[q] * p;
      for (int64_t j = 0; j < p; ++j) c[j] += v * b[j];
    }
  }
}

// C[:, c0:c1) = Aᵀ · D[:, c0:c1)
template <typename T>
void cols_t_times(T* C, const int64_t* indptr, const int64_t* indices, const T* values,
                  int64_t n, int64_t m, const T* D, int64_t p, int64_t c0, int64_t c1,
                  bool c_zero) {
  if (!c_zero)
    for (int64_t r = 0; r < m; ++r) std::fill(C + r * p + c0, C + r * p + c1, T(0));
  for (int64_t i = 0; i < n; ++i) {
    const T* d = D + i * p;
    for (int64_t q = indptr[i]; q < indptr[i + 1]; ++q) {
      const T v = values[q];
      T* c = C + indices[q] * p;
      for (int64_t j = c0; j < c1; ++j) c[j] += v * d[j];
    }
  }
}

}  // namespace

template <typename T>
void csr_matmul(T* C, const int64_t* indptr, const int64_t* indices, const T* values,
                int64_t n, const T* B, int64_t p) {
  const int nt = team_size((indptr[n] + n) * p, n);
  if (nt <= 1) {
    rows_times(C, indptr, indices, values, 0, n, B, p);
    return;
  }
#ifdef FASTBP_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
    rows_times(C, indptr, indices, values, t * n / k, (t + 1) * n / k, B, p);
  }
#endif
}

template <typename T>
void csr_t_matmul(T* C, const int64_t* indptr, const int64_t* indices, const T* values,
                  int64_t n, int64_t m, const T* D, int64_t p, bool c_zero) {
  // column blocks of 16 elements (a 64-byte line of float32) at least
  const int64_t blocks = (p + 15) / 16;
  const int nt = team_size((indptr[n] + (c_zero ? 0 : m)) * p, blocks);
  if (nt <= 1) {
    cols_t_times(C, indptr, indices, values, n, m, D, p, 0, p, c_zero);
    return;
  }
#ifdef FASTBP_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
    const int64_t c0 = std::min(p, (t * blocks / k) * 16);
    const int64_t c1 = std::min(p, ((t + 1) * blocks / k) * 16);
    if (c1 > c0) cols_t_times(C, indptr, indices, values, n, m, D, p, c0, c1, c_zero);
  }
#endif
}

template void csr_matmul<float>(float*, const int64_t*, const int64_t*, const float*, int64_t,
                                const float*, int64_t);
template void csr_matmul<double>(double*, const int64_t*, const int64_t*, const double*,
                                 int64_t, const double*, int64_t);
template void csr_t_matmul<float>(float*, const int64_t*, const int64_t*, const float*, int64_t,
                                  int64_t, const float*, int64_t, bool);
template void csr_t_matmul<double>(double*, const int64_t*, const int64_t*, const double*,
                                   int64_t, int64_t, const double*, int64_t, bool);

}  // namespace fastbp
