#include "nn/network.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "core/kernel_set.h"
#include "core/platform.h"
#include "core/rng.h"
#include "nn/layer_table.h"

namespace fastbp {

template <typename T>
Network<T>::Network(const std::vector<LayerSpec>& spec, uint64_t seed)
    : body_(spec, layer_count_), seed_(seed) {
  has_batchnorm_ = spec_has_batch_statistics(spec);
  first_dense_ = !spec.empty() && spec.front().type == "dense";
  layer_shapes(spec, pinfo_, binfo_);
  int64_t np = 0, nb = 0;
  for (const auto& p : pinfo_) {
    if (p.penalised) penalised_.emplace_back(np, p.size());
    np += p.size();
  }
  for (const auto& b : binfo_) nb += b.size();
  params_.assign(size_t(np), T(0));
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
                                    const CsrRows& csr, bool probe) {
  if (has_batchnorm_ && n < 2)
    throw std::invalid_argument(
        "batchnorm needs more than 1 sample per batch in training (got a batch of 1)");
  reserve(n);
  Ctx ctx;
  ctx.training = true;
  ctx.seed = seed_;
  ctx.step = probe ? step_counter_ : step_counter_++;
  ctx.update_state = !probe;
  ctx.csr = csr;
  body_.forward(x, out_.data(), n, ctx);
  double value = loss_forward_backward<T>(dout_.data(), out_.data(), t.values, t.labels,
                                          t.weight, n, out_dim(), loss);
  body_.backward(x, out_.data(), dout_.data(), nullptr, n, ctx);
  if (pen.l1 != 0.0 || pen.l2 != 0.0) value += add_penalty(pen);
  return value;
}

// g += l1 * sign(w) + l2 * w on the penalised ranges; returns l1 * sum|w| + l2/2 * sum w^2,
// in one pass of the active ISA's penalty kernel (core/kernel_set.h PenaltyFn): the sums run
// in kPenaltyLanes interleaved double accumulators added in lane order at the end, a fixed
// order that does not depend on the thread count.
template <typename T>
double Network<T>::add_penalty(const PenaltyArgs& pen) {
  const PenaltyFn<T> pass = kernels().slots<T>().penalty;
  double a1[kPenaltyLanes] = {}, a2[kPenaltyLanes] = {};
  for (const auto& r : penalised_)
    pass(grads_.data() + r.first, params_.data() + r.first, r.second, T(pen.l1), T(pen.l2), a1,
         a2);
  double s1 = 0.0, s2 = 0.0;
  for (int l = 0; l < kPenaltyLanes; ++l) {
    s1 += a1[l];
    s2 += a2[l];
  }
  return pen.l1 * s1 + 0.5 * pen.l2 * s2;
}

template <typename T>
void Network<T>::update() {
  const int64_t n = int64_t(params_.size());
  clip_gradients<T>(grads_.data(), n, opt_);
  opt_step<T>(params_.data(), grads_.data(), n, opt_, opt_state_);
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
  const double v = forward_backward(x, t, n, loss, pen);
  update();
  return v;
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
  epoch_order(N, shuffle);
  const double saved_lr = opt_.lr;
  double total = 0.0;
  int64_t step = 0, start = 0;
  for (; start < N; start += batch_size, ++step) {
    if (stop && stop->load(std::memory_order_relaxed)) break;
    const int64_t nb = std::min(batch_size, N - start);
    for (int64_t r = 0; r < nb; ++r) {
      const int64_t src = perm_[start + r];
      std::copy(X + src * d, X + (src + 1) * d, xb_.data() + r * d);
      if (t.values) std::copy(t.values + src * k, t.values + (src + 1) * k, yb_.data() + r * k);
      if (t.labels) lb_[r] = t.labels[src];
      if (t.weight) wb_[r] = t.weight[src];
    }
    Target<T> tb;
    tb.values = t.values ? yb_.data() : nullptr;
    tb.labels = t.labels ? lb_.data() : nullptr;
    tb.weight = t.weight ? wb_.data() : nullptr;
    if (lrs) opt_.lr = lrs[step];
    total += forward_backward(xb_.data(), tb, nb, loss, pen) * double(nb);
    update();
  }
  if (lrs) opt_.lr = saved_lr;
  return start > 0 ? total / double(std::min(start, N)) : 0.0;
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
    fresh.arrays.emplace_back(params_.size(), T(e.second));
  }
  opt_state_ = std::move(fresh);
  opt_ = cfg;
}

template class Network<float>;
template class Network<double>;

}  // namespace fastbp
