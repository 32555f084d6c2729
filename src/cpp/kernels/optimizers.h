// Optimizers: one flat pass over the whole parameter arena (torch.optim update rules).
//   param, grad: (count);  state arrays: (count) each, named as torch names them.
// The grad array may be modified (weight decay is folded into it, as torch does).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fastbp {

enum class OptKind : int { sgd = 0, adam, adamw, rmsprop, adagrad };

OptKind opt_from_name(const std::string& name);  // throws std::invalid_argument
const char* opt_name(OptKind kind);

struct OptConfig {
  OptKind kind = OptKind::sgd;
  double lr = 1e-3;
  double momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
  double alpha = 0.99;  // rmsprop smoothing
  bool centered = false;
  double lr_decay = 0.0, initial_accumulator_value = 0.0;  // adagrad
  double clip_value = 0.0;  // > 0: clamp every gradient to [-v, v]
  double clip_norm = 0.0;   // > 0: rescale the gradient to this global L2 norm at most
};

template <typename T>
struct OptState {
  int64_t step = 0;
  std::vector<std::string> names;       // state array names, in a fixed order
  std::vector<std::vector<T>> arrays;   // one per name, each `count` long
  std::vector<T>* find(const std::string& name);
};

// The state arrays a configuration needs (names in order), with their initial values.
std::vector<std::pair<std::string, double>> opt_state_layout(const OptConfig& cfg);

// Clip by value, then by global norm; returns the global norm before norm-clipping.
template <typename T>
double clip_gradients(T* grad, int64_t count, const OptConfig& cfg);

template <typename T>
void opt_step(T* param, T* grad, int64_t count, const OptConfig& cfg, OptState<T>& state);

}  // namespace fastbp
