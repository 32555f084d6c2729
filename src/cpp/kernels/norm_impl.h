// BatchNorm's column loops (kernels/norm.h), compiled once per instruction set: included by
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
void bn_forward(const BnColumns<T>& a, const T* __restrict x, T* __restrict y, T* rmean,
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
void bn_backward(const BnColumns<T>& a, const T* __restrict dy, T* __restrict dx,
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

// Defined once per including file (one per ISA), declared in core/kernel_set.h.
void register_norm_kernels(KernelSet& set) {
  set.f32.bn_forward = &bn_forward<float>;
  set.f32.bn_backward = &bn_backward<float>;
  set.f64.bn_forward = &bn_forward<double>;
  set.f64.bn_backward = &bn_backward<double>;
}

}  // namespace FASTBP_NORM_NS
}  // namespace fastbp
