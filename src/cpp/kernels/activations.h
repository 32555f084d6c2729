// Activation functions, forward and backward, elementwise (torch formulas).
//   forward:  a = f(z)                      z, a: (n*dim)
//   backward: dz = da * f'(z)   (in place on da; uses z, or a where the derivative is
//             expressible from the output: identity, sigmoid, tanh, relu)
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/names.h"

namespace fastbp {

enum class Act : int {
  identity = 0, sigmoid, tanh, relu, leaky_relu, elu, gelu, silu, softplus
};

// The activation registry, one row per Act in enum order (nn/registry.cpp parses names with
// it, fastbp._core.registry() exports it): the name, the one parameter (nullptr: none) with
// torch's default, and whether the backward needs the pre-activation z (otherwise the output
// a suffices).
struct ActInfo {
  Act act;
  const char* name;
  const char* param;
  double param_default;
  bool needs_z;
};
inline constexpr ActInfo kActivations[] = {
    {Act::identity, "identity", nullptr, 0.0, false},
    {Act::sigmoid, "sigmoid", nullptr, 0.0, false},
    {Act::tanh, "tanh", nullptr, 0.0, false},
    {Act::relu, "relu", nullptr, 0.0, false},
    {Act::leaky_relu, "leaky_relu", "alpha", 0.01, true},
    {Act::elu, "elu", "alpha", 1.0, true},
    {Act::gelu, "gelu", nullptr, 0.0, true},
    {Act::silu, "silu", nullptr, 0.0, true},
    {Act::softplus, "softplus", nullptr, 0.0, true},
};
inline constexpr NameAlias kActivationAliases[] = {{"linear", "identity"}, {"none", "identity"}};

inline const ActInfo& act_info(Act act) { return kActivations[static_cast<int>(act)]; }
inline bool act_needs_z(Act act) { return act_info(act).needs_z; }

template <typename T>
inline T sigmoid_scalar(T z) {
  if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

template <typename T>
inline T act_scalar(Act act, T z, T alpha) {
  switch (act) {
    case Act::identity: return z;
    case Act::sigmoid: return sigmoid_scalar(z);
    case Act::tanh: return std::tanh(z);
    case Act::relu: return z > T(0) ? z : T(0);
    case Act::leaky_relu: return z > T(0) ? z : alpha * z;
    case Act::elu: return z > T(0) ? z : alpha * std::expm1(z);
    case Act::gelu: return T(0.5) * z * (T(1) + std::erf(z * T(0.70710678118654752440)));
    case Act::silu: return z * sigmoid_scalar(z);
    case Act::softplus: return z > T(20) ? z : std::log1p(std::exp(z));
  }
  return z;
}

// Derivative f'(z) given z and a = f(z).
template <typename T>
inline T act_deriv_scalar(Act act, T z, T a, T alpha) {
  switch (act) {
    case Act::identity: return T(1);
    case Act::sigmoid: return a * (T(1) - a);
    case Act::tanh: return T(1) - a * a;
    case Act::relu: return a > T(0) ? T(1) : T(0);
    case Act::leaky_relu: return z > T(0) ? T(1) : alpha;
    case Act::elu: return z > T(0) ? T(1) : alpha * std::exp(z);
    case Act::gelu: {
      const T cdf = T(0.5) * (T(1) + std::erf(z * T(0.70710678118654752440)));
      const T pdf = std::exp(T(-0.5) * z * z) * T(0.39894228040143267794);
      return cdf + z * pdf;
    }
    case Act::silu: {
      const T s = sigmoid_scalar(z);
      return s * (T(1) + z * (T(1) - s));
    }
    case Act::softplus: return z > T(20) ? T(1) : sigmoid_scalar(z);
  }
  return T(1);
}

// y[i, j] = f(y[i, j] + bias[j]) for an (n x dim) row-major block with row stride ld; if
// z != nullptr the pre-activation is stored there (row stride dim) for the activations whose
// backward needs it (act_needs_z); identity and relu never store it.
template <typename T>
void bias_act_forward(T* y, T* z, const T* bias, int64_t n, int64_t dim, int64_t ld, Act act,
                      T alpha);

// da[i] *= f'(z[i]) over count elements (z may be null when !act_needs_z(act)).
template <typename T>
void act_backward(T* da, const T* z, const T* a, int64_t count, Act act, T alpha);

// Fused Dense backward epilogue, one sweep over dy (n x dim): dy[i, j] *= f'(z[i, j]) and
// db[j] = sum_i dy[i, j] (rows summed in order: deterministic).
template <typename T>
void act_backward_bias(T* dy, T* db, const T* z, const T* a, int64_t n, int64_t dim, Act act,
                       T alpha);

// Standalone activation: a = f(z) over count elements (a may alias z).
template <typename T>
void act_forward(T* a, const T* z, int64_t count, Act act, T alpha);

}  // namespace fastbp
