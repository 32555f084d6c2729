#include "nn/network.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "core/kernel_set.h"
#include "core/platform.h"
#include "core/rng.h"
#include "core/threading.h"
#include "nn/fused_update.h"
#include "nn/layer_table.h"

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastbp {

// A batch of one row of a network of dense layers with at least kRowUnitsMinParams
// parameters computes its wide weights by row units (nn/fused_update.h), and runs on a team
// whose threads update their own units inside backward (the fused update), unless the
// gradient is clipped (clipping needs the whole gradient first). On one thread the step is
// not fused: the unfused step gives the same bits (the same operations on every element) and
// was faster there. Measured on the Zen 4 VM, batch-1 256-512-10 with Adam, per fit step: 60.8
// us unfused on one thread; 62.7 us fused on one thread; 38.7-40.2 us fused on two. At
// batches of 2 and 4 rows a fused form (2-4 terms per gradient element) was 1.1-1.3x slower.
constexpr int64_t kRowUnitsMinParams = 65536;

template <typename T>
Network<T>::Network(const std::vector<LayerSpec>& spec, uint64_t seed)
    : body_(spec, layer_count_), seed_(seed) {
  has_batchnorm_ = spec_has_batch_statistics(spec);
  first_dense_ = !spec.empty() && spec.front().type == "dense";
  layer_shapes(spec, pinfo_, binfo_);
  int64_t np = 0, nb = 0;
  int64_t blocks = 0;
  for (const auto& p : pinfo_) {
    if (p.penalised) {  // (dense weights: in x out)
      macs_per_row_ += double(p.size());
      const int64_t rows = p.shape.front(), cols = p.shape.back();
      penalised_weights_.push_back({np, rows, cols, blocks});
      blocks += fused_blocks(rows, cols);
    }
    np += p.size();
  }
  team_capable_ = body_.team_capable();
  // (row units and the fused update are dense layers' own: a network of dense layers only)
  const bool all_dense = std::all_of(spec.begin(), spec.end(),
                                     [](const LayerSpec& s) { return s.type == "dense"; });
  row_units_ = team_capable_ && all_dense && np >= kRowUnitsMinParams;
  // (nn/network_rows.cpp: its layers' weights are the penalised weights, in order)
  rows_capable_ = team_capable_ && all_dense;
  // (hidden units by strips, nn/network_split.cpp: two dense layers, the output's activation
  // the identity, the hidden width whole strip blocks)
  if (all_dense && spec.size() == 2 && spec[1].act == Act::identity &&
      strip_blocks(spec[0].out)) {
    split_capable_ = true;
    split_hidden_ = spec[0].out;
    split_act_ = spec[0].act;
    split_alpha_ = T(spec[0].alpha);
  }
  fused_parts_.assign(size_t(2 * blocks), 0.0);  // (a fused or folded step's block sums)
  for (const auto& b : binfo_) nb += b.size();
  params_.assign(size_t(np), T(0));
  fold_items(kChunkElems);  // (after params_: its size ends the last item)
  grads_.assign(size_t(np), T(0));
  buffers_.assign(size_t(nb), T(0));
  ArenaCursor<T> cursor{params_.data(), grads_.data(), buffers_.data(), pinfo_.data(),
                        binfo_.data()};
  body_.bind(cursor);
  set_optimizer(OptConfig{});
}

template <typename T>
void Network<T>::reserve(int64_t n) {
  if (n <= reserved_) return;
  body_.reserve(n);
  out_.resize(size_t(n * out_dim()));
  dout_.resize(size_t(n * out_dim()));
  loss_terms_.resize(size_t(n));
  reserved_ = n;
}

template <typename T>
std::mutex& Network<T>::mutex() {
  const int64_t busy = busy_pid_.load();
  if (busy != 0 && busy != process_id())
    throw std::runtime_error(
        "this model was in use by another thread when the process forked: its state in the "
        "child is undefined (use a fresh or a loaded model in the child)");
  return mu_;
}

template <typename T>
int64_t Network<T>::predict_budget_rows() const {
  const int64_t per_row = std::max<int64_t>(1, row_elems) * int64_t(sizeof(T));
  return std::max(kPredictMinRows, kPredictWorkspaceBytes / per_row);
}

template <typename T>
void Network<T>::predict(const T* x, T* out, int64_t n) {
  BusyMark busy(busy_pid_);
  // Inference rows are independent: bounded chunks give the rows of one big call, with a
  // workspace that does not grow with n.
  const int64_t chunk = std::max(reserved_, predict_budget_rows());
  reserve(std::min(n, chunk));
  Ctx ctx;
  ctx.training = false;
  for (int64_t r = 0; r < n; r += chunk) {
    const int64_t m = std::min(chunk, n - r);
    body_.forward(x + r * in_dim(), out + r * out_dim(), m, ctx);
  }
}

template <typename T>
double Network<T>::forward_backward(const T* x, const Target<T>& t, int64_t n,
                                    const LossArgs& loss, const PenaltyArgs& pen,
                                    const CsrRows& csr, bool probe, const Team& team,
                                    bool fused) {
  if (has_batchnorm_ && n < 2)  // (never in a team: team_threads keeps such a batch alone)
    throw std::invalid_argument(
        "batchnorm needs more than 1 sample per batch in training (got a batch of 1)");
  reserve(n);  // (a team's caller reserved already: no allocation in a team region)
  Ctx ctx;
  ctx.training = true;
  ctx.seed = seed_;
  ctx.step = step_counter_;
  ctx.update_state = !probe;
  ctx.csr = csr;
  ctx.team = team.nt > 1 ? &team : nullptr;
  ctx.row_units = row_units_ && n == 1 && csr.values == nullptr;  // (not for sparse input)
  FusedUpdate<T> fu;
  if (fused) {
    fu.k = &kernels().slots<T>();
    fu.kernel = fu.k->opt_step[static_cast<int>(opt_.kind)];
    fu.cfg = &opt_;
    fu.state = opt_state_.pointers();
    fu.base = params_.data();
    fu.step = opt_state_.step + 1;
    fu.l1 = T(pen.l1);
    fu.l2 = T(pen.l2);
    fu.penalised = &penalised_weights_;
    fu.parts = fused_parts_.data();
    ctx.fused = &fu;
  }
  body_.forward(x, out_.data(), n, ctx);
  double value = 0.0;
  if (team.nt > 1 && n >= kTeamLossMinRows)
    value = team_loss(t, n, loss, team);  // (the rows shared)
  else if (team.lead())
    value = loss_forward_backward<T>(dout_.data(), out_.data(), t.values, t.labels, t.weight, n,
                                     out_dim(), loss);
  if (team.lead() && !probe) ++step_counter_;  // (all have read it: forward ended on a barrier)
  team.sync();
  body_.backward(x, out_.data(), dout_.data(), nullptr, n, ctx);
  if (fused) {
    team.sync();  // (every block is updated and its penalty sums stored; all read the step)
    if (team.lead()) {
      opt_state_.step = fu.step;
      if (pen.l1 != 0.0 || pen.l2 != 0.0)
        value += parts_penalty(fused_parts_.data(), int64_t(fused_parts_.size()) / 2, pen.l1,
                               pen.l2);
    }
    return value;
  }
  if (team.lead() && (pen.l1 != 0.0 || pen.l2 != 0.0)) value += add_penalty(pen);
  return value;
}

// The loss of a batch on a team: each thread forms the gradient rows of its share and their
// terms (losses.h loss_rows), and the first thread adds the terms up in row order after they
// meet -- the value one thread gets. (Alone, the first thread took the whole loss while the
// others waited: 6.6 us of a 100 us digits step at a batch of 200 rows, with 10 classes.)
template <typename T>
double Network<T>::team_loss(const Target<T>& t, int64_t n, const LossArgs& loss,
                             const Team& team) {
  int64_t r0, r1;
  team.rows(n, kTeamLossRowAlign, r0, r1);
  double inv_w = 0.0;  // (every thread forms it, with or without rows)
  loss_rows<T>(dout_.data(), out_.data(), t.values, t.labels, t.weight, n, out_dim(), loss, r0,
               r1, loss_terms_.data() + r0, &inv_w);
  team.sync();
  if (!team.lead()) return 0.0;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += loss_terms_[size_t(i)];
  return total * inv_w;
}

// g += l1 * sign(w) + l2 * w on the penalised weights; returns l1 * sum|w| + l2/2 * sum w^2.
// The sums are formed per block of the fused update's decomposition (the penalised items of
// fold_items, nn/fused_update.h block_penalty, in kPenaltyLanes interleaved double lanes) and
// added in block order: a fixed order that does not depend on the thread count, and the same
// value a fused or folded step reports.
template <typename T>
double Network<T>::add_penalty(const PenaltyArgs& pen) {
  const KernelSlots<T>& k = kernels().slots<T>();
  const T l1 = T(pen.l1), l2 = T(pen.l2);
  double s1 = 0.0, s2 = 0.0;
  for (const FoldItem& it : items_) {
    if (it.block < 0) continue;
    double b1, b2;
    block_penalty(k, grads_.data() + it.off, it.ld, params_.data() + it.off, it.ld, it.r, it.w,
                  l1, l2, b1, b2);
    s1 += b1;
    s2 += b2;
  }
  return pen.l1 * s1 + 0.5 * pen.l2 * s2;
}

template <typename T>
void Network<T>::update(const Team& team, bool may_open_region, bool shared) {
  const int64_t n = int64_t(params_.size());
  if (team.lead()) clip_gradients<T>(grads_.data(), n, opt_);
  team.sync();  // (the penalty and the clipping are in the gradient)
  // (splits over the team; alone, opens its own region for a large arena if allowed)
  // (row units: every element by the loop's vector body, the bits of the fused update)
  opt_step<T>(params_.data(), grads_.data(), n, opt_, opt_state_, may_open_region, row_units_,
              shared);
}

// The thread policy of a network a team can run (team_capable: dense layers, and activation,
// dropout, norm and residual layers around them), measured on the 2-vCPU Zen 4
// VM (docs/ENGINE.md "Threads"): a step of >= 5e5 multiply-adds per forward runs on a team
// (tanh 32-64x5-1 at batch 64, 1.2e6: 1.35-1.4x; gelu, silu, mnist: 1.07-1.13x); a smaller
// one runs on ONE thread, its optimizer pass included, whatever the arena's size: the digits
// net (3e5) ran 0.94-0.96x on a team (~12 barriers, and the parameter and gradient lines
// moving between the cores every step cost what the halved work saves), and the batch-1
// 256-512-10 net (137k parameters) took 61 us per step alone, 69 us on a team and 83-90 us
// with only its optimizer pass split over 2 threads. A step the team shares by batch rows
// (nn/network_rows.cpp: two meetings, the update written around the caches) runs on a team
// from 2e5 (the digits step at batch 32: 1.14x; 20-64-64-10 at 48: 1.24x).
// (kTeamMinStepWork, kRowsMinStepWork: nn/network.h)

template <typename T>
bool Network<T>::fused_step(int64_t n) const {
  return row_units_ && n == 1 && opt_.clip_value == 0.0 && opt_.clip_norm == 0.0;
}

template <typename T>
int Network<T>::team_threads(int64_t n, int64_t key, bool by_rows) {
#ifdef FASTBP_HAVE_OPENMP
  // (batchnorm refuses a batch of one row: it throws, which a team region must not)
  if (!team_capable_ || omp_in_parallel() || (has_batchnorm_ && n < 2)) return 1;
  // (row units: nn/fused_update.h)
  const double min_work = by_rows ? kRowsMinStepWork : kTeamMinStepWork;
  const int threads = fused_step(n) || double(n) * macs_per_row_ >= min_work
                          ? get_num_threads()
                          : 1;
  if (threads < 2) return threads;
  return backoff_.allows() ? probe_.threads_for(key, threads) : 0;
#else
  (void)n;
  (void)key;
  return 1;
#endif
}

// A team kept off its cores backs the network off to one thread for a while (core/team.h
// TeamBackoff): the same results, the thread count never changes them.
template <typename T>
template <typename F>
void Network<T>::run_team(int threads, int64_t key, F&& body) {
  if (threads < 2) {
    const SerialScope serial(threads <= 0);
    if (threads != TeamProbe::kProbe) {
      body(kSoloTeam);
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    body(kSoloTeam);
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    if (probe_.record(key, true, ns)) backoff_.back_off();
    return;
  }
#ifdef FASTBP_HAVE_OPENMP
  SpinBarrier bar;
  int team_size = threads;
  RegionClock region_clock(backoff_);
#pragma omp parallel num_threads(threads)
  {
    const int64_t cpu0 = region_clock.sampled() ? thread_cpu_ns() : 0;
#pragma omp single
    {
      team_size = omp_get_num_threads();  // (the runtime may give fewer threads than asked)
      bar.resize(team_size);
    }
    const Team team{omp_get_thread_num(), omp_get_num_threads(), &bar};
    {
      const TeamScope scope(&team);
      body(team);
    }
    if (region_clock.sampled()) region_clock.add_thread(cpu0, thread_cpu_ns());
  }
  probe_.record(key, false, region_clock.record(team_size));
#endif
}

template <typename T>
double Network<T>::loss_and_gradients(const T* x, const Target<T>& t, int64_t n,
                                      const LossArgs& loss, const PenaltyArgs& pen, bool probe) {
  BusyMark busy(busy_pid_);
  return forward_backward(x, t, n, loss, pen, CsrRows{}, probe);
}

template <typename T>
double Network<T>::train_step(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                              const PenaltyArgs& pen) {
  BusyMark busy(busy_pid_);
  int rows_nt = 0, unused = 0;
  const int threads = step_threads(n, n, n, pen, rows_nt, unused);
  if (threads > 1) reserve(n);
  double v = 0.0;
  run_team(threads, n, [&](const Team& team) {
    const double value = train_batch(x, t, n, loss, pen, team, rows_nt);
    if (team.lead()) v = value;
  });
  return v;
}

template <typename T>
FASTBP_ALWAYS_INLINE double Network<T>::train_batch(const T* x, const Target<T>& t, int64_t n,
                                                    const LossArgs& loss, const PenaltyArgs& pen,
                                                    const Team& team, int rows_nt) {
  // (the batch shared by rows: nn/network_rows.cpp; rows_nt > 1 only where it fits)
  if (rows_nt > 1 && team.nt == rows_nt) return rows_step(x, t, n, loss, pen, team);
  // (one thread: unfused, the same bits; fused, backward updates the parameters itself)
  if (team.nt > 1 && fused_step(n))
    return forward_backward(x, t, n, loss, pen, CsrRows{}, false, team, true);
  // (a dense network off its team: one thread; a small one as a chain of kernel calls)
  const bool chain = team.nt == 1 && chain_fits(n);
  return backward_and_update(pen, team, !team_capable_, [&](const PenaltyArgs& p) {
    return chain ? chain_forward_backward(x, t, n, loss, p)
                 : forward_backward(x, t, n, loss, p, CsrRows{}, false, team);
  });
}

template <typename T>
double Network<T>::fit_epoch(const T* X, const Target<T>& t, int64_t N, int64_t batch_size,
                             bool shuffle, const double* lrs, const LossArgs& loss,
                             const PenaltyArgs& pen, const std::atomic<bool>* stop) {
  BusyMark busy(busy_pid_);
  if (batch_size < 1) throw std::invalid_argument("batch_size must be >= 1");
  if (batch_size > N) batch_size = N;
  // (batch_size == 1 too: then every mini-batch holds 1 sample -- found by tests/test_fuzz.py:
  // the error used to come from the first step, after the epoch counter had advanced)
  if (has_batchnorm_ && (batch_size < 2 || N % batch_size == 1))
    throw std::invalid_argument(
        "batchnorm: the last mini-batch would hold 1 sample; choose another batch_size");
  const int64_t d = in_dim(), k = out_dim();
  // Allocate everything first: an allocation failure (std::bad_alloc) must leave the network
  // exactly as it was (no counter advanced, no parameter touched).
  perm_.resize(size_t(N));
  xb_.resize(size_t(batch_size * d));
  if (t.values) yb_.resize(size_t(batch_size * k));
  if (t.labels) lb_.resize(size_t(batch_size));
  if (t.weight) wb_.resize(size_t(batch_size));
  reserve(batch_size);
  // (hidden units by strips, nn/network_split.cpp: the same results as the loop below)
  const bool split = split_fits(N, batch_size);
  const int split_threads =
      split ? std::min<int>(get_num_threads(), int(split_hidden_ / kStripCols)) : 1;
  if (split) split_reserve(batch_size, split_threads);
  epoch_order(N, shuffle);
  double total = 0.0;
  int64_t start = 0;  // rows trained
  int64_t first = 0;  // the first mini-batch (its row) the loop below trains
  if (split) {
    bool stopped = false;
    first = fit_epoch_split(X, t, N, batch_size, lrs, loss, pen, stop, split_threads, total,
                            start, stopped);
    if (stopped || first >= N) return start > 0 ? total / double(start) : 0.0;
  }
  const double saved_lr = opt_.lr;
  bool stop_now = false;   // the first thread's decision before each mini-batch
  const int64_t key = -1 - (N * 1000003 + batch_size);  // (an epoch's shape for TeamProbe)
  int rows_nt = 0, rows_last = 0;
  const int threads = step_threads(N, batch_size, key, pen, rows_nt, rows_last);
  run_team(threads, key, [&](const Team& team) {
    for (int64_t pos = first, step = first / batch_size; pos < N; pos += batch_size, ++step) {
      const int64_t nb = std::min(batch_size, N - pos);
      if (team.lead()) {
        stop_now = stop && stop->load(std::memory_order_relaxed);
        if (lrs && !stop_now) opt_.lr = lrs[step];
      }
      int64_t r0, r1;
      team.rows(nb, 1, r0, r1);
      gather(X, t, pos, r0, r1);
      team.sync();
      if (stop_now) break;  // (all threads: it is written again only after further barriers)
      Target<T> tb;
      tb.values = t.values ? yb_.data() : nullptr;
      tb.labels = t.labels ? lb_.data() : nullptr;
      tb.weight = t.weight ? wb_.data() : nullptr;
      const double v =
          train_batch(xb_.data(), tb, nb, loss, pen, team, nb == batch_size ? rows_nt : rows_last);
      if (team.lead()) {
        total += v * double(nb);
        start = pos + nb;
      }
    }
  });
  if (lrs) opt_.lr = saved_lr;
  return start > 0 ? total / double(std::min(start, N)) : 0.0;
}

// The team of the steps of N rows in batches of batch_size (team_threads; a train_step: N ==
// batch_size), and whether it shares the full batches and the last one by batch rows
// (rows_team, which pays from a smaller step: the team size, or 0).
template <typename T>
int Network<T>::step_threads(int64_t N, int64_t batch_size, int64_t key,
                              const PenaltyArgs& pen, int& rows_full, int& rows_last) {
  const int by_rows = rows_team(batch_size, get_num_threads(), pen);
  const int threads = team_threads(batch_size, key, by_rows > 1);
  rows_full = threads == by_rows ? by_rows : 0;
  rows_last = N % batch_size && rows_full > 1 ? rows_team(N % batch_size, threads, pen)
                                              : rows_full;
  return threads;
}

namespace {
// A row of up to 16 values by moves, longer ones by std::copy: a call to memmove cost more than
// the copy (the 2-4-1 net's gather of 2 inputs and 1 target per row was 6% of its step, an
// 8-16-16-1 net's of 8 inputs 5%). 5-16 values: two fixed-size copies of 4 or 8 values that
// overlap in the middle (a copy: the same values whatever the order).
template <typename T>
FASTBP_ALWAYS_INLINE void copy_row(const T* src, int64_t len, T* dst) {
  switch (len) {
    case 4: dst[3] = src[3]; [[fallthrough]];
    case 3: dst[2] = src[2]; [[fallthrough]];
    case 2: dst[1] = src[1]; [[fallthrough]];
    case 1: dst[0] = src[0]; [[fallthrough]];
    case 0: return;
    default: break;
  }
  if (len <= 8) {
    std::memcpy(dst, src, 4 * sizeof(T));
    std::memcpy(dst + len - 4, src + len - 4, 4 * sizeof(T));
  } else if (len <= 16) {
    std::memcpy(dst, src, 8 * sizeof(T));
    std::memcpy(dst + len - 8, src + len - 8, 8 * sizeof(T));
  } else {
    std::copy(src, src + len, dst);
  }
}
}  // namespace

template <typename T>
FASTBP_ALWAYS_INLINE void Network<T>::gather(const T* X, const Target<T>& t, int64_t start,
                                             int64_t r0, int64_t r1) {
  const int64_t d = in_dim(), k = out_dim();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t src = perm_[start + r];
    copy_row(X + src * d, d, xb_.data() + r * d);
    if (t.values) copy_row(t.values + src * k, k, yb_.data() + r * k);
    if (t.labels) lb_[r] = t.labels[src];
    if (t.weight) wb_[r] = t.weight[src];
  }
}

template <typename T>
void Network<T>::epoch_order(int64_t N, bool shuffle) {
  perm_.resize(size_t(N));
  if (shuffle) {
    shuffle_permutation(seed_, epoch_counter_, N, perm_.data());
    ++epoch_counter_;
  } else {
    for (int64_t i = 0; i < N; ++i) perm_[i] = i;
  }
}

template <typename T>
void Network<T>::set_optimizer(const OptConfig& cfg, bool reset) {
  const auto layout = opt_state_layout(cfg);
  bool same = cfg.kind == opt_.kind && layout.size() == opt_state_.slots.size();
  for (size_t i = 0; same && i < layout.size(); ++i)
    same = layout[i].first == opt_state_.slots[i];
  if (same && !reset) {
    opt_ = cfg;
    return;
  }
  // Build the new state aside and commit only when every allocation succeeded: a
  // std::bad_alloc here must not leave opt_ describing state arrays that do not exist.
  OptState<T> fresh;
  for (const auto& e : layout) {
    fresh.slots.push_back(e.first);
    fresh.arrays.emplace_back(params_.size(), T(e.second),
                              StreamAlloc<T>(kStateSlot0 + int(fresh.arrays.size())));
  }
  opt_state_ = std::move(fresh);
  opt_ = cfg;
}

template class Network<float>;
template class Network<double>;

}  // namespace fastbp
