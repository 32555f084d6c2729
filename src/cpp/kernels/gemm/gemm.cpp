// GEMM driver and dispatch (BLIS-style five loops around a register-tiled micro-kernel).
//
//   C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C      (contract: gemm.h)
//
// Paths, chosen from the shape only (never from the thread count):
//   0. one row (M == 1): the vector-matrix product (kd.gemv); a C of at most kd.narrow_max_n
//      columns (kd.narrow_max_n_t for op(A) = A^T; K and M at least a vector): kd.narrow,
//      dot products along K (op(A) = A) or FMA chains along M (op(A) = A^T), rows split
//      across threads when the work is large;
//   1. small M*N*K, or a narrow C (N <= NR, K not huge): the unpacked, vectorised
//      small path (kd.small), rows of C split across threads when the work is large enough;
//   2. otherwise the packed engine, on C or on C^T = op(B)^T op(A)^T when that fits the
//      register tile much better (narrow N):
//        jc (NC columns) -> pc (KC slice of K; B block packed cooperatively, shared)
//        -> units (row block of <= MC rows x group of NR panels; the OpenMP work-sharing
//           loop; A is read in place when not transposed, else packed per thread)
//        -> jr (NR) -> ir (MR) -> micro-kernel (narrow-edge variants for the last panel).
// K is never split across threads and every C element always sees the same sequence of
// operations whatever tile or thread it lands in, so results are bitwise identical for any
// thread count.
// The kernel (tile, blocking, micro-kernel, packing, small path) is looked up by active_isa()
// in a table built once (gemm_kernel_for), so set_isa() at run time takes effect immediately.
#include "kernels/gemm/gemm.h"

#include <atomic>

#include <cstdlib>
#include <new>
#ifdef _MSC_VER
#include <malloc.h>
#endif

