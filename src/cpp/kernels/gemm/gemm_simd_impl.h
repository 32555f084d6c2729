// SIMD GEMM building blocks, written once over a "vector traits" class S (simd_avx2.h,
// simd_avx512.h) and instantiated by the per-ISA, per-dtype kernel files. Included ONLY from
// files compiled with the matching -m flags; everything has internal linkage so copies built
// for different ISAs never meet in the linker. No OpenMP here (driver only), no std:: calls.
//
// S provides: T, V (vector), Mask; L (lanes); zero, set1, load (aligned), loadu, storeu,
// fmadd(a, b, c) = a*b + c (fused), mul, mask(n) (first n lanes, n may be <= 0 or >= L),
// maskz_loadu, mask_storeu, fma_scalar.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/platform.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_kernels.h"

namespace fastbp {
namespace gemm_detail {
namespace {

#define FASTBP_UNROLL _Pragma("GCC unroll 32")
#define FASTBP_UNROLL_K _Pragma("GCC unroll 4")

// Epilogue shared by the micro-kernel and the small path, so every element of C is finished
// by the same operations: r = alpha*acc; C = beta == 0 ? r : fma(beta, C, r).
// Row i of the tile (NV vectors) goes to c (contiguous); `n` valid columns.
template <class S, int NV>
inline void store_row(typename S::T* c, const typename S::V* acc, typename S::V valpha,
                      typename S::V vbeta, bool beta0, int64_t n) {
  using V = typename S::V;
  constexpr int L = S::L;
  if (n >= NV * L) {
    FASTBP_UNROLL
    for (int v = 0; v < NV; ++v) {
      V r = S::mul(valpha, acc[v]);
      if (!beta0) r = S::fmadd(vbeta, S::loadu(c + v * L), r);
      S::storeu(c + v * L, r);
    }
  } else {
    FASTBP_UNROLL
    for (int v = 0; v < NV; ++v) {
      if (n <= v * L) break;
      const typename S::Mask mk = S::mask(n - v * L);
      V r = S::mul(valpha, acc[v]);
      if (!beta0) r = S::fmadd(vbeta, S::maskz_loadu(mk, c + v * L), r);
      S::mask_storeu(c + v * L, mk, r);
    }
  }
}

// The micro-kernel's epilogue: the m x n part of the MR x (NV*L) accumulator tile to C.
template <class S, int MR, int NV>
inline void store_tile(const typename S::V (*acc)[NV], typename S::T* c, int64_t rs_c,
                       int64_t cs_c, typename S::T alpha, typename S::T beta, int64_t m,
                       int64_t n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int NR = NV * L;
  const V valpha = S::set1(alpha);
  const V vbeta = S::set1(beta);
  const bool beta0 = (beta == T(0));
  if (cs_c == 1) {
    if (m == MR && n == NR) {
      FASTBP_UNROLL
      for (int i = 0; i < MR; ++i) store_row<S, NV>(c + i * rs_c, acc[i], valpha, vbeta, beta0, NR);
    } else {
      FASTBP_UNROLL
      for (int i = 0; i < MR; ++i)
        if (i < m) store_row<S, NV>(c + i * rs_c, acc[i], valpha, vbeta, beta0, n);
    }
  } else {
    // Strided C (the driver's transposed view): finish r = alpha*acc in vectors, then the
    // same fused beta update element by element.
    alignas(64) T tmp[MR * NR];
    FASTBP_UNROLL
    for (int i = 0; i < MR; ++i)
      FASTBP_UNROLL
      for (int v = 0; v < NV; ++v) S::storeu(tmp + i * NR + v * L, S::mul(valpha, acc[i][v]));
    for (int64_t i = 0; i < m; ++i) {
      T* ci = c + i * rs_c;
      const T* ti = tmp + i * NR;
      if (beta0) {
        for (int64_t j = 0; j < n; ++j) ci[j * cs_c] = ti[j];
      } else {
        for (int64_t j = 0; j < n; ++j) ci[j * cs_c] = S::fma_scalar(beta, ci[j * cs_c], ti[j]);
      }
    }
  }
}

// Micro-kernel: MR x (NV*L) register tile over packed panels (see gemm_kernels.h).
template <class S, int MR, int NV, int NVB = NV>
void ukernel_simd(int64_t k, const typename S::T* __restrict a, int64_t rs_a, int64_t cs_a,
                  const typename S::T* __restrict b, typename S::T* c, int64_t rs_c,
                  int64_t cs_c, typename S::T alpha, typename S::T beta, int64_t m, int64_t n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int NR = NV * L;    // columns computed
  constexpr int LDB = NVB * L;  // packed panel width (>= NR for the narrow-edge variants)
  V acc[MR][NV];
  FASTBP_UNROLL
  for (int i = 0; i < MR; ++i)
    FASTBP_UNROLL
    for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
  // When C is read (beta != 0), start fetching the C tile now: it is read and written only
  // after the k loop, and on a large C it comes from L3 or memory. (A write-only C is not
  // prefetched: a read prefetch followed by the store costs a second transaction per line.)
  if (cs_c == 1 && beta != typename S::T(0)) {
    FASTBP_UNROLL
    for (int i = 0; i < MR; ++i) {
      __builtin_prefetch(c + i * rs_c, 1, 3);
      __builtin_prefetch(c + i * rs_c + (NR - 1), 1, 3);
    }
  }

  if (rs_a == 1 && cs_a == MR) {
    // Packed A panel.
    FASTBP_UNROLL_K
    for (int64_t p = 0; p < k; ++p) {
      V bv[NV];
      FASTBP_UNROLL
      for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * L);
      FASTBP_UNROLL
      for (int i = 0; i < MR; ++i) {
        const V ai = S::set1(a[i]);
        FASTBP_UNROLL
        for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
      }
      a += MR;
      b += LDB;
    }
  } else {
    // A in place: MR row pointers (rows past m repeat row m-1, never stored).
    const T* ar[MR];
    FASTBP_UNROLL
    for (int i = 0; i < MR; ++i) ar[i] = a + ((i < m) ? i : (m - 1)) * rs_a;
    FASTBP_UNROLL_K
    for (int64_t p = 0; p < k; ++p) {
      V bv[NV];
      FASTBP_UNROLL
      for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * L);
      FASTBP_UNROLL
      for (int i = 0; i < MR; ++i) {
        const V ai = S::set1(ar[i][p * cs_a]);
        FASTBP_UNROLL
        for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
      }
      b += LDB;
    }
  }

