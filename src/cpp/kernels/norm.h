// The norm layers' loops (nn/norm_layers.cpp), compiled once per instruction set
// (kernels/norm_impl.h) and reached through the kernel set (core/kernel_set.h). BatchNorm's
// work on columns [c0, c1) of an n x d batch, every column alone with its sums in row order;
// LayerNorm's on rows [c0, c1) (its parameters' gradient sums on columns, over all rows in
// row order). So a team's split gives the one-thread bits. (In the baseline file these loops
// ran on SSE2's two-double vectors: ~18% of a 64-256-BN-256-BN-10 step.)
#pragma once
#include <cstdint>

namespace fastbp {

template <typename T>
struct NormSpan {
  int64_t n = 0, d = 0;
  int64_t c0 = 0, c1 = 0;  // columns (BatchNorm; LayerNorm's parameter sums) or rows (LayerNorm)
  const T* gamma = nullptr;
  const T* beta = nullptr;
  T* xhat = nullptr;    // n x d, the normalised input (training)
  T* invstd = nullptr;  // d (BatchNorm) or n (LayerNorm)
  double* acc = nullptr;   // d: the mean, then (backward) the sums of dy
  double* acc2 = nullptr;  // d: the sums of squares, then (backward) the sums of dy * xhat
};

// Training forward: batch mean and biased variance of x's columns (in double, row order),
// invstd, the running statistics (when rmean is not null: momentum, unbiased variance), xhat
// and y = gamma * xhat + beta.
template <typename T>
using BnForwardFn = void (*)(const NormSpan<T>& a, const T* x, T* y, T* rmean, T* rvar,
                             double eps, double momentum);
// Inference: y = gamma * ((x - rmean) * invstd) + beta on columns [c0, c1), invstd formed
// from the running variance first (in double: 1 / sqrt(rvar + eps), rounded to T).
template <typename T>
using BnInferFn = void (*)(const NormSpan<T>& a, const T* x, T* y, const T* rmean,
                           const T* rvar, double eps);
// Backward: dbeta = sum dy, dgamma = sum dy * xhat (in double, row order), and dx (when not
// null) from them.
template <typename T>
using BnBackwardFn = void (*)(const NormSpan<T>& a, const T* dy, T* dx, T* dgamma, T* dbeta);

// LayerNorm: rows [c0, c1) normalised (xhat, invstd, y); the parameters' gradient sums on
// columns [c0, c1) over all n rows in row order; the input gradient of rows [c0, c1).
template <typename T>
using LnForwardFn = void (*)(const NormSpan<T>& a, const T* x, T* y, double eps);
template <typename T>
using LnParamGradFn = void (*)(const NormSpan<T>& a, const T* dy, T* dgamma, T* dbeta);
template <typename T>
using LnInputGradFn = void (*)(const NormSpan<T>& a, const T* dy, T* dx);

}  // namespace fastbp
