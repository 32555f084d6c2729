// Activation functions, forward and backward, elementwise (torch formulas and torch's NaN
// behaviour: NaN in z gives NaN in f(z) for every activation; backward, NaN in z gives a NaN
// gradient except where torch's derivative rule selects a constant branch for it: relu passes
// da, leaky_relu passes alpha da).
//   forward:  a = f(z)                      z, a: (n*dim)
//   backward: dz = da * f'(z)   (in place on da; uses z, or a where the derivative is
//             expressible from the output: identity, sigmoid, tanh, relu)
//
//   name        f(z)                                f'(z)
//   identity    z                                   1
//   sigmoid     1 / (1 + exp(-z))                   a (1 - a)
//   tanh        tanh z                              1 - a^2
//   relu        z > 0 ? z : 0 (NaN -> NaN)          a <= 0 ? 0 : 1
//   leaky_relu  z > 0 ? z : alpha z                 z > 0 ? 1 : alpha
//   elu         z > 0 ? z : alpha expm1(z)          z > 0 ? 1 : alpha exp(z)
//   gelu        z Phi(z)                            Phi(z) + z phi(z)
//   silu        z sigmoid(z)                        s (1 + z (1 - s)),  s = sigmoid(z)
//   softplus    z > 20 ? z : log1p(exp z)           z > 20 ? 1 : sigmoid(z)
//   mish        z tanh(log1p(exp z))                t + z s (1 - t^2),  t = tanh(log1p(exp z))
//   hardswish   z min(max(z + 3, 0), 6) / 6         z <= -3 ? 0 : (z < 3 ? z/3 + 1/2 : 1)
//
// Every kernel is compiled per instruction set (activations_impl.h in activations_generic.cpp,
// activations_avx2.cpp, activations_avx512.cpp) on the vector math of vecmath.h; the functions
// below call the set of the active ISA (act_kernels()).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/names.h"

namespace fastbp {

enum class Act : int {
  identity = 0, sigmoid, tanh, relu, leaky_relu, elu, gelu, silu, softplus, mish, hardswish
};

// The activation registry, one row per Act in enum order (nn/registry.cpp parses names with
// it, fastbp._core.registry() exports it): the name, the one parameter (nullptr: none) with
// torch's default, whether the backward needs the pre-activation z (otherwise the output a
// suffices), and whether the derivative evaluates exp / erf per element (a thread team then
// shares it: nn/layers.cpp Dense::backward).
struct ActInfo {
  Act act;
  const char* name;
  const char* param;
  double param_default;
  bool needs_z;
  bool costly_backward;
};
inline constexpr ActInfo kActivations[] = {
    {Act::identity, "identity", nullptr, 0.0, false, false},
    {Act::sigmoid, "sigmoid", nullptr, 0.0, false, false},
    {Act::tanh, "tanh", nullptr, 0.0, false, false},
    {Act::relu, "relu", nullptr, 0.0, false, false},
    {Act::leaky_relu, "leaky_relu", "alpha", 0.01, true, false},
    {Act::elu, "elu", "alpha", 1.0, true, true},
    {Act::gelu, "gelu", nullptr, 0.0, true, true},
    {Act::silu, "silu", nullptr, 0.0, true, true},
    {Act::softplus, "softplus", nullptr, 0.0, true, true},
    {Act::mish, "mish", nullptr, 0.0, true, true},
    {Act::hardswish, "hardswish", nullptr, 0.0, true, false},
};
inline constexpr NameAlias kActivationAliases[] = {{"linear", "identity"}, {"none", "identity"}};

inline const ActInfo& act_info(Act act) { return kActivations[static_cast<int>(act)]; }
inline bool act_needs_z(Act act) { return act_info(act).needs_z; }

// The activation kernels of one instruction set (the signatures of the functions below).
template <typename T>
struct ActKernels {
  void (*bias_act_forward)(T*, T*, const T*, int64_t, int64_t, int64_t, Act, T);
  void (*act_backward)(T*, const T*, const T*, int64_t, Act, T);
  void (*act_backward_bias)(T*, T*, const T*, const T*, int64_t, int64_t, Act, T);
  void (*act_forward)(T*, const T*, int64_t, Act, T);
  void (*bias_grad)(T*, const T*, int64_t, int64_t, Act, T);
};

// The set of the active instruction set (core/cpu.h active_isa()).
template <typename T>
const ActKernels<T>& act_kernels();

// y[i, j] = f(y[i, j] + bias[j]) for an (n x dim) row-major block with row stride ld; if
// z != nullptr the pre-activation is stored there (row stride dim) for the activations whose
// backward needs it (act_needs_z); identity and relu never store it.
template <typename T>
inline void bias_act_forward(T* y, T* z, const T* bias, int64_t n, int64_t dim, int64_t ld,
                             Act act, T alpha) {
  act_kernels<T>().bias_act_forward(y, z, bias, n, dim, ld, act, alpha);
}

// da[i] *= f'(z[i]) over count elements (z may be null when !act_needs_z(act)).
template <typename T>
inline void act_backward(T* da, const T* z, const T* a, int64_t count, Act act, T alpha) {
  act_kernels<T>().act_backward(da, z, a, count, act, alpha);
}

// Fused Dense backward epilogue, one sweep over dy (n x dim): dy[i, j] *= f'(z[i, j]) and
// db[j] = sum_i dy[i, j] (rows summed in order: deterministic).
template <typename T>
inline void act_backward_bias(T* dy, T* db, const T* z, const T* a, int64_t n, int64_t dim,
                              Act act, T alpha) {
  act_kernels<T>().act_backward_bias(dy, db, z, a, n, dim, act, alpha);
}

// db[j] = sum_i dz[i, j] over an (n x dim) block of gradients already multiplied by f'
// (act_backward): the bits act_backward_bias gives db for the same dz, sums in its order
// (a thread team that formed dz by rows sums the columns afterwards: nn/network_rows.cpp).
template <typename T>
inline void bias_grad(T* db, const T* dz, int64_t n, int64_t dim, Act act, T alpha) {
  act_kernels<T>().bias_grad(db, dz, n, dim, act, alpha);
}
// Standalone activation: a = f(z) over count elements (a may alias z).
template <typename T>
inline void act_forward(T* a, const T* z, int64_t count, Act act, T alpha) {
  act_kernels<T>().act_forward(a, z, count, act, alpha);
}

}  // namespace fastbp