  store_tile<S, MR, NV>(acc, c, rs_c, cs_c, alpha, beta, m, n);
}

// ---- Small direct path (no packing) -------------------------------------------------------
// One R x (NV*L) block of C, op(B) = B row-major (K x n, n <= NV*L valid columns).
template <class S, int R, int NV>
void small_block(int64_t K, const typename S::T* A, int64_t lda, bool at,
                 const typename S::T* B, int64_t ldb, typename S::T* C, int64_t ldc,
                 typename S::T alpha, typename S::T beta, int64_t n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  V acc[R][NV];
  FASTBP_UNROLL
  for (int i = 0; i < R; ++i)
    FASTBP_UNROLL
    for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
  const bool full = (n >= NV * L);
  const typename S::Mask last = S::mask(n - (NV - 1) * L);
  for (int64_t p = 0; p < K; ++p) {
    const T* bp = B + p * ldb;
    V bv[NV];
    FASTBP_UNROLL
    for (int v = 0; v < NV - 1; ++v) bv[v] = S::loadu(bp + v * L);
    bv[NV - 1] = full ? S::loadu(bp + (NV - 1) * L) : S::maskz_loadu(last, bp + (NV - 1) * L);
    FASTBP_UNROLL
    for (int i = 0; i < R; ++i) {
      const V ai = S::set1(at ? A[p * lda + i] : A[i * lda + p]);
      FASTBP_UNROLL
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
    }
  }
  const V valpha = S::set1(alpha);
  const V vbeta = S::set1(beta);
  const bool beta0 = (beta == T(0));
  FASTBP_UNROLL
  for (int i = 0; i < R; ++i) store_row<S, NV>(C + i * ldc, acc[i], valpha, vbeta, beta0, n);
}

template <class S, int R, int NV>
inline void small_dispatch_nv(int nv, int64_t K, const typename S::T* A, int64_t lda, bool at,
                              const typename S::T* B, int64_t ldb, typename S::T* C, int64_t ldc,
                              typename S::T alpha, typename S::T beta, int64_t n) {
  if constexpr (NV == 1) {
    small_block<S, R, 1>(K, A, lda, at, B, ldb, C, ldc, alpha, beta, n);
  } else {
    if (nv == NV) small_block<S, R, NV>(K, A, lda, at, B, ldb, C, ldc, alpha, beta, n);
    else small_dispatch_nv<S, R, NV - 1>(nv, K, A, lda, at, B, ldb, C, ldc, alpha, beta, n);
  }
}

template <class S, int R, int NV>
inline void small_dispatch(int r, int nv, int64_t K, const typename S::T* A, int64_t lda, bool at,
                           const typename S::T* B, int64_t ldb, typename S::T* C, int64_t ldc,
                           typename S::T alpha, typename S::T beta, int64_t n) {
  if constexpr (R == 1) {
    small_dispatch_nv<S, 1, NV>(nv, K, A, lda, at, B, ldb, C, ldc, alpha, beta, n);
  } else {
    if (r == R) small_dispatch_nv<S, R, NV>(nv, K, A, lda, at, B, ldb, C, ldc, alpha, beta, n);
    else small_dispatch<S, R - 1, NV>(r, nv, K, A, lda, at, B, ldb, C, ldc, alpha, beta, n);
  }
}

// op(B) = B (row-major K x N): column strips of NVMAX vectors, row blocks of RMAX.
template <class S, int RMAX, int NVMAX>
void small_simd_bn(bool at, int64_t M, int64_t N, int64_t K, typename S::T alpha,
                   const typename S::T* A, int64_t lda, const typename S::T* B, int64_t ldb,
                   typename S::T beta, typename S::T* C, int64_t ldc) {
  using T = typename S::T;
  constexpr int L = S::L;
  constexpr int64_t NB = NVMAX * L;
  for (int64_t j0 = 0; j0 < N; j0 += NB) {
    const int64_t nj = (N - j0 < NB) ? (N - j0) : NB;
    const int nv = int((nj + L - 1) / L);
    for (int64_t i0 = 0; i0 < M; i0 += RMAX) {
      const int r = int((M - i0 < RMAX) ? (M - i0) : RMAX);
      const T* ai = at ? A + i0 : A + i0 * lda;
      small_dispatch<S, RMAX, NVMAX>(r, nv, K, ai, lda, at, B + j0, ldb, C + i0 * ldc + j0, ldc,
                                     alpha, beta, nj);
    }
  }
}

// Whether S has transpose (an L x L block of vectors transposed in registers).
template <class S, class = void>
struct has_transpose : std::false_type {};
template <class S>
struct has_transpose<S, std::void_t<decltype(S::transpose(std::declval<typename S::V*>()))>>
    : std::true_type {};

// Rows [0, rows) x columns [0, cols) of src (both <= L) transposed into dst,
// dst[c * ldd + r] = src[r * lds + c], through S::transpose; nothing else is read or written
// (masked loads and stores).
template <class S>
inline void transpose_tile(const typename S::T* src, int64_t lds, int64_t rows, int64_t cols,
                           typename S::T* dst, int64_t ldd) {
  typename S::V r[S::L];
  if (rows == S::L && cols == S::L) {  // (plain loads and stores: AVX2's masked ones are slow)
    for (int i = 0; i < S::L; ++i) r[i] = S::loadu(src + i * lds);
    S::transpose(r);
    for (int c = 0; c < S::L; ++c) S::storeu(dst + c * ldd, r[c]);
    return;
  }
  const typename S::Mask cm = S::mask(cols), rm = S::mask(rows);
  for (int i = 0; i < S::L; ++i) r[i] = i < rows ? S::maskz_loadu(cm, src + i * lds) : S::zero();
  S::transpose(r);
  for (int64_t c = 0; c < cols; ++c) S::mask_storeu(dst + c * ldd, rm, r[c]);
}

// bt[p * ldt + j] = B[j * ldb + p] for j < N, p < K, one element at a time.
template <typename T>
inline void copy_transposed_scalar(const T* B, int64_t ldb, int64_t N, int64_t K, T* bt,
                                   int64_t ldt) {
  for (int64_t j = 0; j < N; ++j) {
    const T* bj = B + j * ldb;
    for (int64_t p = 0; p < K; ++p) bt[p * ldt + j] = bj[p];
  }
}

// bt[p * N + j] = B[j * ldb + p] for j < N, p < K: L x L tiles transposed in registers where
// S can (a copy: the same values, whatever the order it is done in), else one by one.
template <class S>
void copy_transposed(const typename S::T* B, int64_t ldb, int64_t N, int64_t K,
                     typename S::T* bt) {
  if constexpr (has_transpose<S>::value) {
    constexpr int64_t L = S::L;
    for (int64_t j = 0; j < N; j += L)
      for (int64_t p = 0; p < K; p += L)
        transpose_tile<S>(B + j * ldb + p, ldb, N - j < L ? N - j : L, K - p < L ? K - p : L,
                          bt + p * N + j, N);
  } else {
    copy_transposed_scalar(B, ldb, N, K, bt, N);
  }
}

// op(B) = B^T: copy it transposed (K x N, K*N <= small_trans_b_max<T>()) to the stack
// first. Kept out of line so the common path does not pay for (or probe) the large stack frame.
template <class S, int RMAX, int NVMAX>
__attribute__((noinline)) void small_simd_bt(bool at, int64_t M, int64_t N, int64_t K,
                                             typename S::T alpha, const typename S::T* A,
                                             int64_t lda, const typename S::T* B, int64_t ldb,
                                             typename S::T beta, typename S::T* C, int64_t ldc) {
  using T = typename S::T;
  alignas(64) T bt[small_trans_b_max<T>()];
  copy_transposed<S>(B, ldb, N, K, bt);
  small_simd_bn<S, RMAX, NVMAX>(at, M, N, K, alpha, A, lda, bt, N, beta, C, ldc);
}

// Same contract as gemm() (the driver guarantees K*N <= small_trans_b_max<T>() when B is
// transposed).
template <class S, int RMAX, int NVMAX>
void small_simd(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, typename S::T alpha,
                const typename S::T* A, int64_t lda, const typename S::T* B, int64_t ldb,
                typename S::T beta, typename S::T* C, int64_t ldc) {
  const bool at = (transa == Trans::T);
  if (transb == Trans::T)
    small_simd_bt<S, RMAX, NVMAX>(at, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    small_simd_bn<S, RMAX, NVMAX>(at, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- Tiny products: M <= kTinyMaxM rows, N <= one vector, K <= kTinyMaxK ------------------
// The layers of a tiny network (a 2-4-1 net: 4x4x2, 4x1x4, ...) spent most of each product in
// the small path's blocking and dispatch. This is the small path's arithmetic without them:
// per row of C one vector accumulator, acc = a_ip * b_p + acc for p ascending from zero, then
// alpha and beta applied as store_row applies them -- so the same bits as small_simd (tested:
// tests/test_gemm.py, tiny rows against the same rows of a product the small path takes).
// K fixed at compile time (and op(A)'s orientation): op(B)'s K vectors stay in registers and
// the sum over p is unrolled -- the same operations in the same order as a loop over p. (A
// loop over a run-time K kept them on the stack and paid its control per row: the products of
// the 2-4-1 net's step took a third of it.)
template <class S, int K, bool AT>
void tiny_rows(int64_t M, int64_t N, typename S::T alpha, const typename S::T* A, int64_t lda,
               const typename S::T* B, int64_t ldb, typename S::Mask mk, typename S::T beta,
               typename S::T* C, int64_t ldc) {
  using V = typename S::V;
  V b[K];
  FASTBP_UNROLL
  for (int p = 0; p < K; ++p) b[p] = S::maskz_loadu(mk, B + p * ldb);
  const V valpha = S::set1(alpha), vbeta = S::set1(beta);
  const bool beta0 = (beta == typename S::T(0));
  for (int64_t i = 0; i < M; ++i) {
    V acc = S::zero();
    FASTBP_UNROLL
    for (int p = 0; p < K; ++p)
      acc = S::fmadd(S::set1(AT ? A[p * lda + i] : A[i * lda + p]), b[p], acc);
    store_row<S, 1>(C + i * ldc, &acc, valpha, vbeta, beta0, N);
  }
}

template <class S, bool AT, int... Ks>
inline void tiny_by_k(std::integer_sequence<int, Ks...>, int64_t M, int64_t N, int64_t K,
                      typename S::T alpha, const typename S::T* A, int64_t lda,
                      const typename S::T* B, int64_t ldb, typename S::Mask mk,
                      typename S::T beta, typename S::T* C, int64_t ldc) {
  // (K is 1 .. kTinyMaxK: the driver's bound for this path)
  (void)((K == Ks + 1 ? (tiny_rows<S, Ks + 1, AT>(M, N, alpha, A, lda, B, ldb, mk, beta, C, ldc),
                         true)
                      : false) ||
         ...);
}

template <class S>
void tiny_simd(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, typename S::T alpha,
               const typename S::T* A, int64_t lda, const typename S::T* B, int64_t ldb,
               typename S::T beta, typename S::T* C, int64_t ldc) {
  using T = typename S::T;
  constexpr int L = S::L;
  const typename S::Mask mk = S::mask(N);
  alignas(64) T bt[kTinyMaxK * L];
  if (transb == Trans::T) {  // op(B)(p, j) = B[j * ldb + p] (a few elements: no register tiles)
    copy_transposed_scalar(B, ldb, N, K, bt, L);
    B = bt;
    ldb = L;
  }
  constexpr auto ks = std::make_integer_sequence<int, int(kTinyMaxK)>{};
  if (transa == Trans::T)
    tiny_by_k<S, true>(ks, M, N, K, alpha, A, lda, B, ldb, mk, beta, C, ldc);
  else
    tiny_by_k<S, false>(ks, M, N, K, alpha, A, lda, B, ldb, mk, beta, C, ldc);
}

// Whether S has hsum_lanes (the lane sums of L vectors at once, as hsum forms each).
template <class S, class = void>
struct has_hsum_lanes : std::false_type {};
template <class S>
struct has_hsum_lanes<S, std::void_t<decltype(S::kHsumLanes)>> : std::true_type {};

// One element of C from its sum s over K: C = alpha * s, or beta * C + alpha * s (one rounding).
template <class S>
inline void narrow_put(typename S::T* c, typename S::T r, typename S::T beta) {
  *c = (beta == typename S::T(0)) ? r : S::fma_scalar(beta, *c, r);
}
template <class S>
inline void narrow_store(typename S::T* c, typename S::T s, typename S::T alpha,
                         typename S::T beta) {
  narrow_put<S>(c, alpha * s, beta);
}
// The same for the lanes of `sums` (hsum_lanes) into c[0..] under mask mk, in one vector.
template <class S>
inline void put_lanes(typename S::T* c, typename S::V sums, typename S::T alpha,
                      typename S::T beta, typename S::Mask mk) {
  typename S::V out = S::mul(S::set1(alpha), sums);
  if (beta != typename S::T(0)) out = S::fmadd(S::set1(beta), S::maskz_loadu(mk, c), out);
  S::mask_storeu(c, mk, out);
}

// ---- One row of C (M == 1): a vector-matrix product ----------------------------------------
// c(1 x n) = alpha * a(1 x K) . op(B) + beta * c, a[p] at a[p*inc_a].
// op(B) = B (K x N row-major): CH-vector column chunks, each a sum over p in order (CH
// independent FMA chains), finished like the small path's rows.
template <class S, int CH>
void gemv_n_simd(int64_t N, int64_t K, typename S::T alpha, const typename S::T* a,
                 int64_t inc_a, const typename S::T* B, int64_t ldb, typename S::T beta,
                 typename S::T* c) {
  using V = typename S::V;
  constexpr int L = S::L;
  const V valpha = S::set1(alpha), vbeta = S::set1(beta);
  const bool beta0 = (beta == typename S::T(0));
  for (int64_t j0 = 0; j0 < N; j0 += CH * L) {
    const int64_t n = (N - j0 < CH * L) ? (N - j0) : CH * L;
    V acc[CH];
    FASTBP_UNROLL
    for (int v = 0; v < CH; ++v) acc[v] = S::zero();
    if (n == CH * L) {
      for (int64_t p = 0; p < K; ++p) {
        const V ap = S::set1(a[p * inc_a]);
        const typename S::T* bp = B + p * ldb + j0;
        FASTBP_UNROLL
        for (int v = 0; v < CH; ++v) acc[v] = S::fmadd(ap, S::loadu(bp + v * L), acc[v]);
      }
    } else {
      for (int64_t p = 0; p < K; ++p) {
        const V ap = S::set1(a[p * inc_a]);
        const typename S::T* bp = B + p * ldb + j0;
        FASTBP_UNROLL
        for (int v = 0; v < CH; ++v)
          if (v * L < n) acc[v] = S::fmadd(ap, S::maskz_loadu(S::mask(n - v * L), bp + v * L),
                                           acc[v]);
      }
    }
    store_row<S, CH>(c + j0, acc, valpha, vbeta, beta0, n);
  }
}

// The same product for a row wider than gemv_n_simd's register block (N > CH vectors): rows
// of B read in order, four at a time, with the running sums kept in acc (N elements, in L1)
// instead of registers; every c[j] sees the same operations in the same order as in
// gemv_n_simd. (Blocks of columns instead swept B once per block, each sweep a strided walk
// over all its rows: 1x256x512 f32 on Zen 4 at 0.9x numpy.matmul, 1x1024x2048 at 0.8x.)
template <class S>
void gemv_n_rows_simd(int64_t N, int64_t K, typename S::T alpha, const typename S::T* a,
                      int64_t inc_a, const typename S::T* B, int64_t ldb, typename S::T beta,
                      typename S::T* c, typename S::T* acc) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  const int64_t nv = N / L * L;
  for (int64_t j = 0; j < N; ++j) acc[j] = T(0);
  // RB rows of B (p..p+RB-1) per sweep over acc, each element's multiply-adds in row order
  // (what one row at a time would do), so acc is loaded and stored once per RB rows
  const auto sweep = [&](int64_t p, auto rb) {
    constexpr int RB = decltype(rb)::value;
    V ap[RB];
    const T* bp[RB];
    FASTBP_UNROLL
    for (int q = 0; q < RB; ++q) {
      ap[q] = S::set1(a[(p + q) * inc_a]);
      bp[q] = B + (p + q) * ldb;
    }
    for (int64_t j = 0; j < nv; j += L) {
      V x = S::loadu(acc + j);
      FASTBP_UNROLL
      for (int q = 0; q < RB; ++q) x = S::fmadd(ap[q], S::loadu(bp[q] + j), x);
      S::storeu(acc + j, x);
    }
    if (nv < N) {
      const typename S::Mask mk = S::mask(N - nv);
      V x = S::maskz_loadu(mk, acc + nv);
      FASTBP_UNROLL
      for (int q = 0; q < RB; ++q) x = S::fmadd(ap[q], S::maskz_loadu(mk, bp[q] + nv), x);
      S::mask_storeu(acc + nv, mk, x);
    }
  };
  int64_t p = 0;
  for (; p + 4 <= K; p += 4) sweep(p, std::integral_constant<int, 4>{});
  for (; p < K; ++p) sweep(p, std::integral_constant<int, 1>{});
  const V valpha = S::set1(alpha), vbeta = S::set1(beta);
  const bool beta0 = (beta == T(0));
  for (int64_t j = 0; j < N; j += L) {
    const V v = S::loadu(acc + j);   // in bounds: acc holds N + 16 elements
    store_row<S, 1>(c + j, &v, valpha, vbeta, beta0, N - j);
  }
}

// op(B) = B^T (B stored N x K): c[j] = alpha * dot(a, B row j) + beta * c[j]; four rows at a
// time, two vector accumulators each, added lane-wise and then summed as a fixed tree.
template <class S>
void gemv_t_simd(int64_t N, int64_t K, typename S::T alpha, const typename S::T* a,
                 int64_t inc_a, const typename S::T* B, int64_t ldb, typename S::T beta,
                 typename S::T* c, typename S::T* abuf) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L, R = 4;
  const T* av = a;
  if (inc_a != 1) {   // a strided (op(A) = A^T): gather it once
    for (int64_t p = 0; p < K; ++p) abuf[p] = a[p * inc_a];
    av = abuf;
  }
  const int64_t kv = K / (2 * L) * (2 * L);
  // rows j0..j0+R-1 (the last r of them real): each row's two accumulators, added lane-wise
  // into sum[i]
  const auto rows = [&](int64_t j0, int r, V* sum) {
    V acc[R][2];
    FASTBP_UNROLL
    for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = S::zero();
    const T* br[R];
    FASTBP_UNROLL
    for (int i = 0; i < R; ++i) br[i] = B + (j0 + (i < r ? i : r - 1)) * ldb;
    for (int64_t p = 0; p < kv; p += 2 * L) {
      const V a0 = S::loadu(av + p), a1 = S::loadu(av + p + L);
      FASTBP_UNROLL
      for (int i = 0; i < R; ++i) {
        acc[i][0] = S::fmadd(a0, S::loadu(br[i] + p), acc[i][0]);
        acc[i][1] = S::fmadd(a1, S::loadu(br[i] + p + L), acc[i][1]);
      }
    }
    for (int64_t p = kv; p < K; p += L) {
      const typename S::Mask mk = S::mask(K - p);
      const V a0 = S::maskz_loadu(mk, av + p);
      FASTBP_UNROLL
      for (int i = 0; i < R; ++i) acc[i][0] = S::fmadd(a0, S::maskz_loadu(mk, br[i] + p), acc[i][0]);
    }
    FASTBP_UNROLL
    for (int i = 0; i < R; ++i) sum[i] = S::add(acc[i][0], acc[i][1]);
  };
  int64_t j0 = 0;
  if constexpr (has_hsum_lanes<S>::value) {
    // L rows at a time: their lane sums in one tree (the same additions as hsum) and one store
    for (; j0 + L <= N; j0 += L) {
      V sum[L];
      FASTBP_UNROLL
      for (int q = 0; q < L / R; ++q) rows(j0 + q * R, R, sum + q * R);
      put_lanes<S>(c + j0, S::hsum_lanes(sum), alpha, beta, S::mask(L));
    }
  }
  for (; j0 < N; j0 += R) {
    const int r = int((N - j0 < R) ? (N - j0) : R);
    V sum[R];
    rows(j0, r, sum);
    for (int i = 0; i < r; ++i) narrow_store<S>(c + j0 + i, S::hsum(sum[i]), alpha, beta);
  }
}

// GemvFn (gemm_kernels.h).
template <class S, int CH>
void gemv_simd(Trans transa, Trans transb, int64_t N, int64_t K, typename S::T alpha,
               const typename S::T* A, int64_t lda, const typename S::T* B, int64_t ldb,
               typename S::T beta, typename S::T* C, typename S::T* abuf) {
  const int64_t inc_a = (transa == Trans::N) ? 1 : lda;
  if (transb == Trans::N && N > CH * S::L)
    gemv_n_rows_simd<S>(N, K, alpha, A, inc_a, B, ldb, beta, C, abuf);
  else if (transb == Trans::N)
    gemv_n_simd<S, CH>(N, K, alpha, A, inc_a, B, ldb, beta, C);
  else
    gemv_t_simd<S>(N, K, alpha, A, inc_a, B, ldb, beta, C, abuf);
}

// ---- A narrow C (N <= the config's narrow_max_n) ---------------------------------------------
// The small path spends a whole vector on each row's N <= 4 (8) columns (1/16 of it used in
// f32 AVX-512 for N = 1); these forms keep the vectors full along M or K instead.

// The end of one narrow_dot block: r rows (C row i at c0 + i * ldc) from the accumulators,
// alpha and beta applied as narrow_store applies them.
template <class S, int R, int N>
FASTBP_ALWAYS_INLINE void narrow_dot_store(const typename S::V (&acc)[R][N], int r,
                                           typename S::T alpha, typename S::T beta,
                                           typename S::T* c0, int64_t ldc) {
  using T = typename S::T;
  using V = typename S::V;
  if constexpr (has_hsum_lanes<S>::value) {
    // the accumulators' lane sums L at a time (the same additions as hsum), then alpha and
    // beta as narrow_store applies them: in whole vectors when the rows are contiguous
    constexpr int L = S::L, G = (R * N + L - 1) / L;
    FASTBP_UNROLL
    for (int g = 0; g < G; ++g) {
      const int cnt = r * N - g * L;  // this group's elements of C
      if (cnt <= 0) break;
      V v[L];
      FASTBP_UNROLL
      for (int q = 0; q < L; ++q) {
        const int k = g * L + q;
        v[q] = k < R * N ? acc[k / N][k % N] : S::zero();
      }
      const V sums = S::hsum_lanes(v);
      if (ldc == N) {
        put_lanes<S>(c0 + g * L, sums, alpha, beta, S::mask(cnt));
        continue;
      }
      T t[L];  // (unaligned: ASan's fake stack does not keep 64-byte alignment)
      S::storeu(t, S::mul(S::set1(alpha), sums));
      for (int q = 0; q < L && q < cnt; ++q) {
        const int k = g * L + q;
        narrow_put<S>(c0 + (k / N) * ldc + k % N, t[q], beta);
      }
    }
  } else {
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < N; ++j)
        narrow_store<S>(c0 + i * ldc + j, S::hsum(acc[i][j]), alpha, beta);
  }
}

// op(A) = A (rows contiguous): C(i, j) = dot(A row i, column j of op(B)) along K, R rows x N
// columns of vector accumulators; bt holds op(B) transposed (N rows of K, contiguous).
template <class S, int R, int N>
void narrow_dot(int64_t M, int64_t K, typename S::T alpha, const typename S::T* A, int64_t lda,
                const typename S::T* bt, int64_t ldbt, typename S::T beta, typename S::T* C,
                int64_t ldc) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  for (int64_t i0 = 0; i0 < M; i0 += R) {
    const int r = int(M - i0 < R ? M - i0 : R);
    const typename S::T* ar[R];
    FASTBP_UNROLL
    for (int i = 0; i < R; ++i) ar[i] = A + (i0 + (i < r ? i : r - 1)) * lda;
    V acc[R][N];
    FASTBP_UNROLL
    for (int i = 0; i < R; ++i)
      FASTBP_UNROLL
      for (int j = 0; j < N; ++j) acc[i][j] = S::zero();
    // one chunk of L values of K at p; load(ptr) is unmasked, or masked for the K tail
    auto chunk = [&](int64_t p, auto load) {
      V b[N];
      FASTBP_UNROLL
      for (int j = 0; j < N; ++j) {
        b[j] = load(bt + j * ldbt + p);
        // (5+ columns: in a register too, else GCC folded the load into each of the R
        // multiply-adds that use it, and 3 rows x 8 columns ran on 27 loads per 24 of them;
        // 128x256x8 9.1 -> 6.6 us. With 1-4 columns pinning measured no better.)
        if constexpr (N >= 5) __asm__("" : "+v"(b[j]));
      }
      FASTBP_UNROLL
      for (int i = 0; i < R; ++i) {
        V a = load(ar[i] + p);
        // (kept in a register: left to itself GCC folded the load into each of the N
        // multiply-adds, loading the row N times, and the loop ran on its loads: 256x256x2 on
        // Zen 4, 6.6 -> 5.1 us)
        if constexpr (N > 1) __asm__("" : "+v"(a));
        FASTBP_UNROLL
        for (int j = 0; j < N; ++j) acc[i][j] = S::fmadd(a, b[j], acc[i][j]);
      }
    };
    const int64_t kv = K / L * L;
    for (int64_t p = 0; p < kv; p += L) chunk(p, [](const T* q) { return S::loadu(q); });
    if (kv < K) {  // lanes past K read 0
      const typename S::Mask mk = S::mask(K - kv);
      chunk(kv, [mk](const T* q) { return S::maskz_loadu(mk, q); });
    }
    narrow_dot_store<S, R, N>(acc, r, alpha, beta, C + i0 * ldc, ldc);
  }
}

