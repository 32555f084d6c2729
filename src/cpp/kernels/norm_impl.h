// The norm layers' loops (kernels/norm.h), compiled once per instruction set: included by
// norm_generic.cpp, norm_avx2.cpp and norm_avx512.cpp inside namespace FASTBP_NORM_NS. The
// loops run over rows outside and columns inside, so the compiler widens the column loop to
// the ISA's vectors; every column keeps its own sums in row order.
#pragma once
#include <cmath>

#include "core/kernel_set.h"
#include "kernels/norm.h"

#ifndef FASTBP_NORM_NS
#error "define FASTBP_NORM_NS before including norm_impl.h"
#endif

namespace fastbp {
namespace FASTBP_NORM_NS {

template <typename T>
void bn_forward(const NormSpan<T>& a, const T* __restrict x, T* __restrict y, T* rmean,
                T* rvar, double eps, double momentum) {
  const int64_t n = a.n, d = a.d, c0 = a.c0, c1 = a.c1;
  double* __restrict acc = a.acc;
  double* __restrict acc2 = a.acc2;
  T* __restrict invstd = a.invstd;
  T* __restrict xhat = a.xhat;
  const T* __restrict gamma = a.gamma;
  const T* __restrict beta = a.beta;
  for (int64_t j = c0; j < c1; ++j) acc[j] = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = c0; j < c1; ++j) acc[j] += double(x[i * d + j]);
  for (int64_t j = c0; j < c1; ++j) acc[j] /= double(n);  // mean
  for (int64_t j = c0; j < c1; ++j) acc2[j] = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = c0; j < c1; ++j) {
      const double c = double(x[i * d + j]) - acc[j];
      acc2[j] += c * c;
    }
  for (int64_t j = c0; j < c1; ++j) {
    const double var = acc2[j] / double(n);
    invstd[j] = T(1.0 / std::sqrt(var + eps));
    if (rmean == nullptr) continue;
    const double unbiased = n > 1 ? acc2[j] / double(n - 1) : var;
    rmean[j] = T((1.0 - momentum) * double(rmean[j]) + momentum * acc[j]);
    rvar[j] = T((1.0 - momentum) * double(rvar[j]) + momentum * unbiased);
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = c0; j < c1; ++j) {
      const T xh = T((double(x[i * d + j]) - acc[j])) * invstd[j];
      xhat[i * d + j] = xh;
      y[i * d + j] = gamma[j] * xh + beta[j];
    }
}

template <typename T>
void bn_infer(const NormSpan<T>& a, const T* __restrict x, T* __restrict y,
              const T* __restrict rmean, const T* __restrict rvar, double eps) {
  const int64_t n = a.n, d = a.d, c0 = a.c0, c1 = a.c1;
  T* __restrict invstd = a.invstd;
  const T* __restrict gamma = a.gamma;
  const T* __restrict beta = a.beta;
  for (int64_t j = c0; j < c1; ++j) invstd[j] = T(1.0 / std::sqrt(double(rvar[j]) + eps));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = c0; j < c1; ++j)
      y[i * d + j] = gamma[j] * ((x[i * d + j] - rmean[j]) * invstd[j]) + beta[j];
}

template <typename T>
void bn_backward(const NormSpan<T>& a, const T* __restrict dy, T* __restrict dx,
                 T* __restrict dgamma, T* __restrict dbeta) {
  const int64_t n = a.n, d = a.d, c0 = a.c0, c1 = a.c1;
  double* __restrict acc = a.acc;
  double* __restrict acc2 = a.acc2;
  const T* __restrict xhat = a.xhat;
  const T* __restrict gamma = a.gamma;
  const T* __restrict invstd = a.invstd;
  for (int64_t j = c0; j < c1; ++j) acc[j] = acc2[j] = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = c0; j < c1; ++j) {
      acc[j] += double(dy[i * d + j]);                          // sum dy
      acc2[j] += double(dy[i * d + j]) * double(xhat[i * d + j]);  // sum dy*xhat
    }
  for (int64_t j = c0; j < c1; ++j) {
    dbeta[j] = T(acc[j]);
    dgamma[j] = T(acc2[j]);
  }
  if (!dx) return;
  // sum dxhat = gamma*sum dy; sum dxhat*xhat = gamma*sum dy*xhat
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = c0; j < c1; ++j) {
      const double g = double(gamma[j]);
      const double v = double(n) * g * double(dy[i * d + j]) - g * acc[j] -
                       double(xhat[i * d + j]) * g * acc2[j];
      dx[i * d + j] = T(v * double(invstd[j]) / double(n));
    }
}