#include "core/cpu.h"
#include "core/platform.h"
#include "core/team.h"
#include "core/threading.h"
#include "kernels/gemm/gemm_kernels.h"

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastbp {
namespace gemm_detail {
namespace {

// MSVC has no std::aligned_alloc (and its memory must go back through _aligned_free).
#ifdef _MSC_VER
inline void* alloc64(size_t bytes) { return _aligned_malloc(bytes, 64); }
inline void free64(void* p) { _aligned_free(p); }
#else
inline void* alloc64(size_t bytes) { return std::aligned_alloc(64, bytes); }
inline void free64(void* p) { std::free(p); }
#endif

// 64-byte aligned scratch that only grows; one per thread (thread_local), so the hot path
// does no heap allocation once warm.
struct ScratchBuffer {
  void* ptr = nullptr;
  size_t cap = 0;
  ~ScratchBuffer() { free64(ptr); }
  void* get(size_t bytes) {
    if (bytes > cap) {
      size_t want = (bytes + 4095) & ~size_t(4095);
      void* p = alloc64(want);
      if (p == nullptr) return nullptr;
      free64(ptr);
      ptr = p;
      cap = want;
    }
    return ptr;
  }
};
thread_local ScratchBuffer tl_apack;
thread_local ScratchBuffer tl_bpack;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
inline Trans flip(Trans t) { return t == Trans::N ? Trans::T : Trans::N; }

// Work (M*N*K) below which no parallel region is opened. Measured on the 2-core Zen 4 box: an
// OpenMP region with 2 threads costs ~1.3 us (median; 1.0 us min), each barrier a bit less,
// and one core does ~1e11 flop/s; so splitting pays off from ~3e5. At 5e5 (~10 us of one
// thread's work) two threads gave 1.2-1.6x on the bench's MLP shapes of that size (gelu's
// 16x128x256 dW and 128x256x16 dx, 64x64x128 forward and backward; f32, min of alternated
// runs), where 1e6 had left them on one thread, below numpy.matmul's two.
constexpr double kParallelMinWork = 5.0e5;

// The threads a product opens its own region with: 1 below kParallelMinWork or inside a
// parallel region (a team's products split through their kTeam variants instead).
inline int product_threads(int64_t M, int64_t N, int64_t K) {
#ifdef FASTBP_HAVE_OPENMP
  if (double(M) * double(N) * double(K) >= kParallelMinWork && !omp_in_parallel())
    return get_num_threads();
#endif
  return 1;
}

// C = beta * C for K == 0 or alpha == 0 (beta == 0 writes zeros without reading C).
template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      for (int64_t j = 0; j < N; ++j) c[j] = T(0);
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

// Strided naive product on one block: the emergency path when a packing buffer cannot be
// allocated (kernels never throw). C(i, j) at C[i*rs_c + j*cs_c].
template <typename T>
void block_naive(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t rs_c, int64_t cs_c) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T s = T(0);
      for (int64_t p = 0; p < k; ++p)
        s += (ta == Trans::N ? A[i * lda + p] : A[p * lda + i]) *
             (tb == Trans::N ? B[p * ldb + j] : B[j * ldb + p]);
      T& c = C[i * rs_c + j * cs_c];
      c = (beta == T(0)) ? alpha * s : alpha * s + beta * c;
    }
}

// Fraction of the computed register tiles that is useful for an M x N output (rows come in
// steps of mr, columns in steps of one SIMD vector thanks to the narrow-edge kernels).
inline double tile_efficiency(int64_t M, int64_t N, int64_t mr, int64_t nr_step) {
  return (double(M) / double(round_up(M, mr))) * (double(N) / double(round_up(N, nr_step)));
}

// Rows of A that lie a multiple of this many bytes apart share L1 sets (4 KiB per way of an
// 8-way 32 KiB L1d, and of a 12-way 48 KiB one): MR such row streams plus the B panel exceed
// the associativity, so such an A is packed even when it could be read in place.
constexpr int64_t kL1WayBytes = 4096;

// Whether the packed engine packs op(A) (always when transposed), else reads it in place.
template <typename T>
inline bool packs_a(Trans ta, int64_t lda) {
  return ta == Trans::T || (lda * int64_t(sizeof(T))) % kL1WayBytes == 0;
}

// How the packed engine splits one product over threads (see gemm_packed).
struct PackedPlan {
  int nthreads;
  int64_t nc, mc, nblk, ngroups, nunits;
};

template <typename T>
PackedPlan plan_packed(const GemmKernel<T>& kd, int64_t M, int64_t N, int64_t K) {
  PackedPlan pl;
  pl.nc = imin(kd.blk.nc, round_up(N, kd.nr));  // whole panels (blk.nc is a multiple of NR)
  pl.nthreads = product_threads(M, N, K);
  // Work units are (row block ib, panel group g) pairs, handed out by a static schedule.
  // Enough row blocks: split M (blocks of at most MC rows, a multiple of nthreads of them).
  // Too few rows (M <= MC): split the NR panels of each B block into nthreads groups instead;
  // then every thread packs the (small) A block itself and reads only the B panels it packed.
  pl.nblk = ceil_div(M, kd.blk.mc);
  pl.ngroups = 1;
  if (pl.nthreads > 1) {
    if (pl.nblk >= pl.nthreads) {
      pl.nblk = round_up(pl.nblk, pl.nthreads);
    } else {
      pl.ngroups = pl.nthreads;
    }
  }
  // Row block ib is rows [block_start(ib), block_start(ib + 1)): near-equal blocks cut on
  // multiples of MR, so the threads' shares differ by at most MR rows. (Equal blocks of a
  // rounded-up height left the last one short: 1024 rows on 2 threads were 528 + 496, and the
  // square n = 1024 product ran at 83% of the 2-core peak.) pl.mc bounds the block height.
  pl.mc = round_up(ceil_div(M, pl.nblk), kd.mr) + kd.mr;
  pl.nunits = pl.nblk * pl.ngroups;
  if (pl.nthreads > pl.nunits) pl.nthreads = int(pl.nunits);
  return pl;
}

// The first row of row block ib of a packed plan (block_start(pl, M, mr, pl.nblk) == M).
inline int64_t block_start(const PackedPlan& pl, int64_t M, int64_t mr, int64_t ib) {
  return ib >= pl.nblk ? M : ib * M / pl.nblk / mr * mr;
}

// The packed engine. C element (i, j) lives at C[i*rs_c + j*cs_c] (cs_c != 1 when the
// caller computes C^T = op(B)^T op(A)^T to fit a narrow N onto the wide register tile).
template <typename T>
bool gemm_packed(const GemmKernel<T>& kd, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K,
                 T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                 int64_t rs_c, int64_t cs_c) {
  const int64_t NR = kd.nr, KC = kd.blk.kc, kc_max = imin(KC, K);
  const PackedPlan pl = plan_packed(kd, M, N, K);
  // op(A) = A is read in place (MR row streams) unless its rows alias in L1; a transposed A
  // is always packed (per thread, per row block).
  const bool a_packed = packs_a<T>(ta, lda);
  T* bpack = static_cast<T*>(tl_bpack.get(size_t(kc_max * pl.nc) * sizeof(T)));
  if (bpack == nullptr) return false;

#ifdef FASTBP_HAVE_OPENMP
#pragma omp parallel num_threads(pl.nthreads) if (pl.nthreads > 1)
#endif
  {
    T* apack = static_cast<T*>(tl_apack.get(size_t(kc_max * pl.mc) * sizeof(T)));
    for (int64_t jc = 0; jc < N; jc += pl.nc) {
      const int64_t nc = imin(pl.nc, N - jc);
      const int64_t npanels = ceil_div(nc, NR);
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = imin(KC, K - pc);
        const T beta_eff = (pc == 0) ? beta : T(1);
        // Pack the B block cooperatively, one NR panel per iteration.
#ifdef FASTBP_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t jp = 0; jp < npanels; ++jp) {
          const int64_t j = jc + jp * NR;
          const T* bsrc = (tb == Trans::N) ? B + pc * ldb + j : B + j * ldb + pc;
          kd.pack_b(tb, kc, imin(NR, N - j), bsrc, ldb, bpack + jp * NR * kc);
        }
        // (implicit barrier: the B block is complete)
        int64_t packed_ib = -1;
#ifdef FASTBP_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t u = 0; u < pl.nunits; ++u) {
          const int64_t ib = u / pl.ngroups, g = u % pl.ngroups;
          const int64_t ic = block_start(pl, M, kd.mr, ib);
          const int64_t mcur = block_start(pl, M, kd.mr, ib + 1) - ic;
          const int64_t p0 = g * npanels / pl.ngroups, p1 = (g + 1) * npanels / pl.ngroups;
          const int64_t j0 = p0 * NR, j1 = imin(p1 * NR, nc);
          if (j0 >= j1 || mcur <= 0) continue;
          const T* asrc = (ta == Trans::N) ? A + ic * lda + pc : A + pc * lda + ic;
          T* cblk = C + ic * rs_c + jc * cs_c;
          if (apack == nullptr) {
            const T* bsrc = (tb == Trans::N) ? B + pc * ldb + jc + j0 : B + (jc + j0) * ldb + pc;
            block_naive(ta, tb, mcur, j1 - j0, kc, alpha, asrc, lda, bsrc, ldb, beta_eff,
                        cblk + j0 * cs_c, rs_c, cs_c);
            continue;
          }
          if (a_packed && packed_ib != ib) {
            kd.pack_a(ta, mcur, kc, asrc, lda, apack);
            packed_ib = ib;
          }
          for (int64_t jr = j0; jr < j1; jr += NR) {
            const int64_t n = imin(NR, nc - jr);
            kd.macro[(n - 1) / kd.nr_step](kc, mcur, n, a_packed ? apack : asrc, lda, a_packed,
                                           bpack + (jr / NR) * NR * kc, cblk + jr * cs_c, rs_c,
                                           cs_c, alpha, beta_eff);
          }
        }
        // (implicit barrier: nobody still reads the B block when it is repacked)
      }
    }
  }
  return true;
}

