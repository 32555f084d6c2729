// A whole epoch of a small two-layer network on a thread team that splits the HIDDEN UNITS
// (docs/ENGINE.md, "Hidden units by strips"): each thread owns strips of kStripCols hidden
// units -- their columns of the first weight, their bias entries, their rows of the second
// weight -- and keeps its strips of the first weight, bias, gradient and optimizer state in
// PRIVATE contiguous arrays for the whole epoch (copied out of the arena before it and back
// after it). A row of the first weight holds every strip side by side; a thread updating its
// columns in place would share each row's lines with the other core (the prefetchers pull the
// neighbour's lines: docs/ENGINE.md measured 30-68 us against 31 us on one thread). Two
// meetings a step:
//
//   each thread: gather the batch (all rows, its own copy); its strips' hidden activations
//     f(x W1[:, s] + b1[s]) into its arrays and into the shared n x h matrix of whole rows
//   -- meet --
//   each thread: its rows of the output z2 = h W2 + b2, its rows of the loss gradient
//   -- meet --
//   each thread: its strips' dh = dz2 W2[s, :]^T, f', db1[s], dW2[s, :], dW1[:, s] and the
//     update of all of them (penalty folded in as the arena's blocks take it); the first
//     thread the loss, db2 and b2's update.
//
// The same bits as the one-thread step (Network::train_batch): every element of every product
// is formed whole by one thread with the kernel the whole product uses (a column or row block
// of a product does not change how an element is formed), every element of the update goes
// through the same kernel call shape (strips of 64 are whole vectors; the strip blocks of
// nn/fused_update.h are the arena's own penalty blocks), the loss is loss_rows' row-order sum,
// and the penalty sums are the arena's blocks' sums added in block order. So this is only an
// execution strategy: fit_epoch takes it or not (thread count, backoff) without changing
// results, and tests/test_team.py compares it with one thread bit for bit.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/kernel_set.h"
#include "core/platform.h"
#include "core/threading.h"
#include "kernels/activations.h"
#include "kernels/gemm/gemm.h"
#include "kernels/losses.h"
#include "nn/fused_update.h"
#include "nn/network.h"

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastbp {

// An epoch this short stays on the usual path: the copies in and out and the region would
// cost more than the steps save.
constexpr int64_t kSplitMinSteps = 8;
// A team kept waiting for a team-mate that is not running hands the rest of its epoch to
// fit_epoch's loop on one thread (the same bits from that step on) once its waits add up to
// more than kSplitYield of its threads' time (and at least kSplitYieldMinNs: waking the team
// for an epoch takes up to ~0.1 ms, a team-mate kept off its core several ms), and the network
// backs off (core/team.h TeamBackoff: epochs that start within the back-off time stay on one
// thread too). The waits are read at every step (SpinBarrier times them); the back-off rule's
// CPU clocks would cost a system call per thread and step.
constexpr double kSplitYield = 0.25;
constexpr double kSplitYieldMinNs = 200e3;

template <typename T>
struct SplitWork {
  static constexpr int64_t kAlign = 64 / int64_t(sizeof(T));  // elements per cache line
  struct Strip {
    T *w = nullptr, *g = nullptr, *b = nullptr, *gb = nullptr;  // d x 64 and 64, private
    OptSlots<T> sw, sb;                     // their optimizer state (private)
    T *a = nullptr, *z = nullptr, *da = nullptr;  // rows x 64: f(z), z (if kept), d(loss)/dz
    std::vector<T> mem;
  };
  struct Private {  // one thread's gathered batch
    std::vector<T> mem, yb;
    T* xb = nullptr;
    std::vector<int64_t> lb;
    std::vector<T> wb;
    std::vector<T> dz2;  // (the first thread's copy of dz2 for db2)
  };
  int64_t rows = 0;
  std::vector<StateSlot> slots;  // the optimizer state arrays the strips hold (their kinds)
  std::vector<Strip> strips;
  std::vector<Private> threads;
  std::vector<T> hmem;
  T* h = nullptr;  // rows x hidden, the hidden activations in whole rows (the second layer's x)

  static T* carve(std::vector<T>& mem, size_t& at, int64_t n) {
    T* base = mem.data() + at;
    const auto misalign = reinterpret_cast<uintptr_t>(base) % 64;
    const size_t skip = misalign ? (64 - misalign) / sizeof(T) : 0;
    at += skip + size_t((n + kAlign - 1) / kAlign * kAlign);
    return base + skip;
  }
};

template <typename T>
bool Network<T>::split_fits(int64_t N, int64_t batch_size) const {
#ifdef FASTBP_HAVE_OPENMP
  if (!split_capable_ || omp_in_parallel() || get_num_threads() < 2) return false;
  if (!backoff_.allows()) return false;  // (backing off: core/team.h TeamBackoff)
  if (opt_.clip_value != 0.0 || opt_.clip_norm != 0.0) return false;  // (a global norm)
  if (double(batch_size) * macs_per_row_ >= kTeamMinStepWork) return false;  // (the team's)
  if ((N + batch_size - 1) / batch_size < kSplitMinSteps) return false;
  // Every product by strips takes the whole product's path (gemm.h gemm_path), at the batch's
  // rows and at the last batch's: the unpacked path (its elements do not depend on the block
  // of C asked), or for dW2 the narrow path too (rows on its blocks of 64).
  const int64_t d = in_dim(), h = split_hidden_, k = out_dim(), s = kStripCols;
  const auto same = [](GemmPath a, GemmPath b, bool narrow_ok) {
    return a == b && (a == GemmPath::small || (narrow_ok && a == GemmPath::narrow));
  };
  for (const int64_t n : {batch_size, N % batch_size}) {
    if (n == 0) continue;
    if (!same(gemm_path<T>(Trans::N, Trans::N, n, h, d), gemm_path<T>(Trans::N, Trans::N, n, s, d),
              false) ||
        !same(gemm_path<T>(Trans::N, Trans::T, n, h, k), gemm_path<T>(Trans::N, Trans::T, n, s, k),
              false) ||
        !same(gemm_path<T>(Trans::T, Trans::N, h, k, n), gemm_path<T>(Trans::T, Trans::N, s, k, n),
              true) ||
        !same(gemm_path<T>(Trans::T, Trans::N, d, h, n), gemm_path<T>(Trans::T, Trans::N, d, s, n),
              false))
      return false;
  }
  return true;
#else
  (void)N;
  (void)batch_size;
  return false;
#endif
}

// Allocates everything the split epoch needs (before any state changes: a std::bad_alloc here
// leaves the network as it was).
template <typename T>
void Network<T>::split_reserve(int64_t rows, int threads) {
  if (!split_) split_ = std::make_shared<SplitWork<T>>();
  SplitWork<T>& sw = *split_;
  const int64_t d = in_dim(), h = split_hidden_, k = out_dim(), nstrips = h / kStripCols;
  const int64_t slots = int64_t(opt_state_.arrays.size());
  constexpr int64_t A = SplitWork<T>::kAlign;
  const auto pad = [](int64_t n) { return size_t((n + A - 1) / A * A + A); };
  if (sw.rows < rows || sw.slots != opt_state_.slots || int64_t(sw.strips.size()) != nstrips) {
    std::vector<typename SplitWork<T>::Strip> strips{size_t(nstrips)};
    const bool z = act_needs_z(split_act_);
    for (auto& s : strips) {
      const int64_t wn = d * kStripCols, rn = rows * kStripCols;
      s.mem.assign(pad(wn) * size_t(2 + slots) + pad(kStripCols) * size_t(2 + slots) +
                       pad(rn) * (z ? 3 : 2),
                   T(0));
      size_t at = 0;
      s.w = SplitWork<T>::carve(s.mem, at, wn);
      s.g = SplitWork<T>::carve(s.mem, at, wn);
      s.b = SplitWork<T>::carve(s.mem, at, kStripCols);
      s.gb = SplitWork<T>::carve(s.mem, at, kStripCols);
      for (int64_t q = 0; q < slots; ++q) {
        const int idx = static_cast<int>(opt_state_.slots[size_t(q)]);
        s.sw.p[idx] = SplitWork<T>::carve(s.mem, at, wn);
        s.sb.p[idx] = SplitWork<T>::carve(s.mem, at, kStripCols);
      }
      s.a = SplitWork<T>::carve(s.mem, at, rn);
      s.da = SplitWork<T>::carve(s.mem, at, rn);
      if (z) s.z = SplitWork<T>::carve(s.mem, at, rn);
    }
    std::vector<T> hmem(pad(rows * h), T(0));
    size_t at = 0;
    T* hp = SplitWork<T>::carve(hmem, at, rows * h);
    sw.strips = std::move(strips);
    sw.hmem = std::move(hmem);
    sw.h = hp;
    sw.rows = rows;
    sw.slots = opt_state_.slots;
    sw.threads.clear();
  }
  if (int64_t(sw.threads.size()) < threads || sw.threads.front().lb.size() < size_t(rows)) {
    std::vector<typename SplitWork<T>::Private> priv{size_t(threads)};
    for (auto& p : priv) {
      p.mem.assign(pad(rows * d), T(0));
      size_t at = 0;
      p.xb = SplitWork<T>::carve(p.mem, at, rows * d);
      p.yb.assign(size_t(rows * k), T(0));
      p.lb.assign(size_t(rows), 0);
      p.wb.assign(size_t(rows), T(0));
      p.dz2.assign(size_t(rows * k), T(0));
    }
    sw.threads = std::move(priv);
  }
}

// The arena's first weight, first bias, their gradients and optimizer state into the strips
// (to_strips) or back.
template <typename T>
void Network<T>::split_copy(bool to_strips) {
  SplitWork<T>& sw = *split_;
  const int64_t d = in_dim(), h = split_hidden_;
  const OptSlots<T> st = opt_state_.pointers();
  const auto move = [&](T* arena, T* strip, int64_t rows, int64_t ld) {
    for (int64_t r = 0; r < rows; ++r) {
      if (to_strips)
        std::memcpy(strip + r * kStripCols, arena + r * ld, sizeof(T) * kStripCols);
      else
        std::memcpy(arena + r * ld, strip + r * kStripCols, sizeof(T) * kStripCols);
    }
  };
  for (size_t s = 0; s < sw.strips.size(); ++s) {
    auto& S = sw.strips[s];
    const int64_t c0 = int64_t(s) * kStripCols, b1 = d * h + c0;
    move(params_.data() + c0, S.w, d, h);
    move(grads_.data() + c0, S.g, d, h);
    move(params_.data() + b1, S.b, 1, h);
    move(grads_.data() + b1, S.gb, 1, h);
    for (int i = 0; i < kNumStateSlots; ++i) {
      if (!st.p[i]) continue;
      move(st.p[i] + c0, S.sw.p[i], d, h);
      move(st.p[i] + b1, S.sb.p[i], 1, h);
    }
  }
}

// One split epoch's constants and pointers, and the pieces of a step (each thread calls them
// on its own strips; see the top of this file).
template <typename T>
struct SplitEpoch {
  using Private = typename SplitWork<T>::Private;
  SplitWork<T>* sw;
  int64_t d, h, k, w2_off, b2_off, w1_blocks, rb1, step0;
  Act act;
  T alpha, l1, l2;
  bool penal, folds;
  const KernelSlots<T>* ks;
  PenOptStepFn<T> folded;
  OptStepFn<T> plain;
  OptSlots<T> st;  // the arena's optimizer state
  T *P, *G, *out, *dout;
  double* terms;   // each row's loss term
  double* parts;   // two penalty sums per block of the penalised weights
  int64_t nparts;
  const int64_t* perm;
  const T* X;
  Target<T> t;
  LossArgs loss;
  PenaltyArgs pen;

  // The mini-batch at `pos` (nb rows), this thread's copy.
  void gather(Private& mine, int64_t pos, int64_t nb) const {
    for (int64_t r = 0; r < nb; ++r) {
      const int64_t src = perm[pos + r];
      std::memcpy(mine.xb + r * d, X + src * d, sizeof(T) * size_t(d));
      if (t.values) std::memcpy(mine.yb.data() + r * k, t.values + src * k, sizeof(T) * size_t(k));
      if (t.labels) mine.lb[size_t(r)] = t.labels[src];
      if (t.weight) mine.wb[size_t(r)] = t.weight[src];
    }
  }
  // Strip s's hidden activations, into its arrays and its columns of the whole rows.
  void forward(int64_t s, const Private& mine, int64_t nb) const {
    auto& S = sw->strips[size_t(s)];
    gemm<T>(Trans::N, Trans::N, nb, kStripCols, d, T(1), mine.xb, d, S.w, kStripCols, T(0), S.a,
            kStripCols);
    bias_act_forward<T>(S.a, S.z, S.b, nb, kStripCols, kStripCols, act, alpha);
    for (int64_t r = 0; r < nb; ++r)
      std::memcpy(sw->h + r * h + s * kStripCols, S.a + r * kStripCols, sizeof(T) * kStripCols);
  }
  // The output z2 = h W2 (the whole product, shared as a team shares it: core/team.h; the team
  // meets at its end), then this thread's rows of z2's bias and of the loss gradient; returns
  // 1 / (the rows' total weight).
  double output(const Team& team, const Private& mine, int64_t nb) const {
    {
      const TeamScope scope(&team);
      gemm<T>(Trans::N, Trans::N, nb, k, h, T(1), sw->h, h, P + w2_off, k, T(0), out, k);
    }
    int64_t r0, r1;
    team.rows(nb, kTeamLossRowAlign, r0, r1);
    if (r1 > r0)
      bias_act_forward<T>(out + r0 * k, nullptr, P + b2_off, r1 - r0, k, k, Act::identity, T(0));
    Target<T> tb;
    tb.values = t.values ? mine.yb.data() : nullptr;
    tb.labels = t.labels ? mine.lb.data() : nullptr;
    tb.weight = t.weight ? mine.wb.data() : nullptr;
    double inv_w = 0.0;
    loss_rows<T>(dout, out, tb.values, tb.labels, tb.weight, nb, k, loss, r0, r1, terms + r0,
                 &inv_w);
    return inv_w;
  }
  // (the first thread) The loss of the step, db2 from a copy of dz2 (the kernel writes its
  // input; the others read dz2 meanwhile) and b2's update.
  double lead_part(Private& mine, int64_t nb, double inv_w, const OptConfig& cfg,
                   int64_t ostep) const {
    double v = 0.0;
    for (int64_t i = 0; i < nb; ++i) v += terms[i];
    std::memcpy(mine.dz2.data(), dout, sizeof(T) * size_t(nb * k));
    act_backward_bias<T>(mine.dz2.data(), G + b2_off, nullptr, out, nb, k, Act::identity, T(0));
    plain(P + b2_off, G + b2_off, k, cfg, st.offset(b2_off), ostep);
    return v * inv_w;
  }
  // Strip s's gradients (dh, f', db1, dW2's rows, dW1's columns) and their update.
  void backward(int64_t s, const Private& mine, int64_t nb, const OptConfig& cfg,
                int64_t ostep) const {
    auto& S = sw->strips[size_t(s)];
    const int64_t c0 = s * kStripCols;
    T* p2 = P + w2_off + c0 * k;
    T* g2 = G + w2_off + c0 * k;
    gemm<T>(Trans::N, Trans::T, nb, kStripCols, k, T(1), dout, k, p2, k, T(0), S.da, kStripCols);
    act_backward_bias<T>(S.da, S.gb, S.z, S.a, nb, kStripCols, act, alpha);
    gemm<T>(Trans::T, Trans::N, kStripCols, k, nb, T(1), S.a, kStripCols, dout, k, T(0), g2, k);
    gemm<T>(Trans::T, Trans::N, d, kStripCols, nb, T(1), mine.xb, d, S.da, kStripCols, T(0), S.g,
            kStripCols);
    if (penal) {  // (W1's blocks of this strip, W2's of its rows: the arena's penalty blocks)
      const int64_t nseg = h / kStripCols;
      for (int64_t i0 = 0; i0 < d; i0 += rb1)
        penalised_block(S.w + i0 * kStripCols, S.g + i0 * kStripCols,
                        S.sw.offset(i0 * kStripCols), std::min(rb1, d - i0), kStripCols,
                        kStripCols, i0 / rb1 * nseg + s, cfg, ostep);
      for_blocks(k, c0, c0 + kStripCols,
                 [&](int64_t i0, int64_t r, int64_t cc, int64_t w, int64_t blk) {
                   const int64_t off = (i0 - c0) * k + cc;
                   penalised_block(p2 + off, g2 + off, st.offset(w2_off + c0 * k + off), r, w,
                                   k, w1_blocks + blk, cfg, ostep);
                 });
    }
    if (!folds) {
      plain(S.w, S.g, d * kStripCols, cfg, S.sw, ostep);
      plain(p2, g2, kStripCols * k, cfg, st.offset(w2_off + c0 * k), ostep);
    }
    plain(S.b, S.gb, kStripCols, cfg, S.sb, ostep);
  }
  // One block of a penalised weight (r rows of w at stride ld in p / g / state), its sums
  // into parts[blk]: folded into the update, or the penalty alone (the update follows).
  void penalised_block(T* p, T* g, const OptSlots<T>& s, int64_t r, int64_t w, int64_t ld,
                       int64_t blk, const OptConfig& cfg, int64_t step) const {
    double* sums = parts + 2 * blk;
    if (folds)
      block_fold(folded, p, g, s, r, w, ld, cfg, step, l1, l2, sums[0], sums[1]);
    else
      block_penalty(*ks, g, ld, p, ld, r, w, l1, l2, sums[0], sums[1]);
  }
  // The loss of a step with its penalty (summed over the blocks in block order), as
  // Network::train_batch reports it.
  double with_penalty(double value) const {
    return penal ? value + parts_penalty(parts, nparts, pen.l1, pen.l2) : value;
  }
};

// The team's bookkeeping over an epoch: its waits, and the steps' losses added up in step
// order by the first thread (a step's penalty is known once every strip is updated, so each
// step's loss is added at the next step's first meeting).
struct SplitLedger {
  std::atomic<int64_t> waited_ns{0};  // (the team's time in waits past a few spins)
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  bool stop_now = false, yield_now = false;
  double pending = 0.0;  // the last step's loss, without its penalty
  int64_t pending_rows = 0, pending_end = 0, steps = 0, resume = 0;

  // Whether the team was kept waiting too long so far (kSplitYield).
  bool waited_long(int nt) const {
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    const double waited = double(waited_ns.load(std::memory_order_relaxed));
    return waited > kSplitYieldMinNs && waited > kSplitYield * ns * nt;
  }
  void meet(const Team& team) {  // (with the waits of the shared product's)
    team.sync();
    if (team.waited_ns > 0) {
      waited_ns.fetch_add(team.waited_ns, std::memory_order_relaxed);
      team.waited_ns = 0;
    }
  }
  template <typename T>
  void settle(const SplitEpoch<T>& e, double& total, int64_t& trained) {
    if (pending_rows == 0) return;
    total += e.with_penalty(pending) * double(pending_rows);
    trained = pending_end;
    pending_rows = 0;
  }
};

template <typename T>
int64_t Network<T>::fit_epoch_split(const T* X, const Target<T>& t, int64_t N,
                                    int64_t batch_size, const double* lrs, const LossArgs& loss,
                                    const PenaltyArgs& pen, const std::atomic<bool>* stop,
                                    int threads, double& total, int64_t& trained,
                                    bool& stopped) {
  const KernelSlots<T>& ks = kernels().slots<T>();
  const int64_t d = in_dim(), h = split_hidden_, k = out_dim();
  SplitEpoch<T> e{split_.get(), d, h, k, d * h + h, d * h + h + h * k, fused_blocks(d, h),
                  block_rows(h), opt_state_.step, split_act_, split_alpha_, T(pen.l1),
                  T(pen.l2), pen.l1 != 0.0 || pen.l2 != 0.0, penalty_folds(pen), &ks,
                  ks.opt_penalised[static_cast<int>(opt_.kind)],
                  ks.opt_step[static_cast<int>(opt_.kind)], opt_state_.pointers(),
                  params_.data(), grads_.data(), out_.data(), dout_.data(),
                  loss_terms_.data(), fused_parts_.data(), int64_t(fused_parts_.size()) / 2,
                  perm_.data(), X, t, loss, pen};
  split_copy(true);
  SplitLedger led;
  led.resume = N;
  // (no OpenMP barrier at the start: a team-mate slow to wake is waited for at the first
  // meeting, where its wait counts)
  SpinBarrier bar(threads);
  RegionClock region_clock(backoff_);
  bool short_team = false;  // (the runtime gave fewer threads: fit_epoch's loop trains all)
#pragma omp parallel num_threads(threads)
  {
    const int64_t cpu0 = region_clock.sampled() ? thread_cpu_ns() : 0;
    const Team team{omp_get_thread_num(), omp_get_num_threads(), &bar, true};
    if (team.nt != threads) {
      if (team.lead()) short_team = true;
    } else {
      split_steps(e, led, team, N, batch_size, lrs, stop, total, trained);
    }
    if (region_clock.sampled()) region_clock.add_thread(cpu0, thread_cpu_ns());
  }
  split_copy(false);
  if (short_team) return 0;
  opt_state_.step += led.steps;
  ++split_epochs_;
  stopped = led.stop_now;
  if (led.yield_now)
    backoff_.back_off();
  else if (split_yield_at_ != kSplitNeverYield)
    region_clock.record(threads);
  return led.resume;
}

// Every thread of the team: the epoch's steps (two meetings each, and the shared product's).
template <typename T>
void Network<T>::split_steps(const SplitEpoch<T>& e, SplitLedger& led, const Team& team,
                             int64_t N, int64_t batch_size, const double* lrs,
                             const std::atomic<bool>* stop, double& total, int64_t& trained) {
  auto& mine = e.sw->threads[size_t(team.t)];
  int64_t s0, s1;
  team.share(int64_t(e.sw->strips.size()), s0, s1);
  for (int64_t pos = 0, step = 0; pos < N; pos += batch_size, ++step) {
    const int64_t nb = std::min(batch_size, N - pos);
    if (team.lead()) {
      led.stop_now = stop && stop->load(std::memory_order_relaxed);
      led.yield_now = !led.stop_now && step > 0 &&
                      (step == split_yield_at_ ||
                       (split_yield_at_ != kSplitNeverYield && led.waited_long(team.nt)));
    }
    OptConfig cfg = opt_;
    if (lrs) cfg.lr = lrs[step];
    const int64_t ostep = e.step0 + step + 1;
    e.gather(mine, pos, nb);
    for (int64_t s = s0; s < s1; ++s) e.forward(s, mine, nb);
    led.meet(team);  // (h whole; the last step's updates and penalty sums done; stop_now)
    if (team.lead()) led.settle(e, total, trained);
    if (led.stop_now || led.yield_now) {
      if (team.lead() && led.yield_now) led.resume = pos;
      break;
    }
    const double inv_w = e.output(team, mine, nb);
    led.meet(team);  // (dz2 whole)
    if (team.lead()) {
      led.pending = e.lead_part(mine, nb, inv_w, cfg, ostep);
      led.pending_rows = nb;
      led.pending_end = pos + nb;
      ++led.steps;
      ++step_counter_;
    }
    for (int64_t s = s0; s < s1; ++s) e.backward(s, mine, nb, cfg, ostep);
  }
  led.meet(team);  // (every update and penalty sum of the last step done)
  if (team.lead()) led.settle(e, total, trained);
}

#define FASTBP_INST(T)                                                                      \
  template bool Network<T>::split_fits(int64_t, int64_t) const;                             \
  template void Network<T>::split_reserve(int64_t, int);                                    \
  template void Network<T>::split_copy(bool);                                               \
  template int64_t Network<T>::fit_epoch_split(                                             \
      const T*, const Target<T>&, int64_t, int64_t, const double*, const LossArgs&,          \
      const PenaltyArgs&, const std::atomic<bool>*, int, double&, int64_t&, bool&);         \
  template void Network<T>::split_steps(const SplitEpoch<T>&, SplitLedger&, const Team&,      \
                                        int64_t, int64_t, const double*,                    \
                                        const std::atomic<bool>*, double&, int64_t&);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
