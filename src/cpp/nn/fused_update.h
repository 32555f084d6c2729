// Row units and the fused optimizer update of a batch of one row (docs/ENGINE.md, "A batch
// of one row").
//
// Row units. A network of dense layers large enough (nn/network.cpp kRowUnitsMinParams)
// computes each wide weight (more than kWideCols columns) of a one-row training step by row
// units: the rows of W are cut into units of kOwnRows, and x W is formed as one partial vector
// per unit, added in unit order (Dense, nn/layers.cpp); dx = dz W^T is formed by rows of W.
// The partials do not depend on who forms them, so the bits do not depend on the thread count.
//
// The fused update. On a team each thread takes a share of the units: it forms their
// partials in forward, their rows of dx in backward, and updates them inside backward, right
// after their gradient x^T dz (an outer product) is formed, one block at a time: the block's
// gradient in a buffer on the stack, the L1/L2 penalty added to it, then the optimizer's own
// loop (core/kernel_set.h OptStepFn, through opt_range: every element by its vector body). So
// one thread's parameters and optimizer state stay in its core's caches from step to step,
// and no line is written by one core and read by the other. A narrower weight and the biases
// are the first thread's (it computes those layers' forward alone). The weights' gradients
// are not written: after a fused step the gradient arena's content is unspecified, as after
// apply_gradients. On one thread the step is not fused; the unfused update gives the same
// bits (the same operations on every element, the penalty sums over the same blocks).
// (Owning columns instead made every row of W hold both threads' lines side by side: each
// core's prefetchers kept pulling the other's lines, and the team ran 1.6x slower than one
// thread.)
//
// Blocks depend on the weight's shape only (block_rows, block_cols). The penalty's sums are
// kept per block and added in block order by the first thread, so the loss does not depend on
// which thread did a block.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/kernel_set.h"
#include "core/team.h"
#include "kernels/optimizers.h"

namespace fastbp {

constexpr int64_t kChunkElems = 2048;  // elements of a block (its gradient buffer)
constexpr int64_t kOwnRows = 64;       // rows of a unit (a multiple of every block's rows)
constexpr int64_t kWideCols = 256;     // a wider weight is owned by rows (see above)

// Whether a weight of `cols` columns is computed by row units at a batch of one row.
inline bool fused_wide(int64_t cols) { return cols > kWideCols; }

// A narrow weight whose columns are two or more whole strips of kStripCols is cut into column
// strips: the hidden units of a two-layer network are owned by strips on a thread team
// (nn/network_split.cpp), whose private copy of a strip must hold whole blocks.
constexpr int64_t kStripCols = 64;
inline bool strip_blocks(int64_t cols) {
  return cols > kStripCols && cols % kStripCols == 0 && !fused_wide(cols);
}

// The blocks of a rows x cols weight: a power of two of rows (at most kOwnRows) within
// kChunkElems elements, of whole rows, of column strips (strip_blocks), or of column segments
// of kChunkElems when a row is longer.
inline int64_t block_cols(int64_t cols) {
  return strip_blocks(cols) ? kStripCols : cols < kChunkElems ? cols : kChunkElems;
}
inline int64_t block_rows(int64_t cols) {
  const int64_t w = block_cols(cols);
  int64_t r = 1;
  while (r < kOwnRows && 2 * r * w <= kChunkElems) r *= 2;
  return r;
}
inline int64_t fused_blocks(int64_t rows, int64_t cols) {
  const int64_t rb = block_rows(cols), cb = block_cols(cols);
  return (rows + rb - 1) / rb * ((cols + cb - 1) / cb);
}
// f(i0, r, c0, w, block) for the blocks of rows [r0, r1) of a rows x cols weight (r0 on a block
// boundary), in order: rows i0..i0+r, columns c0..c0+w, its index among the weight's blocks.
template <typename F>
void for_blocks(int64_t cols, int64_t r0, int64_t r1, F&& f) {
  const int64_t rb = block_rows(cols), cb = block_cols(cols), nseg = (cols + cb - 1) / cb;
  for (int64_t i0 = r0; i0 < r1; i0 += rb)
    for (int64_t s = 0; s < nseg; ++s)
      f(i0, r1 - i0 < rb ? r1 - i0 : rb, s * cb, cols - s * cb < cb ? cols - s * cb : cb,
        i0 / rb * nseg + s);
}

// The row units of a wide weight of `rows` rows, and this thread's rows [r0, r1) of them (its
// share of the units; on one thread, all rows).
inline int64_t own_units(int64_t rows) { return (rows + kOwnRows - 1) / kOwnRows; }
inline void own_rows(const Team& team, int64_t rows, int64_t& r0, int64_t& r1) {
  int64_t b, e;
  team.share(own_units(rows), b, e);
  r0 = b * kOwnRows < rows ? b * kOwnRows : rows;
  r1 = e * kOwnRows < rows ? e * kOwnRows : rows;
}

// A block's penalty sums from its lanes, added in lane order.
inline void lane_totals(const double* a1, const double* a2, double& s1, double& s2) {
  // (local sums: s1 and s2 may alias the lanes for all the compiler knows, and summing into
  // them stored and reloaded every step, a quarter of an L2 penalty's cost on digits)
  double t1 = 0.0, t2 = 0.0;
  for (int l = 0; l < kPenaltyLanes; ++l) {
    t1 += a1[l];
    t2 += a2[l];
  }
  s1 = t1;
  s2 = t2;
}

// The L1/L2 penalty of one block of a weight (r rows of w elements; row q of the gradient at
// g + q * ldg, of the weight at p + q * ldp): g += l1 sign(p) + l2 p, and the block's sums
// (sum |p|, sum p^2) returned in s1, s2, formed in one order whatever runs it (the fused
// update on any thread, or Network::add_penalty on the whole gradient).
template <typename T>
void block_penalty(const KernelSlots<T>& k, T* g, int64_t ldg, const T* p, int64_t ldp,
                   int64_t r, int64_t w, T l1, T l2, double& s1, double& s2) {
  double a1[kPenaltyLanes] = {}, a2[kPenaltyLanes] = {};
  if (ldg == w && ldp == w)
    k.penalty(g, p, r * w, l1, l2, a1, a2);
  else
    for (int64_t q = 0; q < r; ++q) k.penalty(g + q * ldg, p + q * ldp, w, l1, l2, a1, a2);
  lane_totals(a1, a2, s1, s2);
}

// The penalty l1 * sum|w| + l2/2 * sum w^2 from the two sums of each of `blocks` blocks
// (parts[2b], parts[2b + 1]), added in block order: the value whoever formed the blocks.
inline double parts_penalty(const double* parts, int64_t blocks, double l1, double l2) {
  double s1 = 0.0, s2 = 0.0;
  for (int64_t b = 0; b < blocks; ++b) {
    s1 += parts[2 * b];
    s2 += parts[2 * b + 1];
  }
  return l1 * s1 + 0.5 * l2 * s2;
}

// The penalty folded into the update of one block of a weight (r rows of w elements at stride
// ld in p, g and the state st): the folded kernel over the block (one range when it is
// contiguous), its sums in s1, s2 (the sums block_penalty forms).
template <typename T>
void block_fold(PenOptStepFn<T> folded, T* p, T* g, const OptSlots<T>& st, int64_t r, int64_t w,
                int64_t ld, const OptConfig& cfg, int64_t step, T l1, T l2, double& s1,
                double& s2) {
  double a1[kPenaltyLanes] = {}, a2[kPenaltyLanes] = {};
  if (w == ld)
    folded(p, g, 1, r * w, r * w, cfg, st, step, l1, l2, a1, a2);
  else
    folded(p, g, r, w, ld, cfg, st, step, l1, l2, a1, a2);
  lane_totals(a1, a2, s1, s2);
}

// A dense weight the penalties apply to: its place in the arena, its shape, and the index of
// its first block among all the penalised weights' blocks (in arena order).
struct PenalisedWeight {
  int64_t offset, rows, cols, first_block;
};

template <typename T>
struct FusedUpdate {
  const KernelSlots<T>* k = nullptr;
  OptStepFn<T> kernel = nullptr;
  const OptConfig* cfg = nullptr;
  OptSlots<T> state;     // at the start of the parameter arena
  const T* base = nullptr;  // the parameter arena
  int64_t step = 0;         // the count of this update
  T l1 = T(0), l2 = T(0);
  // The penalised weights; parts holds two sums per block (sum |w|, sum w^2).
  const std::vector<PenalisedWeight>* penalised = nullptr;
  double* parts = nullptr;