// Rows [r0, r1) of C through the small path.
template <typename T>
void small_rows(const GemmKernel<T>& kd, int64_t r0, int64_t r1, Trans ta, Trans tb, int64_t N,
                int64_t K, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta,
                T* C, int64_t ldc) {
  if (r1 > r0)
    kd.small(ta, tb, r1 - r0, N, K, alpha, ta == Trans::N ? A + r0 * lda : A + r0, lda, B, ldb,
             beta, C + r0 * ldc, ldc);
}

// A team splits the small path's rows on multiples of this, not of the register block height:
// every row is computed alone, and the halves come out even (64 rows: 32/32 instead of 30/34
// on 6-row blocks; tanh 32-64x5-1 at batch 64 on 2 threads, Zen 4: 70.0 -> 69.1 us per step).
constexpr int64_t kSmallTeamRowAlign = 2;

// The small path on row ranges of C: in parallel (on multiples of its register block height)
// when the work is large enough, or this thread's share of a team's (core/team.h).
template <typename T, bool kTeam>
void small_rows_parallel(const GemmKernel<T>& kd, const Team* team, Trans ta, Trans tb,
                         int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                         const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (kTeam) {
    int64_t r0, r1;
    team->rows(M, kSmallTeamRowAlign, r0, r1);
    small_rows(kd, r0, r1, ta, tb, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  int nthreads = product_threads(M, N, K);
  if (nthreads > M) nthreads = int(M);
  if (nthreads <= 1) {
    kd.small(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#ifdef FASTBP_HAVE_OPENMP
#pragma omp parallel num_threads(nthreads)
  {
    int64_t r0, r1;
    Team{omp_get_thread_num(), omp_get_num_threads()}.rows(M, kd.small_mr, r0, r1);
    small_rows(kd, r0, r1, ta, tb, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
#endif
}

// Rows [r0, r1) of C through the narrow path, with this thread's scratch; without scratch
// (out of memory) the naive loop, when `naive_fallback`, else false and nothing written.
template <typename T>
bool narrow_rows(const GemmKernel<T>& kd, int64_t r0, int64_t r1, bool naive_fallback,
                 Trans ta, Trans tb, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  T* buf = static_cast<T*>(tl_apack.get(size_t(kNarrowMaxN * K + 16) * sizeof(T)));
  if (r1 <= r0) return buf != nullptr;
  const T* a = ta == Trans::N ? A + r0 * lda : A + r0;
  if (buf != nullptr)
    kd.narrow(ta, tb, r1 - r0, N, K, alpha, a, lda, B, ldb, beta, C + r0 * ldc, ldc, buf);
  else if (naive_fallback)
    gemm_naive<T>(ta, tb, r1 - r0, N, K, alpha, a, lda, B, ldb, beta, C + r0 * ldc, ldc);
  return buf != nullptr || naive_fallback;
}

// The most columns of C the narrow path takes for this shape: 9 and 10 columns of x.W only
// while op(B)'s columns fit in L1 and there are rows enough to pay for gathering them (else
// the small path, which fills 10 of a vector's 16 lanes, was faster: 256x2048x10 146 us
// against 161-188, 32x128x10 1.8-2.6 against 2.2; Zen 4).
template <typename T>
int64_t narrow_bound(const GemmKernel<T>& kd, Trans transa, int64_t M, int64_t K) {
  if (transa == Trans::T) return kd.narrow_max_n_t;
  const bool short_k = K * int64_t(sizeof(T)) * 10 <= 32768 && M >= 64;
  return short_k ? kd.narrow_max_n : std::min<int64_t>(kd.narrow_max_n, 8);
}

// Row ranges of the narrow path on whole blocks of either of its forms.
constexpr int64_t kNarrowRowAlign = 64;

// The narrow path on row ranges of C, in parallel when the work is large enough, or this
// thread's share of a team's; each thread gathers op(B)'s columns into its own scratch.
// False: no scratch memory, nothing written (in a team a thread without scratch computes its
// rows with the naive loop instead: the team has already chosen this path).
template <typename T, bool kTeam>
bool narrow_rows_parallel(const GemmKernel<T>& kd, const Team* team, Trans ta, Trans tb,
                          int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (kTeam) {
    int64_t r0, r1;
    team->rows(M, kNarrowRowAlign, r0, r1);
    return narrow_rows(kd, r0, r1, true, ta, tb, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  int nthreads = product_threads(M, N, K);
  if (nthreads > M / kNarrowRowAlign) nthreads = int(M / kNarrowRowAlign);
  if (nthreads <= 1)
    return narrow_rows(kd, 0, M, false, ta, tb, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  std::atomic<bool> failed{false};
#ifdef FASTBP_HAVE_OPENMP
#pragma omp parallel num_threads(nthreads)
  {
    int64_t r0, r1;
    Team{omp_get_thread_num(), omp_get_num_threads()}.rows(M, kNarrowRowAlign, r0, r1);
    if (tl_apack.get(size_t(kNarrowMaxN * K + 16) * sizeof(T)) == nullptr) failed.store(true);
#pragma omp barrier
    // every thread has its scratch before any writes C (else the caller's fallback would
    // apply beta twice to rows already done)
    if (!failed.load())
      narrow_rows(kd, r0, r1, false, ta, tb, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
#endif
  return !failed.load();
}

// This thread's share of the packed engine in a team, each thread packing what it reads: its
// own NR panels of C's columns (all of op(A) packed by every thread, its share of op(B)), or
// its rows on MR blocks (its share of op(A), all of op(B)) when there are too few panels or
// that packs less per thread -- e.g. a first layer's dW = x^T dz (784 x 256 from 128 rows): by
// columns every thread packed all of x^T. The packed engine itself runs serially inside the
// team's region. Out of packing memory: the naive loop on this thread's block.
template <typename T>
void packed_team_part(const GemmKernel<T>& kd, const Team& team, Trans ta, Trans tb, int64_t M,
                      int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                      int64_t ldb, T beta, T* C, int64_t rs_c, int64_t cs_c) {
  const double a_pack = packs_a<T>(ta, lda) ? double(M) * double(K) : 0.0;
  const double b_pack = double(K) * double(N), nt = double(team.nt);
  const bool by_cols = ceil_div(N, kd.nr) >= team.nt &&
                       (M < team.nt * kd.mr || a_pack + b_pack / nt <= a_pack / nt + b_pack);
  int64_t b, e;
  if (by_cols) {
    team.rows(N, kd.nr, b, e);
    B = tb == Trans::N ? B + b : B + b * ldb;
    C += b * cs_c;
    N = e - b;
  } else {
    team.rows(M, kd.mr, b, e);
    A = ta == Trans::N ? A + b * lda : A + b;
    C += b * rs_c;
    M = e - b;
  }
  if (M <= 0 || N <= 0) return;
  if (!gemm_packed<T>(kd, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, rs_c, cs_c))
    block_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, rs_c, cs_c);
}

// Below this work (M*N*K) a team leaves a product to its first thread: splitting it would
// cost more in kernel calls and imbalance than it saves.
constexpr double kTeamMinWork = 16384.0;

// The path of a product of this shape (gemm.h GemmPath), the one decision gemm_dispatch and
// gemm_path take. In a team (kTeam) the tiny path is not taken (it is one thread's). `from`:
// the first path considered -- gemm_dispatch asks again from the next one when the gemv or
// narrow path has no scratch memory.
template <typename T, bool kTeam>
FASTBP_ALWAYS_INLINE GemmPath choose_path(const GemmKernel<T>& kd, Trans transa, Trans transb,
                                          int64_t M, int64_t N, int64_t K,
                                          GemmPath from = GemmPath::gemv) {
  if (M <= 0 || N <= 0 || K <= 0) return GemmPath::trivial;
  // One row (a batch of one): a vector-matrix product, no packing, one thread (memory bound).
  if (from <= GemmPath::gemv && M == 1) return GemmPath::gemv;
  // A narrow C (an output layer of 1-10 units, its dW): full vectors along K or M instead of
  // a vector per row holding N values.
  if (from <= GemmPath::narrow && N <= narrow_bound(kd, transa, M, K) && kd.narrow != nullptr &&
      K >= kd.nr_step && M >= kd.nr_step)
    return GemmPath::narrow;
  const bool b_fits = transb == Trans::N || K * N <= small_trans_b_max<T>();
  if (double(M) * double(N) * double(K) <= double(kd.small_max_work) && b_fits) {
    if (!kTeam && kd.tiny != nullptr && M <= kTinyMaxM && N <= kd.nr_step && K <= kTinyMaxK)
      return GemmPath::tiny;
    return GemmPath::small;
  }
  // A narrow C (N <= NR, e.g. an output layer with 10 units): the unpacked small path streams
  // op(A) once with at most NR/width masked vectors per row and no packing at all; rows are
  // split across threads (each row is computed the same way whatever the split).
  if (N <= kd.nr && K <= kd.blk.narrow_max_k && b_fits) return GemmPath::small;
  // A narrow C (N below NR) wastes much of the register tile; computing
  // C^T = op(B)^T op(A)^T puts the long M side on the wide NR side instead.
  return tile_efficiency(N, M, kd.mr, kd.nr_step) > 1.25 * tile_efficiency(M, N, kd.mr, kd.nr_step)
             ? GemmPath::packed_flipped
             : GemmPath::packed;
}

// kTeam: `team` is the calling thread's team, and this thread computes its share of C only
// (the caller synchronises the team afterwards); else team is null (a separate instantiation:
// the one-thread path carries no team code).
template <typename T, bool kTeam>
FASTBP_ALWAYS_INLINE void gemm_dispatch(const Team* team, Trans transa, Trans transb,
                                        int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                                        int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                                        int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const GemmKernel<T>& kd = gemm_kernel_for<T>(active_isa());
  GemmPath path = alpha == T(0) ? GemmPath::trivial
                                : choose_path<T, kTeam>(kd, transa, transb, M, N, K);
  if (path == GemmPath::gemv) {
    T* abuf = static_cast<T*>(tl_apack.get(size_t((K > N ? K : N) + 16) * sizeof(T)));
    if (abuf != nullptr) {
      kd.gemv(transa, transb, N, K, alpha, A, lda, B, ldb, beta, C, abuf);
      return;
    }
    path = choose_path<T, kTeam>(kd, transa, transb, M, N, K, GemmPath::narrow);
  }
  if (path == GemmPath::narrow) {
    if (narrow_rows_parallel<T, kTeam>(kd, team, transa, transb, M, N, K, alpha, A, lda, B, ldb,
                                       beta, C, ldc))
      return;  // (false: no scratch memory, nothing written)
    path = choose_path<T, kTeam>(kd, transa, transb, M, N, K, GemmPath::tiny);
  }
  switch (path) {
    case GemmPath::trivial:
      scale_c(M, N, beta, C, ldc);
      return;
    case GemmPath::tiny:
      kd.tiny(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);  // (one thread)
      return;
    case GemmPath::small:
      small_rows_parallel<T, kTeam>(kd, team, transa, transb, M, N, K, alpha, A, lda, B, ldb,
                                    beta, C, ldc);
      return;
    default:
      break;
  }
  const bool flipped = path == GemmPath::packed_flipped;
  if constexpr (kTeam) {
    if (flipped)
      packed_team_part<T>(kd, *team, flip(transb), flip(transa), N, M, K, alpha, B, ldb, A, lda,
                          beta, C, 1, ldc);
    else
      packed_team_part<T>(kd, *team, transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C,
                          ldc, 1);
    return;
  }
  const bool ok =
      flipped ? gemm_packed<T>(kd, flip(transb), flip(transa), N, M, K, alpha, B, ldb, A, lda,
                               beta, C, 1, ldc)
              : gemm_packed<T>(kd, transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1);
  // Out of memory for the packing buffers (kernels must not throw): the naive loop needs none.
  if (!ok) gemm_naive<T>(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace
}  // namespace gemm_detail

template <typename T>
void gemm(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const Team* team = current_team();
  if (team == nullptr) {
    gemm_detail::gemm_dispatch<T, false>(nullptr, transa, transb, M, N, K, alpha, A, lda, B, ldb,
                                         beta, C, ldc);
    return;
  }
  // In a team (core/team.h): every thread computes its share (a small product: the first
  // thread all of it), and C is complete for all when they return.
  if (double(M) * double(N) * double(K) >= gemm_detail::kTeamMinWork && M > 1)
    gemm_detail::gemm_dispatch<T, true>(team, transa, transb, M, N, K, alpha, A, lda, B, ldb,
                                        beta, C, ldc);
  else if (team->lead())
    gemm_detail::gemm_dispatch<T, false>(nullptr, transa, transb, M, N, K, alpha, A, lda, B, ldb,
                                         beta, C, ldc);
  team->sync();
}

// The path gemm_dispatch takes on one thread (choose_path: the same decision).
template <typename T>
GemmPath gemm_path(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, Isa isa) {
  return gemm_detail::choose_path<T, false>(gemm_detail::gemm_kernel_for<T>(isa), transa,
                                            transb, M, N, K);
}
template <typename T>
GemmPath gemm_path(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K) {
  return gemm_path<T>(transa, transb, M, N, K, active_isa());
}
template GemmPath gemm_path<float>(Trans, Trans, int64_t, int64_t, int64_t, Isa);
template GemmPath gemm_path<double>(Trans, Trans, int64_t, int64_t, int64_t, Isa);

template <typename T>
GemmFn<T> tiny_gemm_kernel(Isa isa) {
  return gemm_detail::gemm_kernel_for<T>(isa).tiny;
}
template GemmFn<float> tiny_gemm_kernel<float>(Isa);
template GemmFn<double> tiny_gemm_kernel<double>(Isa);

template GemmPath gemm_path<float>(Trans, Trans, int64_t, int64_t, int64_t);
template GemmPath gemm_path<double>(Trans, Trans, int64_t, int64_t, int64_t);

template void gemm<float>(Trans, Trans, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(Trans, Trans, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace fastbp