// op(A) = A^T (A stored K x M, the columns of op(A) contiguous; e.g. dW = x^T dz): C(i, j) =
// sum over p of A[p, i] * op(B)(p, j), CH vectors of i at a time, one FMA chain per element.
template <class S, int CH, int N>
void narrow_axpy(int64_t M, int64_t K, typename S::T alpha, const typename S::T* A, int64_t lda,
                 Trans transb, const typename S::T* B, int64_t ldb, typename S::T beta,
                 typename S::T* C, int64_t ldc) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  for (int64_t i0 = 0; i0 < M; i0 += CH * L) {
    const int64_t m = M - i0 < CH * L ? M - i0 : CH * L;
    V acc[N][CH];
    FASTBP_UNROLL
    for (int j = 0; j < N; ++j)
      FASTBP_UNROLL
      for (int v = 0; v < CH; ++v) acc[j][v] = S::zero();
    const int64_t sb_p = transb == Trans::N ? ldb : 1, sb_j = transb == Trans::N ? 1 : ldb;
    // load(ap, v): vector v of the block's rows; unmasked for a whole block, masked for the
    // last rows (one loop body for both, instantiated twice)
    auto sweep = [&](auto load) {
      for (int64_t p = 0; p < K; ++p) {
        const T* ap = A + p * lda + i0;
        V a[CH];
        FASTBP_UNROLL
        for (int v = 0; v < CH; ++v) {
          a[v] = load(ap, v);
          if constexpr (N > 1) __asm__("" : "+v"(a[v]));  // (in a register: see narrow_dot)
        }
        FASTBP_UNROLL
        for (int j = 0; j < N; ++j) {
          const V b = S::set1(B[p * sb_p + j * sb_j]);
          FASTBP_UNROLL
          for (int v = 0; v < CH; ++v) acc[j][v] = S::fmadd(a[v], b, acc[j][v]);
        }
      }
    };
    if (m == CH * L) {
      sweep([](const T* ap, int v) { return S::loadu(ap + v * L); });
    } else {
      typename S::Mask mk[CH];
      FASTBP_UNROLL
      for (int v = 0; v < CH; ++v) mk[v] = S::mask(m - v * L);
      sweep([&mk](const T* ap, int v) { return S::maskz_loadu(mk[v], ap + v * L); });
    }
    T t[N][CH * L];  // (unaligned: ASan's fake stack does not keep 64-byte alignment)
    for (int j = 0; j < N; ++j)
      for (int v = 0; v < CH; ++v) S::storeu(t[j] + v * L, acc[j][v]);
    for (int64_t i = 0; i < m; ++i)
      for (int j = 0; j < N; ++j) narrow_store<S>(C + (i0 + i) * ldc + j, t[j][i], alpha, beta);
  }
}

