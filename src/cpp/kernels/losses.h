// Losses on logits, forward and backward fused: returns the (weighted) mean loss and writes
// dlogits = d loss / d logits.
//   logits, dlogits: (n, k) row-major;  target: (n, k) values, or labels (n) int64;
//   weight: (n) or null.
// Mean reduction: loss = sum_i w_i l_i / sum_i w_i (w_i = 1 without weights), where l_i is
// sample i's loss averaged over its k outputs (mse, mae, huber, bce) or its cross-entropy
// (softmax_cross_entropy). Without weights this is torch's 'mean'.
#pragma once
#include <cstdint>
#include <string>

namespace fastbp {

enum class LossKind : int { mse = 0, mae, huber, bce, softmax_ce };

LossKind loss_from_name(const std::string& name);  // throws std::invalid_argument
const char* loss_name(LossKind kind);

struct LossArgs {
  LossKind kind = LossKind::mse;
  double delta = 1.0;  // huber
};

template <typename T>
double loss_forward_backward(T* dlogits, const T* logits, const T* target,
                             const int64_t* labels, const T* weight, int64_t n, int64_t k,
                             const LossArgs& args);

}  // namespace fastbp