// The sum of f(j) over j < d in double: four interleaved partial sums (lane j % 4, the tail
// into lane 0) added as (s0 + s1) + (s2 + s3) -- a fixed order, and four independent chains
// of adds instead of one (a LayerNorm row's sums were bound by the latency of one).
template <typename F>
inline double row_sum(int64_t d, F&& f) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t j = 0;
  for (; j + 4 <= d; j += 4)
    for (int l = 0; l < 4; ++l) s[l] += f(j + l);
  for (; j < d; ++j) s[0] += f(j);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

template <typename T>
void ln_forward(const NormSpan<T>& a, const T* __restrict x, T* __restrict y, double eps) {
  const int64_t d = a.d;
  const T* __restrict gamma = a.gamma;
  const T* __restrict beta = a.beta;
  for (int64_t i = a.c0; i < a.c1; ++i) {
    const T* __restrict r = x + i * d;
    T* __restrict xh = a.xhat + i * d;
    T* __restrict yr = y + i * d;
    const double mean = row_sum(d, [&](int64_t j) { return double(r[j]); }) / double(d);
    const double var = row_sum(d, [&](int64_t j) {
                         const double c = double(r[j]) - mean;
                         return c * c;
                       }) / double(d);
    const double inv = 1.0 / std::sqrt(var + eps);
    a.invstd[i] = T(inv);
    for (int64_t j = 0; j < d; ++j) {
      const T h = T((double(r[j]) - mean) * inv);
      xh[j] = h;
      yr[j] = gamma[j] * h + beta[j];
    }
  }
}

template <typename T>
void ln_param_grads(const NormSpan<T>& a, const T* __restrict dy, T* __restrict dgamma,
                    T* __restrict dbeta) {
  const int64_t d = a.d;
  const T* __restrict xhat = a.xhat;
  for (int64_t j = a.c0; j < a.c1; ++j) dgamma[j] = dbeta[j] = T(0);
  for (int64_t i = 0; i < a.n; ++i)
    for (int64_t j = a.c0; j < a.c1; ++j) {
      dbeta[j] += dy[i * d + j];
      dgamma[j] += dy[i * d + j] * xhat[i * d + j];
    }
}

template <typename T>
void ln_input_grad(const NormSpan<T>& a, const T* __restrict dy, T* __restrict dx) {
  const int64_t d = a.d;
  const T* __restrict gamma = a.gamma;
  for (int64_t i = a.c0; i < a.c1; ++i) {
    const T* __restrict g = dy + i * d;
    const T* __restrict xh = a.xhat + i * d;
    T* __restrict out = dx + i * d;
    const double s1 = row_sum(d, [&](int64_t j) { return double(g[j]) * double(gamma[j]); });
    const double s2 = row_sum(d, [&](int64_t j) {
      return double(g[j]) * double(gamma[j]) * double(xh[j]);
    });
    const double inv = double(a.invstd[i]);
    for (int64_t j = 0; j < d; ++j) {
      const double dxh = double(g[j]) * double(gamma[j]);
      out[j] = T(inv / double(d) * (double(d) * dxh - s1 - double(xh[j]) * s2));
    }
  }
}

template <typename T>
void fill_norm_slots(KernelSlots<T>& k) {
  k.bn_forward = &bn_forward<T>;
  k.bn_infer = &bn_infer<T>;
  k.bn_backward = &bn_backward<T>;
  k.ln_forward = &ln_forward<T>;
  k.ln_param_grads = &ln_param_grads<T>;
  k.ln_input_grad = &ln_input_grad<T>;
}

// Defined once per including file (one per ISA), declared in core/kernel_set.h.
void register_norm_kernels(KernelSet& set) {
  fill_norm_slots(set.f32);
  fill_norm_slots(set.f64);
}

}  // namespace FASTBP_NORM_NS
}  // namespace fastbp
