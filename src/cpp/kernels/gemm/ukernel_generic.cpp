// Generic (portable C++) GEMM kernels: plain templates that the compiler auto-vectorises for
// the baseline ISA (SSE2 on x86-64, NEON on aarch64); the kernel for any ISA this build lacks.
//   float32: 6 x 8 register tile, float64: 6 x 4.
// Shapes: the micro-kernel computes C(m x n) += over a k-long packed panel pair (gemm_kernels.h).
#include <cstdint>

#include "kernels/gemm/gemm_kernels.h"
#include "kernels/gemm/gemm_macro.h"
#include "kernels/gemm/gemm_pack.h"

namespace fastbp {
namespace gemm_detail {
namespace {

// c(i, j) = alpha * sum_p A_tile(i, p) * b[p*NR+j] + beta * c(i, j), for i < m, j < n.
// With GCC/Clang the accumulators are 16-byte vector-extension values (SSE2 on x86-64, NEON on
// aarch64: 12 registers for the 6 x 8 / 6 x 4 tiles); otherwise plain arrays.
#if defined(__GNUC__)
template <typename T, int MR, int NR>
void ukernel_generic(int64_t k, const T* __restrict a, int64_t rs_a, int64_t cs_a,
                     const T* __restrict b, T* c, int64_t rs_c, int64_t cs_c, T alpha, T beta,
                     int64_t m, int64_t n) {
  typedef T V __attribute__((vector_size(16)));
  constexpr int W = 16 / sizeof(T);
  constexpr int NV = NR / W;
  static_assert(NR % W == 0, "NR must be a multiple of the vector width");
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  const T* ar[MR];
  for (int i = 0; i < MR; ++i) ar[i] = a + ((i < m) ? i : (m - 1)) * rs_a;
  for (int64_t p = 0; p < k; ++p) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) __builtin_memcpy(&bv[v], b + v * W, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const T ai = ar[i][p * cs_a];
      for (int v = 0; v < NV; ++v) acc[i][v] += ai * bv[v];
    }
    b += NR;
  }
  T tile[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) __builtin_memcpy(&tile[i][v * W], &acc[i][v], sizeof(V));
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * rs_c;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) ci[j * cs_c] = alpha * tile[i][j];
    } else {
      for (int64_t j = 0; j < n; ++j) ci[j * cs_c] = alpha * tile[i][j] + beta * ci[j * cs_c];
    }
  }
}
#else
template <typename T, int MR, int NR>
void ukernel_generic(int64_t k, const T* __restrict a, int64_t rs_a, int64_t cs_a,
                     const T* __restrict b, T* c, int64_t rs_c, int64_t cs_c, T alpha, T beta,
                     int64_t m, int64_t n) {
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = T(0);
  const T* ar[MR];
  for (int i = 0; i < MR; ++i) ar[i] = a + ((i < m) ? i : (m - 1)) * rs_a;
  for (int64_t p = 0; p < k; ++p) {
    for (int i = 0; i < MR; ++i) {
      const T ai = ar[i][p * cs_a];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    b += NR;
  }
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * rs_c;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) ci[j * cs_c] = alpha * acc[i][j];
    } else {
      for (int64_t j = 0; j < n; ++j) ci[j * cs_c] = alpha * acc[i][j] + beta * ci[j * cs_c];
    }
  }
}
#endif

