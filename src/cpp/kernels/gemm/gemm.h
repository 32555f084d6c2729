// GEMM: the one contract every matrix product in fastbp goes through.
//
//   C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C
//
// Row-major storage. op(A) = A if transa == Trans::N (A stored M x K, leading dim lda),
// A^T if Trans::T (A stored K x M). Same for B. beta == 0 overwrites C (C may hold garbage,
// even NaN); beta == 1 accumulates. Kernels never allocate on the heap per call beyond the
// packing buffers owned by the engine, never throw, never print.
#pragma once
#include <cstdint>

#include "core/cpu.h"

namespace fastbp {

enum class Trans : int { N = 0, T = 1 };

template <typename T>
void gemm(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// The path gemm() takes for a product of this shape on one thread (gemm.cpp choose_path, the
// decision gemm_dispatch takes, in the enum's order: a path whose scratch memory cannot be had
// falls to the next one that fits): a caller that forms a product by column or row blocks of its own (nn/network_split.cpp)
// gets the whole product's bits only where the blocks take the whole product's path.
// (narrow: the narrow-C path, whose rows are blocks of 64; small: the unpacked path, every
// element of C formed whole by one chain along K, whatever block of C is asked.)
enum class GemmPath : int { trivial, gemv, narrow, tiny, small, packed, packed_flipped };
template <typename T>
GemmPath gemm_path(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K);
// The same under instruction set `isa` (a caller that keeps its decision per ISA).
template <typename T>
GemmPath gemm_path(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, Isa isa);

// The tiny path's kernel of instruction set `isa`, or null (the generic set has none): one
// thread's C = alpha op(A) op(B) + beta C, with gemm()'s bits for every shape
// gemm_path(..., isa) sends to GemmPath::tiny, and only for those -- a caller that checked
// the paths of its products once calls it directly (nn/network_chain.cpp), without gemm()'s
// dispatch per product. (Named by its ISA, not the active one: a set_isa() in another thread
// cannot hand a caller a kernel its shapes were not checked for.)
template <typename T>
using GemmFn = void (*)(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha,
                        const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                        int64_t ldc);
template <typename T>
GemmFn<T> tiny_gemm_kernel(Isa isa);

// Naive triple loop: the reference and the fallback. Same contract as gemm().
template <typename T>
void gemm_naive(Trans transa, Trans transb, int64_t M, int64_t N, int64_t K, T alpha,
                const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace fastbp
