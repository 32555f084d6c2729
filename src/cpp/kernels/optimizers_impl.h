// The optimizer update loops, compiled once per instruction set: this header is included by
// optimizers_generic.cpp (baseline), optimizers_avx2.cpp and optimizers_avx512.cpp (with their ISA
// flags), each inside its own namespace FASTBP_OPT_NS so the copies never mix at link time.
// Shapes: param, grad and every state array are the flat arena (n values).
#pragma once
#include <algorithm>
#include <cmath>

#include "kernels/optimizers.h"

#ifndef FASTBP_OPT_NS
#error "define FASTBP_OPT_NS before including optimizers_impl.h"
#endif

namespace fastbp {
namespace FASTBP_OPT_NS {

template <typename T>
void opt_step_kernel(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st,
                     int64_t step) {
  // p, g and the state pointers: this range of the arena; `step` is the step count after
  // this update (1 on the first).
  const bool first = step == 1;
  const T lr = T(c.lr);
  const T wd = T(c.weight_decay);
  if (c.weight_decay != 0.0 && c.kind != OptKind::adamw) {
    for (int64_t i = 0; i < n; ++i) g[i] += wd * p[i];
  }
  switch (c.kind) {
    case OptKind::sgd: {
      if (c.momentum == 0.0) {
        for (int64_t i = 0; i < n; ++i) p[i] -= lr * g[i];
        return;
      }
      T* buf = st[StateSlot::momentum_buffer];
      const T mom = T(c.momentum), damp = T(1.0 - c.dampening);
      for (int64_t i = 0; i < n; ++i) {
        buf[i] = first ? g[i] : mom * buf[i] + damp * g[i];
        const T d = c.nesterov ? g[i] + mom * buf[i] : buf[i];
        p[i] -= lr * d;
      }
      return;
    }
    case OptKind::adam:
    case OptKind::adamw: {
      if (c.kind == OptKind::adamw && c.weight_decay != 0.0) {
        const T f = T(1.0 - c.lr * c.weight_decay);
        for (int64_t i = 0; i < n; ++i) p[i] *= f;
      }
      T* m = st[StateSlot::exp_avg];
      T* v = st[StateSlot::exp_avg_sq];
      T* vmax = st[StateSlot::max_exp_avg_sq];
      const T b1 = T(c.beta1), b2 = T(c.beta2);
      const T one_b1 = T(1.0 - c.beta1), one_b2 = T(1.0 - c.beta2);
      const double bc1 = 1.0 - std::pow(c.beta1, double(step));
      const double bc2 = 1.0 - std::pow(c.beta2, double(step));
      const T step_size = T(c.lr / bc1);
      const T inv_bc2_sqrt = T(1.0 / std::sqrt(bc2));
      const T eps = T(c.eps);
      // Two loops rather than a branch per element, so the common (no amsgrad) loop
      // vectorises without masks; __restrict: the arena and the state never overlap.
      T* __restrict pr = p;
      const T* __restrict gr = g;
      T* __restrict mr = m;
      T* __restrict vr = v;
      if (vmax) {
        T* __restrict vm = vmax;
        for (int64_t i = 0; i < n; ++i) {
          mr[i] += one_b1 * (gr[i] - mr[i]);
          vr[i] = b2 * vr[i] + one_b2 * gr[i] * gr[i];
          vm[i] = std::max(vm[i], vr[i]);
          pr[i] -= step_size * mr[i] / (std::sqrt(vm[i]) * inv_bc2_sqrt + eps);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          mr[i] += one_b1 * (gr[i] - mr[i]);
          vr[i] = b2 * vr[i] + one_b2 * gr[i] * gr[i];
          pr[i] -= step_size * mr[i] / (std::sqrt(vr[i]) * inv_bc2_sqrt + eps);
        }
      }
      (void)b1;
      return;
    }
    case OptKind::rmsprop: {
      T* sq = st[StateSlot::square_avg];
      T* buf = st[StateSlot::momentum_buffer];
      T* ga = st[StateSlot::grad_avg];
      const T a = T(c.alpha), one_a = T(1.0 - c.alpha), eps = T(c.eps), mom = T(c.momentum);
      for (int64_t i = 0; i < n; ++i) {
        sq[i] = a * sq[i] + one_a * g[i] * g[i];
        T avg;
        if (ga) {
          ga[i] += one_a * (g[i] - ga[i]);
          avg = std::sqrt(sq[i] - ga[i] * ga[i]) + eps;
        } else {
          avg = std::sqrt(sq[i]) + eps;
        }
        if (buf) {
          buf[i] = mom * buf[i] + g[i] / avg;
          p[i] -= lr * buf[i];
        } else {
          p[i] -= lr * g[i] / avg;
        }
      }
      return;
    }
    case OptKind::adagrad: {
      T* s = st[StateSlot::sum];
      const T clr = T(c.lr / (1.0 + double(step - 1) * c.lr_decay));
      const T eps = T(c.eps);
      for (int64_t i = 0; i < n; ++i) {
        s[i] += g[i] * g[i];
        p[i] -= clr * g[i] / (std::sqrt(s[i]) + eps);
      }
      return;
    }
  }
}

#define FASTBP_OPT_INSTANTIATE                                                              \
  template void opt_step_kernel<float>(float*, float*, int64_t, const OptConfig&,          \
                                       const OptSlots<float>&, int64_t);                    \
  template void opt_step_kernel<double>(double*, double*, int64_t, const OptConfig&,       \
                                        const OptSlots<double>&, int64_t);

}  // namespace FASTBP_OPT_NS
}  // namespace fastbp