// The axpy form for n columns, NF <= n <= NMAX: CH vectors of rows per block up to 4
// columns, one vector (L rows, n accumulators) beyond.
template <class S, int CH, int NF, int NMAX>
void narrow_axpy_n(int n, int64_t M, int64_t K, typename S::T alpha, const typename S::T* A,
                   int64_t lda, Trans transb, const typename S::T* B, int64_t ldb,
                   typename S::T beta, typename S::T* C, int64_t ldc) {
  if constexpr (NF == NMAX) {
    narrow_axpy<S, (NF <= 4 ? CH : 1), NF>(M, K, alpha, A, lda, transb, B, ldb, beta, C, ldc);
  } else {
    if (n == NF)
      narrow_axpy<S, (NF <= 4 ? CH : 1), NF>(M, K, alpha, A, lda, transb, B, ldb, beta, C, ldc);
    else
      narrow_axpy_n<S, CH, NF + 1, NMAX>(n, M, K, alpha, A, lda, transb, B, ldb, beta, C, ldc);
  }
}

// The most columns of x.W the narrow dot form takes on S (a config's narrow_max_n): 10 where a
// vector holds 16 elements (5-10 columns left 6 of its lanes or more unused on the small
// path); with 8 lanes or fewer such a C fills its vectors there, and 4.
template <class S>
constexpr int64_t narrow_dot_max_n() {
  return S::L >= 16 ? 10 : 4;
}
static_assert(kNarrowMaxN == 10, "kNarrowMaxN: the most narrow_dot_max_n gives");

