// A training step of a network of dense layers on a thread team that shares the BATCH ROWS
// (docs/ENGINE.md, "Batch rows"). Each thread takes its rows through the whole forward, the
// loss and the backward (dz = dy * f' and dx of every layer, its rows only: a row's values
// depend on no other row), with no meeting; then the team meets once, and each thread forms
// the parameter gradients of its part of the arena (the rows of dW = x^T dz and the bias
// sums whose first element lies in it: the part the optimizer pass gives it), and the team
// runs the update. Two meetings a step where a team that shares each product meets at every
// product and sweep (about five per layer).
//
// The same bits as one thread: every element of every product is formed whole by one thread
// with the whole product's kernel (rows_fits: each part takes the whole product's path, and
// the small and narrow paths form each row of C alone), dz is act_backward's (the bits of
// act_backward_bias's dz), db is bias_grad's (the bits of its sums), and the loss is
// loss_rows' row-order sum. So it is only an execution strategy, taken or not without
// changing results; tests/test_team.py compares it with one thread bit for bit.
#include "core/cpu.h"
#include "core/threading.h"
#include "kernels/gemm/gemm.h"
#include "kernels/losses.h"
#include "nn/fused_update.h"
#include "nn/network.h"

namespace fastbp {

namespace {
// A path whose every row of C is formed alone, whatever rows are asked.
bool rows_alone(GemmPath p) { return p == GemmPath::small || p == GemmPath::narrow; }
// Rows m of a product whose whole has M rows: the same path, or the whole product itself.
bool same_rows(GemmPath part, GemmPath whole, int64_t m, int64_t M) {
  return m == 0 || m == M || (part == whole && rows_alone(whole));
}
}  // namespace

template <typename T>
RowsPart Network<T>::rows_part(const Team& team, int64_t n) const {
  RowsPart part;
  team.rows(n, kTeamRowAlign, part.r0, part.r1);
  int64_t b, e;
  team.rows(int64_t(grads_.size()), 64, b, e);  // (opt_step's share of the arena)
  part.g0 = grads_.data() + b;
  part.g1 = grads_.data() + e;
  return part;
}

template <typename T>
bool Network<T>::rows_fits(int64_t n, int nt) const {
  if (!rows_capable_ || nt < 2 || n < 2 * nt) return false;
  for (int t = 0; t < nt; ++t) {
    const RowsPart part = rows_part(Team{t, nt}, n);
    const int64_t m = part.r1 - part.r0;
    // (the layers' weights, in order: W of in x out units at its offset)
    for (const PenalisedWeight& w : penalised_weights_) {
      const int64_t in = w.rows, out = w.cols;
      if (!same_rows(gemm_path<T>(Trans::N, Trans::N, m, out, in),
                     gemm_path<T>(Trans::N, Trans::N, n, out, in), m, n))
        return false;
      if (w.offset > 0 && !same_rows(gemm_path<T>(Trans::N, Trans::T, m, in, out),
                                     gemm_path<T>(Trans::N, Trans::T, n, in, out), m, n))
        return false;  // (dx: every layer but the first)
      int64_t i0, i1;
      rows_in_part(part, grads_.data() + w.offset, in, out, i0, i1);
      if (!same_rows(gemm_path<T>(Trans::T, Trans::N, i1 - i0, out, n),
                     gemm_path<T>(Trans::T, Trans::N, in, out, n), i1 - i0, in))
        return false;
    }
  }
  return true;
}

template <typename T>
int Network<T>::rows_team(int64_t n, int threads, const PenaltyArgs& pen) {
  // (the penalty folded into the update or none: the penalty pass and clipping read the
  // whole gradient before the update; a batch of one row is the fused step's)
  if (threads < 2 || !rows_capable_ || fused_step(n) || opt_.clip_value != 0.0 ||
      opt_.clip_norm != 0.0 || ((pen.l1 != 0.0 || pen.l2 != 0.0) && !penalty_folds(pen)))
    return 0;
  const int isa = static_cast<int>(active_isa());
  if (n != rows_n_ || threads != rows_threads_ || isa != rows_isa_) {
    rows_ok_ = rows_allowed_ && rows_fits(n, threads);
    rows_n_ = n;
    rows_threads_ = threads;
    rows_isa_ = isa;
  }
  return rows_ok_ ? threads : 0;
}

template <typename T>
double Network<T>::rows_step(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                             const PenaltyArgs& pen, const Team& team) {
  const RowsPart part = rows_part(team, n);
  Ctx ctx;
  ctx.training = true;
  ctx.seed = seed_;
  ctx.step = step_counter_;
  ctx.rows = &part;
  double inv_w = 0.0;
  {
    const TeamScope alone(nullptr);  // (every product here is this thread's alone)
    if (part.r1 > part.r0) body_.forward(x, out_.data(), n, ctx);
    loss_rows<T>(dout_.data(), out_.data(), t.values, t.labels, t.weight, n, out_dim(), loss,
                 part.r0, part.r1, loss_terms_.data() + part.r0, &inv_w);
    if (part.r1 > part.r0) body_.backward(x, out_.data(), dout_.data(), nullptr, n, ctx);
  }
  team.sync();  // (every row's dz and activations are formed; all have read the step)
  double value = 0.0;
  if (team.lead()) {
    for (int64_t i = 0; i < n; ++i) value += loss_terms_[size_t(i)];
    value *= inv_w;
    ++step_counter_;
    ++rows_steps_;
  }
  {
    const TeamScope alone(nullptr);
    body_.grads_part(x, dout_.data(), n, ctx);
  }
  if (penalty_folds(pen)) return value + update_penalised(pen, team, false);
  // (meets first: every gradient is formed; every thread read all of W in its forward and
  // dx, so its update writes around the caches where the kernel set can: opt_step)
  update(team, false, true);
  return value;
}

#define FASTBP_INST(T)                                                                     \
  template RowsPart Network<T>::rows_part(const Team&, int64_t) const;                     \
  template bool Network<T>::rows_fits(int64_t, int) const;                                 \
  template int Network<T>::rows_team(int64_t, int, const PenaltyArgs&);                    \
  template double Network<T>::rows_step(const T*, const Target<T>&, int64_t, const LossArgs&, \
                                        const PenaltyArgs&, const Team&);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
