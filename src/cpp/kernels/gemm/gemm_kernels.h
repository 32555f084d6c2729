// Internal interface between the GEMM driver (gemm.cpp) and the per-ISA kernel files.
//
// Every ISA x dtype provides one GemmConfig table (in its ukernel_<isa>_<dtype>_<tile>.cpp):
// the register tile (MR x NR), the micro-kernel (inlined into its column loop, MacroFn) and
// its narrow-edge variants, the packing
// routines, the small direct path, and a GemmCacheModel saying how its cache blocking
// (MC, KC, NC) follows the cache sizes. The blocking is derived once per process from the
// cache sizes the OS reports (gemm_blocking.cpp); the resulting GemmKernel (config + blocking)
// is looked up once per ISA (gemm_kernel_for) and the driver only indexes it.
//
// Packed formats (zero padded to whole panels):
//   A block (mc x kc): ceil(mc/MR) panels, panel r holds a[p*MR + i] = op(A)(r*MR+i, p)
//   B block (kc x nc): ceil(nc/NR) panels, panel s holds b[p*NR + j] = op(B)(p, s*NR+j)
#pragma once
#include <cstdint>

#include "core/cpu.h"
#include "kernels/gemm/gemm.h"

namespace fastbp {
namespace gemm_detail {

// The micro-kernel contract. C tile (m x n, m <= MR, n <= NR) at c, element (i, j) at c[i*rs_c + j*cs_c]:
//   C = alpha * (A_tile . b_panel) + beta * C    (beta == 0: C is not read)
// A_tile(i, p) = a[i*rs_a + p*cs_a] for i < m: either a packed panel (rs_a = 1, cs_a = MR) or
// op(A) read in place when A is not transposed (rs_a = lda, cs_a = 1); rows i >= m are never
// read (the kernel recomputes row m-1 there and does not store it). The b panel is packed and
// zero padded; only the m x n part of the tile is stored.
template <typename T>
using UKernelFn = void (*)(int64_t k, const T* a, int64_t rs_a, int64_t cs_a, const T* b, T* c,
                           int64_t rs_c, int64_t cs_c, T alpha, T beta, int64_t m, int64_t n);

// Column of register tiles over one packed B panel: C(0:mc, 0:n) (n <= NR, element (i, j) at
// c[i*rs_c + j*cs_c]) = alpha * op(A)(0:mc, 0:kc) . b_panel + beta * C, MR rows at a time.
// op(A) is a packed A block (a_packed: panel r at a + r*MR*kc) or A read in place (row i at
// a + i*lda). Each tile is computed exactly as UKernelFn computes it.
template <typename T>
using MacroFn = void (*)(int64_t kc, int64_t mc, int64_t n, const T* a, int64_t lda,
                         bool a_packed, const T* b, T* c, int64_t rs_c, int64_t cs_c, T alpha,
                         T beta);

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

// A narrow C (N <= the config's narrow_max_n columns: an output layer of 1-4 units, 1-10
// where a vector holds 16 elements, 9-10 for short K and 64+ rows; or with op(A) = A^T up to its
// narrow_max_n_t columns: the dW of an output layer of up to 8-16 units): C = alpha * op(A)
// op(B) + beta * C with the same contract as gemm(); `bbuf` holds kNarrowMaxN * K elements
// (op(B) transposed, when it must be). Every C element is computed the same way whatever M
// is, so a split of the rows over threads changes nothing.
constexpr int64_t kNarrowMaxN = 10;  // (the most any config's narrow_max_n allows)
template <typename T>
using NarrowFn = void (*)(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                          int64_t ldc, T* bbuf);

// One row of C (M == 1, a vector-matrix product): C(1 x N) = alpha * op(A)(1 x K) . op(B)
// + beta * C, where op(A)(0, p) = A[p] (transa N) or A[p*lda] (transa T). abuf: scratch for
// max(K, N) + 16 elements (the gathered op(A) row, or running sums).
template <typename T>
using GemvFn = void (*)(Trans transa, Trans transb, int64_t N, int64_t K, T alpha, const T* A,
                        int64_t lda, const T* B, int64_t ldb, T beta, T* C, T* abuf);

// FMA peak probe: `iters` rounds of independent fused multiply-add chains over this ISA's
// widest vectors, as many chains as needed to cover the FMA latency of current cores. Writes a
// value that depends on every chain to *sink (so the work cannot be elided) and returns the
// number of floating-point operations done (2 per lane per FMA).
template <typename T>
using PeakFn = double (*)(int64_t iters, T* sink);
constexpr int kPeakChains = 12;

// Cache sizes in bytes (per core for L1d and L2; the L3 size as the OS reports it).
struct CacheSizes {
  int64_t l1d, l2, l3;
  bool from_os;  // false: the OS said nothing and the fallback sizes are in use
};
// Read once from the OS (Linux sysconf / sysfs, macOS sysctl, Windows processor info); any
// level the OS does not report gets kFallbackCaches' value.
const CacheSizes& cache_sizes();
constexpr CacheSizes kFallbackCaches = {32 * 1024, 512 * 1024, 8 * 1024 * 1024, false};

// How a tile's cache blocking follows the caches (BLIS's analytical model):
//   KC: one packed B micro-panel (KC x NR) fills `kc_share` of cache level `kc_level` (1 or 2),
//       rounded down to a multiple of 8 and clamped to [kc_min, kc_max];
//   MC: the A block (MC x KC) fills `mc_share` of L2, rounded down to a multiple of MR;
//   NC: the B block (KC x NC) fills `nc_share` of L3, rounded down to a multiple of NR and
//       clamped to [NR, nc_max].
// The shares are the values measured best on the tile's tuning machine (named in each table).
struct GemmCacheModel {
  int kc_level;
  double kc_share;
  int64_t kc_min, kc_max;
  double mc_share;
  double nc_share;
  int64_t nc_max;
};

// Everything fixed at compile time for one ISA x dtype.
template <typename T>
struct GemmConfig {
  const char* name;
  int64_t mr, nr;   // register tile
  // Narrow last panels: nr_step = SIMD width; macro[v-1] computes only the first v vectors of
  // a panel (for n <= v*nr_step), so a ragged N edge wastes at most one vector, not a tile;
  // macro[nr/nr_step - 1] is the full tile.
  int64_t nr_step;
  GemmCacheModel cache;
  MacroFn<T> macro[8];
  PackAFn<T> pack_a;
  PackBFn<T> pack_b;
  SmallFn<T> small;
  // `small` for tiny shapes on one thread (M <= kTinyMaxM, N <= nr_step, K <= kTinyMaxK), the
  // same bits without its blocking (null: `small` takes them)
  SmallFn<T> tiny;
  int64_t small_mr;        // rows per register block of `small` (a region's row splits land on
                           // multiples)
  int64_t small_max_work;  // use `small` when M*N*K <= this (and the shape allows it)
  GemvFn<T> gemv;  // M == 1
  NarrowFn<T> narrow;      // N <= narrow_max_n (null: the small path takes it)
  int64_t narrow_max_n;    // (<= kNarrowMaxN)
  int64_t narrow_max_n_t;  // ... and N up to this when op(A) = A^T
  PeakFn<T> peak;
};

// Blocking derived from a GemmCacheModel and the cache sizes.
struct GemmBlocking {
  int64_t mc, kc, nc;
  // A narrow C (N <= NR) takes the unpacked small path while K <= this: its op(B) strip
  // (K x NR) then fills at most half of L2.
  int64_t narrow_max_k;
};
GemmBlocking derive_blocking(const GemmCacheModel& model, int64_t mr, int64_t nr,
                             int64_t elem_bytes, const CacheSizes& caches);

// What the driver uses: the config plus the blocking for this machine's caches.
template <typename T>
struct GemmKernel : GemmConfig<T> {
  GemmBlocking blk;
};

// The kernel for `isa` (an ISA this build lacks gets the generic kernel); built on first use,
// then a table lookup.
template <typename T>
const GemmKernel<T>& gemm_kernel_for(Isa isa);

// The bounds of the tiny path (GemmConfig::tiny).
constexpr int64_t kTinyMaxM = 16;
constexpr int64_t kTinyMaxK = 16;

// The small path copies a transposed B (K x N) to a stack buffer of this many bytes at most.
constexpr int64_t kSmallTransBBytes = 32768;
template <typename T>
constexpr int64_t small_trans_b_max() { return kSmallTransBBytes / int64_t(sizeof(T)); }

// One config getter per ISA and dtype; the x86 ones exist only in x86 builds.
const GemmConfig<float>* config_generic_f32();
const GemmConfig<double>* config_generic_f64();
#if defined(FASTBP_HAVE_X86_KERNELS)
const GemmConfig<float>* config_avx2_f32();
const GemmConfig<double>* config_avx2_f64();
const GemmConfig<float>* config_avx512_f32();
const GemmConfig<double>* config_avx512_f64();
#endif

}  // namespace gemm_detail
}  // namespace fastbp