  // W (rows x cols) with the gradient x^T dz (x: 1 x rows, dz: 1 x cols): this thread's
  // blocks (the rows own_rows gives it for a wide W; a narrow W is the first thread's: it
  // computes that layer's forward alone, and lines written on the other core would have to
  // travel back to it).
  void weights(T* W, int64_t rows, int64_t cols, const T* x, const T* dz,
               const Team& team) const {
    const int64_t off = W - base;
    int64_t first = -1;
    if (l1 != T(0) || l2 != T(0))
      for (const auto& e : *penalised)
        if (e.offset == off) first = e.first_block;
    int64_t r0 = 0, r1 = rows;
    if (fused_wide(cols))
      own_rows(team, rows, r0, r1);
    else if (!team.lead())
      return;
    T buf[kChunkElems];  // (no alignas: ASan's fake stack aligns to 32 bytes only)
    for_blocks(cols, r0, r1, [&](int64_t i0, int64_t r, int64_t c0, int64_t w, int64_t blk) {
      T* p = W + i0 * cols + c0;
      k->outer(buf, w, x + i0, dz + c0, r, w);
      if (first >= 0) {
        double* sums = parts + 2 * (first + blk);
        block_penalty(*k, buf, w, p, cols, r, w, l1, l2, sums[0], sums[1]);
      }
      if (w == cols)  // (the block is contiguous in the arena)
        opt_range(kernel, p, buf, r * w, *cfg, state.offset(off + i0 * cols), step);
      else
        for (int64_t q = 0; q < r; ++q)
          opt_range(kernel, p + q * cols, buf + q * w, w, *cfg,
                    state.offset(off + (i0 + q) * cols + c0), step);
    });
  }

  // Elements [c0, c1) of a vector parameter p with its gradient g (not penalised).
  void vector(T* p, T* g, int64_t c0, int64_t c1) const {
    if (c1 > c0)
      opt_range(kernel, p + c0, g + c0, c1 - c0, *cfg, state.offset(p - base + c0), step);
  }

};

}  // namespace fastbp
