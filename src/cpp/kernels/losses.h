// Losses on logits, forward and backward fused: returns the (weighted) mean loss and writes
// dlogits = d loss / d logits.
//   logits, dlogits: (n, k) row-major;  target: (n, k) values, or labels (n) int64;
//   weight: (n) or null.
// Mean reduction: loss = sum_i w_i l_i / sum_i w_i (w_i = 1 without weights), where l_i is
// sample i's loss averaged over its k outputs (mse, mae, huber, bce, poisson) or its
// cross-entropy (softmax_cross_entropy). Without weights this is torch's 'mean'.
// poisson: the half Poisson deviance with a log link on logits z (predictions exp(z)),
// exp(z) - y z + y log(y) - y (0 for a perfect prediction, y >= 0); gradient exp(z) - y.
#pragma once
#include <cstdint>
#include <string>

#include "core/names.h"

namespace fastbp {

enum class LossKind : int { mse = 0, mae, huber, bce, softmax_ce, poisson };

struct LossArgs {
  LossKind kind = LossKind::mse;
  double delta = 1.0;  // huber
};

// The loss registry, one row per LossKind in enum order (nn/registry.cpp parses names with it,
// fastbp._core.registry() exports it): the name, the one parameter (nullptr: none) with its
// default and its LossArgs field, and whether integer class labels are accepted as targets.
struct LossInfo {
  LossKind kind;
  const char* name;
  const char* param;
  double param_default;
  double LossArgs::*param_field;
  bool labels;
};
inline constexpr LossInfo kLosses[] = {
    {LossKind::mse, "mse", nullptr, 0.0, nullptr, false},
    {LossKind::mae, "mae", nullptr, 0.0, nullptr, false},
    {LossKind::huber, "huber", "delta", 1.0, &LossArgs::delta, false},
    {LossKind::bce, "binary_cross_entropy", nullptr, 0.0, nullptr, false},
    {LossKind::softmax_ce, "softmax_cross_entropy", nullptr, 0.0, nullptr, true},
    {LossKind::poisson, "poisson", nullptr, 0.0, nullptr, false},
};
inline constexpr NameAlias kLossAliases[] = {
    {"l1", "mae"}, {"bce", "binary_cross_entropy"}, {"cross_entropy", "softmax_cross_entropy"}};

inline const LossInfo& loss_info(LossKind kind) { return kLosses[static_cast<int>(kind)]; }

template <typename T>
double loss_forward_backward(T* dlogits, const T* logits, const T* target,
                             const int64_t* labels, const T* weight, int64_t n, int64_t k,
                             const LossArgs& args);

// Rows [r0, r1) of loss_forward_backward's batch of n rows, for a thread team that shares the
// rows: their gradients, and each row's term w_i l_i in terms[i - r0] (if terms is not null);
// returns the sum of those terms in row order and 1 / (the n rows' total weight) in *inv_w (0
// when the weights sum to 0). loss_forward_backward is the sum of all n terms in row order
// times *inv_w: the same bits whoever formed the rows.
template <typename T>
double loss_rows(T* dlogits, const T* logits, const T* target, const int64_t* labels,
                 const T* weight, int64_t n, int64_t k, const LossArgs& args, int64_t r0,
                 int64_t r1, double* terms, double* inv_w);

}  // namespace fastbp