// Direct product without packing, for small shapes: rows of C accumulated over p.
template <typename T>
void small_generic(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha,
                   const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  constexpr int64_t NB = 64;
  T acc[NB];
  for (int64_t i = 0; i < M; ++i) {
    T* ci = C + i * ldc;
    for (int64_t j0 = 0; j0 < N; j0 += NB) {
      const int64_t nb = (N - j0 < NB) ? (N - j0) : NB;
      for (int64_t j = 0; j < nb; ++j) acc[j] = T(0);
      if (transb == Trans::N) {
        for (int64_t p = 0; p < K; ++p) {
          const T aip = (transa == Trans::N) ? A[i * lda + p] : A[p * lda + i];
          const T* bp = B + p * ldb + j0;
          for (int64_t j = 0; j < nb; ++j) acc[j] += aip * bp[j];
        }
      } else {
        for (int64_t j = 0; j < nb; ++j) {
          const T* bj = B + (j0 + j) * ldb;
          T s = T(0);
          if (transa == Trans::N) {
            const T* ai = A + i * lda;
            for (int64_t p = 0; p < K; ++p) s += ai[p] * bj[p];
          } else {
            for (int64_t p = 0; p < K; ++p) s += A[p * lda + i] * bj[p];
          }
          acc[j] = s;
        }
      }
      if (beta == T(0)) {
        for (int64_t j = 0; j < nb; ++j) ci[j0 + j] = alpha * acc[j];
      } else {
        for (int64_t j = 0; j < nb; ++j) ci[j0 + j] = alpha * acc[j] + beta * ci[j0 + j];
      }
    }
  }
}

// GemvFn (gemm_kernels.h): the small path on the one row.
template <typename T>
void gemv_generic(Trans transa, Trans transb, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, T* abuf) {
  small_generic<T>(transa, transb, 1, N, K, alpha, A, lda, B, ldb, beta, C, N);
}

// PeakFn (gemm_kernels.h) on 16-byte vectors (GCC/Clang) or scalars.
template <typename T>
double fma_peak_generic(int64_t iters, T* sink) {
#if defined(__GNUC__)
  typedef T V __attribute__((vector_size(16)));
  constexpr int W = 16 / sizeof(T);
#else
  typedef T V;
  constexpr int W = 1;
#endif
  V acc[kPeakChains];
  const T x = T(0.999999), y = T(1e-6);
  for (int i = 0; i < kPeakChains; ++i) acc[i] = V{} + T(i);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kPeakChains; ++i) acc[i] = acc[i] * x + y;
  T total = T(0);
  for (int i = 0; i < kPeakChains; ++i) {
    T lanes[W];
    __builtin_memcpy(lanes, &acc[i], sizeof(lanes));
    for (int l = 0; l < W; ++l) total += lanes[l];
  }
  *sink = total;
  return 2.0 * double(iters) * kPeakChains * W;
}

// Cache shares tuned on Zen 4 (32 KiB L1d, 1 MiB L2, 32 MiB L3): KC = 256, MC = 72, NC = 2048.
template <typename T, int NR>
constexpr GemmConfig<T> make_config(const char* name, double mc_share, double nc_share) {
  GemmConfig<T> c{};
  c.name = name;
  c.mr = 6;
  c.nr = NR;
  c.nr_step = NR;
  c.cache.kc_level = 1;  // the B micro-panel (KC x NR) lives in L1
  c.cache.kc_share = 0.25;
  c.cache.kc_min = 128;
  c.cache.kc_max = 1024;
  c.cache.mc_share = mc_share;
  c.cache.nc_share = nc_share;
  c.cache.nc_max = 8192;
  c.macro[0] = &macro_kernel<T, 6, &ukernel_generic<T, 6, NR>>;
  c.pack_a = &pack_a_tmpl<T, 6>;
  c.pack_b = &pack_b_tmpl<T, NR>;
  c.small = &small_generic<T>;
  c.small_mr = 1;
  c.small_max_work = 16 * 16 * 16;
  c.gemv = &gemv_generic<T>;
  c.peak = &fma_peak_generic<T>;
  return c;
}

constexpr GemmConfig<float> k_f32 = make_config<float, 8>("generic_f32_6x8", 0.0703125, 0.0625);
constexpr GemmConfig<double> k_f64 = make_config<double, 4>("generic_f64_6x4", 0.140625, 0.125);

}  // namespace

const GemmConfig<float>* config_generic_f32() { return &k_f32; }
const GemmConfig<double>* config_generic_f64() { return &k_f64; }

}  // namespace gemm_detail
}  // namespace fastbp
