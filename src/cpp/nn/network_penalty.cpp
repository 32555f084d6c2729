// The L1/L2 penalty folded into the optimizer's update (docs/ENGINE.md, "Penalties"): one pass
// over the arena in which each penalised weight's gradient is penalised in registers and its
// sums formed (KernelSlots::opt_penalised), instead of the penalty pass (add_penalty) and then
// the update. The same parameters, optimizer state and loss as those two passes, on one thread
// or shared by a team or a region: every element gets the same operations whoever updates it,
// and the sums are kept per block and added in block order.
#include <algorithm>

#include "core/kernel_set.h"
#include "core/threading.h"
#include "nn/fused_update.h"
#include "nn/network.h"

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastbp {

// A step folds its penalty when there is one, the optimizer has a folded form (Adam, AdamW on
// the AVX2 and AVX-512 kernel sets) and nothing clips (clipping needs the whole penalised
// gradient before the update).
template <typename T>
bool Network<T>::penalty_folds(const PenaltyArgs& pen) const {
  return (pen.l1 != 0.0 || pen.l2 != 0.0) && opt_.clip_value == 0.0 && opt_.clip_norm == 0.0 &&
         kernels().slots<T>().opt_penalised[static_cast<int>(opt_.kind)] != nullptr;
}

template <typename T>
bool Network<T>::gradient_written_whole(const PenaltyArgs& pen) const {
  return ((pen.l1 != 0.0 || pen.l2 != 0.0) && !penalty_folds(pen)) || opt_writes_gradient(opt_);
}

// The items: every block of every penalised weight (for_blocks, as add_penalty takes them),
// and what lies between them in pieces of at most `chunk` elements, in arena order.
template <typename T>
void Network<T>::fold_items(int64_t chunk) {
  items_.clear();
  const auto rest = [&](int64_t a, int64_t b) {
    for (; a < b; a += chunk) items_.push_back({a, 1, std::min(chunk, b - a), 0, -1});
  };
  int64_t at = 0;
  for (const auto& e : penalised_weights_) {
    rest(at, e.offset);
    for_blocks(e.cols, 0, e.rows, [&](int64_t i0, int64_t r, int64_t c0, int64_t w, int64_t b) {
      items_.push_back({e.offset + i0 * e.cols + c0, r, w, e.cols, e.first_block + b});
    });
    at = e.offset + e.rows * e.cols;
  }
  rest(at, int64_t(params_.size()));
  item_start_.assign(items_.size() + 1, 0);
  for (size_t i = 0; i < items_.size(); ++i)
    item_start_[i + 1] = item_start_[i] + items_[i].r * items_[i].w;
}

// The items of `share`: those that start in its part of the arena (by elements).
template <typename T>
void Network<T>::fold_share(T l1, T l2, int64_t step, const Team& share) {
  const KernelSlots<T>& k = kernels().slots<T>();
  const PenOptStepFn<T> folded = k.opt_penalised[static_cast<int>(opt_.kind)];
  const OptStepFn<T> plain = k.opt_step[static_cast<int>(opt_.kind)];
  const OptSlots<T> st = opt_state_.pointers();
  T* p = params_.data();
  T* g = grads_.data();
  const int64_t n = item_start_.back();
  const auto first = [&](int64_t t) {
    const int64_t at = t * n / share.nt;
    return size_t(std::lower_bound(item_start_.begin(), item_start_.end() - 1, at) -
                  item_start_.begin());
  };
  for (size_t i = first(share.t), e = first(share.t + 1); i < e; ++i) {
    const FoldItem& it = items_[i];
    if (it.block < 0) {
      plain(p + it.off, g + it.off, it.w, opt_, st.offset(it.off), step);
      continue;
    }
    double* sums = fused_parts_.data() + 2 * it.block;
    block_fold(folded, p + it.off, g + it.off, st.offset(it.off), it.r, it.w, it.ld, opt_, step,
               l1, l2, sums[0], sums[1]);
  }
}

// add_penalty and then update, in one pass (see the top of this file). Every thread of `team`
// calls it after backward; alone, an arena of kOptRegionMinParams+ is shared by a region of
// its own when may_open_region (as update() would share it). Returns the penalty to the first
// thread (the value add_penalty returns).
template <typename T>
double Network<T>::update_penalised(const PenaltyArgs& pen, const Team& team,
                                    bool may_open_region) {
  const T l1 = T(pen.l1), l2 = T(pen.l2);
  const int64_t step = opt_state_.step + 1;
  team.sync();  // (every gradient is formed)
  const int nthreads =
      team.nt == 1 ? opt_region_threads(int64_t(params_.size()), may_open_region) : 1;
  if (nthreads > 1) {
#ifdef FASTBP_HAVE_OPENMP
#pragma omp parallel num_threads(nthreads)
    fold_share(l1, l2, step, Team{omp_get_thread_num(), omp_get_num_threads()});
#endif
  } else {
    fold_share(l1, l2, step, team);
  }
  team.sync();  // (every block is updated and its sums stored; every thread has read the step)
  if (!team.lead()) return 0.0;
  opt_state_.step = step;
  return parts_penalty(fused_parts_.data(), int64_t(fused_parts_.size()) / 2, pen.l1, pen.l2);
}

#define FASTBP_INST(T)                                                                   \
  template bool Network<T>::penalty_folds(const PenaltyArgs&) const;                     \
  template bool Network<T>::gradient_written_whole(const PenaltyArgs&) const;            \
  template void Network<T>::fold_items(int64_t);                                         \
  template void Network<T>::fold_share(T, T, int64_t, const Team&);                      \
  template double Network<T>::update_penalised(const PenaltyArgs&, const Team&, bool);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