// The dot form for 5-10 columns (narrow_dot_max_n: only where a vector holds 16 elements):
// ACC / N rows per block, at most what fits the 32 registers with N vectors of op(B) and one
// of A.
template <class S, int ACC>
void narrow_dot_wide(int64_t M, int64_t N, int64_t K, typename S::T alpha,
                     const typename S::T* A, int64_t lda, const typename S::T* bt,
                     int64_t ldbt, typename S::T beta, typename S::T* C, int64_t ldc) {
  if constexpr (S::L >= 16) {
    constexpr int R8 = ACC / 8 < 23 / 8 ? ACC / 8 : 23 / 8;  // (2: 2 x 8 + 8 + 1 registers)
    switch (N) {
      case 5: return narrow_dot<S, ACC / 5, 5>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
      case 6: return narrow_dot<S, ACC / 6, 6>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
      case 7: return narrow_dot<S, ACC / 7, 7>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
      case 8: return narrow_dot<S, R8, 8>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
      case 9: return narrow_dot<S, 2, 9>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);  // (28)
      default: return narrow_dot<S, 2, 10>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);  // (31)
    }
  } else {
    (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)bt, (void)ldbt,
        (void)beta, (void)C, (void)ldc;
    __builtin_trap();  // (unreachable: narrow_dot_max_n<S>() is 4)
  }
}

