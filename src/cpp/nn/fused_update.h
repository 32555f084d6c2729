// The fused optimizer update of small batches (docs/ENGINE.md "Fused update").
//
// For a batch of a few rows a dense weight's gradient x^T dz is a rank-n update, and a
// separate optimizer pass after backward streams the parameters, the gradient and every state
// array once more: on the batch-1 256-512-10 net (137k parameters, 0.5 MiB per array, beyond
// L2) that pass was half of the step. Fused, each Dense layer updates its parameters during
// backward, right after its gradient is formed (and after its dx, which reads the old
// weights), one block at a time: the block's gradient is formed in a buffer on the stack, the
// L1/L2 penalty is added to it, and the optimizer's own loop (core/kernel_set.h OptStepFn)
// runs on it. The gradient arena is not written: after a fused step its content is
// unspecified, as after apply_gradients.
//
// Blocks depend on the weight's shape only. A row longer than kChunkCols is cut into column
// segments of kChunkCols, kChunkRows rows per block; shorter rows are grouped whole,
// kChunkElems elements at most per block. The penalty's sums are kept per block and added in
// block order by the first thread, so the loss does not depend on which thread did a block.
//
// A wide weight (more than kChunkCols columns) at a batch of one row is owned by rows: its
// rows are cut into units of kOwnRows, and the forward product x W is formed as one partial
// vector per unit, added in unit order (Dense, nn/layers.cpp). On a team (nn/network.cpp) each
// thread takes a share of the units -- it forms their partials in forward, their dx and their
// update in backward -- so one thread's parameters and optimizer state stay in its core's
// caches from step to step, and no cache line is written by one core and read by the other.
// (Owning columns instead made every row hold both threads' lines side by side: the hardware
// prefetchers of each core kept pulling the other's lines, and the team ran 1.6x slower than
// one thread.) The blocks of a narrower weight are shared out by rows.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/kernel_set.h"
#include "core/team.h"
#include "kernels/optimizers.h"

namespace fastbp {

constexpr int64_t kChunkCols = 256;
constexpr int64_t kChunkElems = 2048;
constexpr int64_t kChunkRows = kChunkElems / kChunkCols;
constexpr int64_t kOwnRows = 64;  // (a multiple of kChunkRows)

// Number of update blocks of a rows x cols weight (see above).
inline int64_t fused_blocks(int64_t rows, int64_t cols) {
  if (cols > kChunkCols)
    return (rows + kChunkRows - 1) / kChunkRows * ((cols + kChunkCols - 1) / kChunkCols);
  const int64_t rb = cols > 0 && kChunkElems / cols > 0 ? kChunkElems / cols : 1;
  return (rows + rb - 1) / rb;
}

// Whether a weight of `cols` columns is owned by rows at a batch of one row (see above).
inline bool fused_wide(int64_t cols) { return cols > kChunkCols; }

// The row units of a wide weight of `rows` rows, and this thread's rows [r0, r1) of them (its
// share of the units; on one thread, all rows).
inline int64_t own_units(int64_t rows) { return (rows + kOwnRows - 1) / kOwnRows; }
inline void own_rows(const Team& team, int64_t rows, int64_t& r0, int64_t& r1) {
  int64_t b, e;
  team.share(own_units(rows), b, e);
  r0 = b * kOwnRows < rows ? b * kOwnRows : rows;
  r1 = e * kOwnRows < rows ? e * kOwnRows : rows;
}

template <typename T>
struct FusedUpdate {
  const KernelSlots<T>* k = nullptr;
  OptStepFn<T> kernel = nullptr;
  const OptConfig* cfg = nullptr;
  OptSlots<T> state;     // at the start of the parameter arena
  const T* base = nullptr;  // the parameter arena
  int64_t step = 0;         // the count of this update
  T l1 = T(0), l2 = T(0);
  // Penalised weights: (arena offset, index of the first block in `parts`); parts holds two
  // sums per block (sum |w|, sum w^2).
  const std::vector<std::pair<int64_t, int64_t>>* penalised = nullptr;
  double* parts = nullptr;

  // W (rows x cols) with the gradient x^T dz (x: n x rows, dz: n x cols): this thread's
  // blocks (the rows own_rows gives it for a wide W, else a share of the row blocks).
  void weights(T* W, int64_t rows, int64_t cols, const T* x, const T* dz, int64_t n,
               const Team& team) const {
    const int64_t off = W - base;
    int64_t first = -1;
    if (l1 != T(0) || l2 != T(0))
      for (const auto& e : *penalised)
        if (e.first == off) first = e.second;
    alignas(64) T buf[kChunkElems];
    if (fused_wide(cols)) {
      const int64_t nseg = (cols + kChunkCols - 1) / kChunkCols;
      int64_t r0, r1;
      own_rows(team, rows, r0, r1);
      for (int64_t i0 = r0, blk = r0 / kChunkRows; i0 < r1; i0 += kChunkRows, ++blk) {
        const int64_t r = r1 - i0 < kChunkRows ? r1 - i0 : kChunkRows;
        for (int64_t s = 0; s < nseg; ++s) {
          const int64_t c0 = s * kChunkCols, w = cols - c0 < kChunkCols ? cols - c0 : kChunkCols;
          T* p = W + i0 * cols + c0;
          k->outer(buf, w, x + i0, rows, dz + c0, cols, n, r, w);
          if (first >= 0) {
            double a1[kPenaltyLanes] = {}, a2[kPenaltyLanes] = {};
            for (int64_t q = 0; q < r; ++q) k->penalty(buf + q * w, p + q * cols, w, l1, l2, a1, a2);
            store_sums(first + blk * nseg + s, a1, a2);
          }
          kernel(p, buf, r, w, cols, w, *cfg, state.offset(off + i0 * cols + c0), step);
        }
      }
      return;
    }
    const int64_t rb = cols > 0 && kChunkElems / cols > 0 ? kChunkElems / cols : 1;
    int64_t bb, be;
    team.share((rows + rb - 1) / rb, bb, be);
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t i0 = blk * rb, r = rows - i0 < rb ? rows - i0 : rb;
      T* p = W + i0 * cols;
      k->outer(buf, cols, x + i0, rows, dz, cols, n, r, cols);
      if (first >= 0) {
        double a1[kPenaltyLanes] = {}, a2[kPenaltyLanes] = {};
        k->penalty(buf, p, r * cols, l1, l2, a1, a2);
        store_sums(first + blk, a1, a2);
      }
      kernel(p, buf, 1, r * cols, 0, 0, *cfg, state.offset(off + i0 * cols), step);
    }
  }

  // Elements [c0, c1) of a vector parameter p with its gradient g (not penalised).
  void vector(T* p, T* g, int64_t c0, int64_t c1) const {
    if (c1 > c0) kernel(p + c0, g + c0, 1, c1 - c0, 0, 0, *cfg, state.offset(p - base + c0), step);
  }

 private:
  void store_sums(int64_t block, const double* a1, const double* a2) const {
    double s1 = 0.0, s2 = 0.0;
    for (int l = 0; l < kPenaltyLanes; ++l) {
      s1 += a1[l];
      s2 += a2[l];
    }
    parts[2 * block] = s1;
    parts[2 * block + 1] = s2;
  }
};

}  // namespace fastbp
