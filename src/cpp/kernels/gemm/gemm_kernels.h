// Internal interface between the GEMM driver (gemm.cpp) and the per-ISA kernel files.
//
// Every ISA/dtype provides one GemmKernel table: the register tile (MR x NR), the cache
// blocking (MC, KC, NC), the micro-kernel, the packing routines and the small direct path.
// The driver (the only place with OpenMP) picks the table from active_isa() on each call.
//
// Packed formats (zero padded to whole panels):
//   A block (mc x kc): ceil(mc/MR) panels, panel r holds a[p*MR + i] = op(A)(r*MR+i, p)
//   B block (kc x nc): ceil(nc/NR) panels, panel s holds b[p*NR + j] = op(B)(p, s*NR+j)
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace fastbp {
namespace gemm_detail {

// C tile (m x n, m <= MR, n <= NR) at c, element (i, j) at c[i*rs_c + j*cs_c]:
//   C = alpha * (A_tile . b_panel) + beta * C    (beta == 0: C is not read)
// A_tile(i, p) = a[i*rs_a + p*cs_a] for i < m: either a packed panel (rs_a = 1, cs_a = MR) or
// op(A) read in place when A is not transposed (rs_a = lda, cs_a = 1); rows i >= m are never
// read (the kernel recomputes row m-1 there and does not store it). The b panel is packed and
// zero padded; only the m x n part of the tile is stored.
template <typename T>
using UKernelFn = void (*)(int64_t k, const T* a, int64_t rs_a, int64_t cs_a, const T* b, T* c,
                           int64_t rs_c, int64_t cs_c, T alpha, T beta, int64_t m, int64_t n);

// Pack op(A)(0:mc, 0:kc) where `a` points at op(A)(0, 0) (trans says how it is stored).
template <typename T>
using PackAFn = void (*)(Trans trans, int64_t mc, int64_t kc, const T* a, int64_t lda, T* out);
// Pack op(B)(0:kc, 0:nc) where `b` points at op(B)(0, 0).
template <typename T>
using PackBFn = void (*)(Trans trans, int64_t kc, int64_t nc, const T* b, int64_t ldb, T* out);
// Direct (unpacked) product for small shapes; same contract as gemm().
template <typename T>
using SmallFn = void (*)(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha,
                         const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                         int64_t ldc);

template <typename T>
struct GemmKernel {
  const char* name;
  int64_t mr, nr;       // register tile
  int64_t mc, kc, nc;   // cache blocking (mc multiple of mr, nc multiple of nr)
  UKernelFn<T> ukernel;
  // Narrow last panels: nr_step = SIMD width; edge[v-1] computes only the first v vectors of
  // a panel (for n <= v*nr_step), so a ragged N edge wastes at most one vector, not a tile.
  int64_t nr_step;
  UKernelFn<T> edge[8];
  PackAFn<T> pack_a;
  PackBFn<T> pack_b;
  SmallFn<T> small;
  int64_t small_max_work;  // use `small` when M*N*K <= this (and the shape allows it)
};

// The small path copies a transposed B (K x N) to a stack buffer of this many bytes at most.
constexpr int64_t kSmallTransBBytes = 32768;
template <typename T>
constexpr int64_t small_trans_b_max() { return kSmallTransBBytes / int64_t(sizeof(T)); }

// One getter per ISA and dtype; the x86 ones exist only in x86 builds.
const GemmKernel<float>* kernel_generic_f32();
const GemmKernel<double>* kernel_generic_f64();
#if defined(FASTBP_HAVE_X86_KERNELS)
const GemmKernel<float>* kernel_avx2_f32();
const GemmKernel<double>* kernel_avx2_f64();
const GemmKernel<float>* kernel_avx512_f32();
const GemmKernel<double>* kernel_avx512_f64();
#endif

}  // namespace gemm_detail
}  // namespace fastbp