// NarrowFn (gemm_kernels.h): the dot form keeps up to ACC vector accumulators (R = ACC / N
// rows per block, at most 8: more rows per op(B) vector loaded), the axpy form (op(A) = A^T,
// up to NT columns) CH vectors.
template <class S, int ACC, int CH, int NT>
void narrow_simd(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K,
                 typename S::T alpha, const typename S::T* A, int64_t lda,
                 const typename S::T* B, int64_t ldb, typename S::T beta, typename S::T* C,
                 int64_t ldc, typename S::T* bbuf) {
  using T = typename S::T;
  if (transa == Trans::T)
    return narrow_axpy_n<S, CH, 1, NT>(int(N), M, K, alpha, A, lda, transb, B, ldb, beta, C,
                                       ldc);
  const T* bt = B;  // op(B) = B^T: B is stored N x K, its rows are the columns of op(B)
  int64_t ldbt = ldb;
  if (transb == Trans::N) {  // B is K x N: gather its N columns
    for (int64_t j = 0; j < N; ++j)
      for (int64_t p = 0; p < K; ++p) bbuf[j * K + p] = B[p * ldb + j];
    bt = bbuf;
    ldbt = K;
  }
  constexpr int R1 = ACC < 8 ? ACC : 8, R2 = ACC / 2 < 8 ? ACC / 2 : 8;
  switch (N) {
    case 1:  // (with hsum_lanes: L rows, one lane of the sums each)
      return narrow_dot<S, (has_hsum_lanes<S>::value ? S::L : R1), 1>(M, K, alpha, A, lda, bt,
                                                                      ldbt, beta, C, ldc);
    case 2: return narrow_dot<S, R2, 2>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
    case 3: return narrow_dot<S, ACC / 3, 3>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
    case 4: return narrow_dot<S, ACC / 4, 4>(M, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
    default: return narrow_dot_wide<S, ACC>(M, N, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
  }
}

// PeakFn (gemm_kernels.h) on S's vectors.
template <class S>
double fma_peak_simd(int64_t iters, typename S::T* sink) {
  using T = typename S::T;
  using V = typename S::V;
  V acc[kPeakChains];
  const V x = S::set1(T(0.999999)), y = S::set1(T(1e-6));
  FASTBP_UNROLL
  for (int i = 0; i < kPeakChains; ++i) acc[i] = S::set1(T(i));
  for (int64_t it = 0; it < iters; ++it) {
    FASTBP_UNROLL
    for (int i = 0; i < kPeakChains; ++i) acc[i] = S::fmadd(acc[i], x, y);
  }
  alignas(64) T lanes[S::L];
  T total = T(0);
  for (int i = 0; i < kPeakChains; ++i) {
    S::storeu(lanes, acc[i]);
    for (int l = 0; l < S::L; ++l) total += lanes[l];
  }
  *sink = total;
  return 2.0 * double(iters) * kPeakChains * S::L;
}

#undef FASTBP_UNROLL
#undef FASTBP_UNROLL_K

}  // namespace
}  // namespace gemm_detail
}  // namespace fastbp
