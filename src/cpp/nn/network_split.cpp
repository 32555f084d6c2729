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
  int64_t rows = 0, slots = 0;
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
  if (!split_capable_ || omp_in_parallel() || team_backoff_ > 0 || get_num_threads() < 2)
    return false;
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
  if (sw.rows < rows || sw.slots != slots || int64_t(sw.strips.size()) != nstrips) {
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
    sw.slots = slots;
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

template <typename T>
double Network<T>::fit_epoch_split(const T* X, const Target<T>& t, int64_t N,
                                   int64_t batch_size, const double* lrs, const LossArgs& loss,
                                   const PenaltyArgs& pen, const std::atomic<bool>* stop,
                                   int threads, int64_t& trained) {
  SplitWork<T>& sw = *split_;
  const int64_t d = in_dim(), h = split_hidden_, k = out_dim();
  const int64_t nstrips = h / kStripCols;
  const int64_t w2_off = d * h + h, b2_off = w2_off + h * k;
  const KernelSlots<T>& ks = kernels().slots<T>();
  const bool penal = pen.l1 != 0.0 || pen.l2 != 0.0;
  const bool folds = penalty_folds(pen);
  const PenOptStepFn<T> folded = ks.opt_penalised[static_cast<int>(opt_.kind)];
  const OptStepFn<T> plain = ks.opt_step[static_cast<int>(opt_.kind)];
  const T l1 = T(pen.l1), l2 = T(pen.l2);
  const int64_t w1_blocks = fused_blocks(d, h), nseg1 = h / kStripCols;
  const int64_t rb1 = block_rows(h);
  const int64_t step0 = opt_state_.step;
  const Act act = split_act_;
  const T alpha = split_alpha_;
  const OptSlots<T> st = opt_state_.pointers();
  T* P = params_.data();
  T* G = grads_.data();
  double* parts = fused_parts_.data();
  const int64_t nparts = int64_t(fused_parts_.size()) / 2;
  const auto penalty_value = [&]() {
    double s1 = 0.0, s2 = 0.0;
    for (int64_t b = 0; b < nparts; ++b) {
      s1 += parts[2 * b];
      s2 += parts[2 * b + 1];
    }
    return pen.l1 * s1 + 0.5 * pen.l2 * s2;
  };
  // One block of a penalised weight (r rows of w at stride ld in p / g / state), its sums
  // into parts[blk]: folded, or the penalty alone (the update comes after, unpenalised).
  const auto penalised_block = [&](T* p, T* g, const OptSlots<T>& s, int64_t r, int64_t w,
                                   int64_t ld, int64_t blk, const OptConfig& cfg,
                                   int64_t step) {
    double* sums = parts + 2 * blk;
    if (folds) {
      double a1[kPenaltyLanes] = {}, a2[kPenaltyLanes] = {};
      if (w == ld)
        folded(p, g, 1, r * w, r * w, cfg, s, step, l1, l2, a1, a2);
      else
        folded(p, g, r, w, ld, cfg, s, step, l1, l2, a1, a2);
      lane_totals(a1, a2, sums[0], sums[1]);
    } else {
      block_penalty(ks, g, ld, p, ld, r, w, l1, l2, sums[0], sums[1]);
    }
  };

  split_copy(true);
  SpinBarrier bar;
  std::atomic<int64_t> long_waits{0};
  bool stop_now = false;
  double total = 0.0, pending = 0.0;  // (the first thread's) the last step's loss, unpenalised
  int64_t pending_rows = 0, pending_end = 0, steps_done = 0;
  const auto start_time = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  {
#pragma omp single
    bar.resize(omp_get_num_threads());
    const Team team{omp_get_thread_num(), omp_get_num_threads(), &bar};
    auto& mine = sw.threads[size_t(team.t)];
    int64_t s0, s1;
    team.share(nstrips, s0, s1);
    for (int64_t pos = 0, step = 0; pos < N; pos += batch_size, ++step) {
      const int64_t nb = std::min(batch_size, N - pos);
      if (team.lead()) stop_now = stop && stop->load(std::memory_order_relaxed);
      OptConfig cfg = opt_;
      if (lrs) cfg.lr = lrs[step];
      const int64_t ostep = step0 + step + 1;
      // The batch, this thread's copy.
      for (int64_t r = 0; r < nb; ++r) {
        const int64_t src = perm_[size_t(pos + r)];
        std::memcpy(mine.xb + r * d, X + src * d, sizeof(T) * size_t(d));
        if (t.values)
          std::memcpy(mine.yb.data() + r * k, t.values + src * k, sizeof(T) * size_t(k));
        if (t.labels) mine.lb[size_t(r)] = t.labels[src];
        if (t.weight) mine.wb[size_t(r)] = t.weight[src];
      }
      // The strips' hidden activations.
      for (int64_t s = s0; s < s1; ++s) {
        auto& S = sw.strips[size_t(s)];
        gemm<T>(Trans::N, Trans::N, nb, kStripCols, d, T(1), mine.xb, d, S.w, kStripCols, T(0),
                S.a, kStripCols);
        bias_act_forward<T>(S.a, S.z, S.b, nb, kStripCols, kStripCols, act, alpha);
        for (int64_t r = 0; r < nb; ++r)
          std::memcpy(sw.h + r * h + s * kStripCols, S.a + r * kStripCols,
                      sizeof(T) * kStripCols);
      }
      team.sync();  // (h whole; the last step's updates and penalty sums done; stop_now)
      if (team.lead() && pending_rows > 0) {
        total += (penal ? pending + penalty_value() : pending) * double(pending_rows);
        trained = pending_end;
        pending_rows = 0;
      }
      if (stop_now) break;
      // This thread's rows of the output and of the loss gradient.
      int64_t r0, r1;
      team.rows(nb, kTeamLossRowAlign, r0, r1);
      {
        // (the whole product, shared as a team shares it: core/team.h; meets at its end)
        const TeamScope scope(&team);
        gemm<T>(Trans::N, Trans::N, nb, k, h, T(1), sw.h, h, P + w2_off, k, T(0), out_.data(),
                k);
      }
      if (r1 > r0)
        bias_act_forward<T>(out_.data() + r0 * k, nullptr, P + b2_off, r1 - r0, k, k,
                            Act::identity, T(0));
      Target<T> tb;
      tb.values = t.values ? mine.yb.data() : nullptr;
      tb.labels = t.labels ? mine.lb.data() : nullptr;
      tb.weight = t.weight ? mine.wb.data() : nullptr;
      double inv_w = 0.0;
      loss_rows<T>(dout_.data(), out_.data(), tb.values, tb.labels, tb.weight, nb, k, loss, r0,
                   r1, loss_terms_.data() + r0, &inv_w);
      team.sync();  // (dz2 whole)
      if (team.lead()) {
        double v = 0.0;
        for (int64_t i = 0; i < nb; ++i) v += loss_terms_[size_t(i)];
        pending = v * inv_w;
        pending_rows = nb;
        pending_end = pos + nb;
        ++step_counter_;
        ++steps_done;
        // db2 from a copy of dz2 (the kernel writes its input; the others read dz2 now)
        std::memcpy(mine.dz2.data(), dout_.data(), sizeof(T) * size_t(nb * k));
        act_backward_bias<T>(mine.dz2.data(), G + b2_off, nullptr, out_.data(), nb, k,
                             Act::identity, T(0));
      }
      // The strips' gradients and updates.
      for (int64_t s = s0; s < s1; ++s) {
        auto& S = sw.strips[size_t(s)];
        const int64_t c0 = s * kStripCols;
        gemm<T>(Trans::N, Trans::T, nb, kStripCols, k, T(1), dout_.data(), k,
                P + w2_off + c0 * k, k, T(0), S.da, kStripCols);
        act_backward_bias<T>(S.da, S.gb, S.z, S.a, nb, kStripCols, act, alpha);
        gemm<T>(Trans::T, Trans::N, kStripCols, k, nb, T(1), S.a, kStripCols, dout_.data(), k,
                T(0), G + w2_off + c0 * k, k);
        gemm<T>(Trans::T, Trans::N, d, kStripCols, nb, T(1), mine.xb, d, S.da, kStripCols,
                T(0), S.g, kStripCols);
        // W1's strip: its blocks (row blocks of this strip: the arena's penalty blocks)
        if (penal)
          for (int64_t i0 = 0; i0 < d; i0 += rb1) {
            const int64_t r = std::min(rb1, d - i0);
            penalised_block(S.w + i0 * kStripCols, S.g + i0 * kStripCols,
                            S.sw.offset(i0 * kStripCols), r, kStripCols, kStripCols,
                            i0 / rb1 * nseg1 + s, cfg, ostep);
          }
        if (!folds) plain(S.w, S.g, d * kStripCols, cfg, S.sw, ostep);
        plain(S.b, S.gb, kStripCols, cfg, S.sb, ostep);
        // W2's rows of this strip (whole rows: blocks of a power of two <= 64 rows)
        T* p2 = P + w2_off;
        T* g2 = G + w2_off;
        if (penal)
          for_blocks(k, c0, c0 + kStripCols,
                     [&](int64_t i0, int64_t r, int64_t cc, int64_t w, int64_t blk) {
                       const int64_t off = i0 * k + cc;
                       penalised_block(p2 + off, g2 + off, st.offset(w2_off + off), r, w, k,
                                       w1_blocks + blk, cfg, ostep);
                     });
        if (!folds)
          plain(p2 + c0 * k, g2 + c0 * k, kStripCols * k, cfg, st.offset(w2_off + c0 * k),
                ostep);
      }
      if (team.lead())
        plain(P + b2_off, G + b2_off, k, cfg, st.offset(b2_off), ostep);
    }
    team.sync();  // (every update and penalty sum of the last step done)
    if (team.lead() && pending_rows > 0) {
      total += (penal ? pending + penalty_value() : pending) * double(pending_rows);
      trained = pending_end;
      pending_rows = 0;
    }
    long_waits.fetch_add(team.long_waits, std::memory_order_relaxed);
  }
  opt_state_.step = step0 + steps_done;
  split_copy(false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  if (double(long_waits.load()) * kLongWaitSeconds > 0.25 * seconds) team_backoff_ = kTeamBackoff;
  return total;
}

#define FASTBP_INST(T)                                                                      \
  template bool Network<T>::split_fits(int64_t, int64_t) const;                             \
  template void Network<T>::split_reserve(int64_t, int);                                    \
  template void Network<T>::split_copy(bool);                                               \
  template double Network<T>::fit_epoch_split(const T*, const Target<T>&, int64_t, int64_t, \
                                              const double*, const LossArgs&,               \
                                              const PenaltyArgs&, const std::atomic<bool>*, \
                                              int, int64_t&);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
