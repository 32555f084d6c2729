#include "kernels/losses.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace fastbp {

// One sample of the poisson loss: returns the mean over its k outputs of
// exp(z) - y z + y log(y) - y and writes dz = scale * (exp(z) - y).
template <typename T>
static double poisson_row(T* dz, const T* z, const T* y, int64_t k, T scale) {
  double li = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    const T mu = std::exp(z[j]);
    const double ylogy = y[j] > T(0) ? double(y[j]) * std::log(double(y[j])) : 0.0;
    li += double(mu) - double(y[j]) * double(z[j]) + ylogy - double(y[j]);
    dz[j] = scale * (mu - y[j]);
  }
  return li / double(k);
}

template <typename T>
double loss_forward_backward(T* dlogits, const T* logits, const T* target,
                             const int64_t* labels, const T* weight, int64_t n, int64_t k,
                             const LossArgs& args) {
  // Total weight, in a fixed order.
  double wsum = 0.0;
  if (weight) {
    for (int64_t i = 0; i < n; ++i) wsum += double(weight[i]);
  } else {
    wsum = double(n);
  }
  // A mini-batch whose weights sum to zero contributes nothing: loss 0, zero gradient.
  if (!(wsum > 0.0)) {
    std::fill(dlogits, dlogits + n * k, T(0));
    return 0.0;
  }
  const double inv_w = 1.0 / wsum;
  double total = 0.0;
  const T delta = T(args.delta);
  for (int64_t i = 0; i < n; ++i) {
    const T* z = logits + i * k;
    T* dz = dlogits + i * k;
    const double wi = weight ? double(weight[i]) : 1.0;
    double li = 0.0;
    switch (args.kind) {
      case LossKind::mse: {
        const T scale = T(2.0 * wi * inv_w / double(k));
        for (int64_t j = 0; j < k; ++j) {
          const T d = z[j] - target[i * k + j];
          li += double(d) * double(d);
          dz[j] = scale * d;
        }
        li /= double(k);
        break;
      }
      case LossKind::mae: {
        const T scale = T(wi * inv_w / double(k));
        for (int64_t j = 0; j < k; ++j) {
          const T d = z[j] - target[i * k + j];
          li += std::fabs(double(d));
          dz[j] = d > T(0) ? scale : (d < T(0) ? -scale : T(0));
        }
        li /= double(k);
        break;
      }
      case LossKind::huber: {
        const T scale = T(wi * inv_w / double(k));
        for (int64_t j = 0; j < k; ++j) {
          const T d = z[j] - target[i * k + j];
          const T ad = std::fabs(d);
          if (ad <= delta) {
            li += 0.5 * double(d) * double(d);
            dz[j] = scale * d;
          } else {
            li += double(delta) * (double(ad) - 0.5 * double(delta));
            dz[j] = d > T(0) ? scale * delta : -scale * delta;
          }
        }
        li /= double(k);
        break;
      }
      case LossKind::bce: {
        const T scale = T(wi * inv_w / double(k));
        for (int64_t j = 0; j < k; ++j) {
          const T x = z[j];
          const T y = target[i * k + j];
          // max(x,0) - x*y + log(1 + exp(-|x|)), stable for any |x|
          li += double(std::max(x, T(0)) - x * y + std::log1p(std::exp(-std::fabs(x))));
          const T s = x >= T(0) ? T(1) / (T(1) + std::exp(-x))
                                : std::exp(x) / (T(1) + std::exp(x));
          dz[j] = scale * (s - y);
        }
        li /= double(k);
        break;
      }
      case LossKind::poisson:
        li = poisson_row(dz, z, target + i * k, k, T(wi * inv_w / double(k)));
        break;
      case LossKind::softmax_ce: {
        // e_j = exp(z_j - max) once (in T, kept in dz), softmax = e / sum(e)
        T m = z[0];
        for (int64_t j = 1; j < k; ++j) m = std::max(m, z[j]);
        double se = 0.0;
        for (int64_t j = 0; j < k; ++j) {
          const T e = std::exp(z[j] - m);
          dz[j] = e;
          se += double(e);
        }
        const double lse = double(m) + std::log(se);
        const T scale = T(wi * inv_w);
        const T inv_se = T(1.0 / se);
        if (labels) {
          const int64_t c = labels[i];
          li = lse - double(z[c]);
          for (int64_t j = 0; j < k; ++j) dz[j] = scale * (dz[j] * inv_se);
          dz[c] -= scale;
        } else {
          const T* p = target + i * k;
          double psum = 0.0;
          for (int64_t j = 0; j < k; ++j) {
            li += double(p[j]) * (lse - double(z[j]));
            psum += double(p[j]);
          }
          for (int64_t j = 0; j < k; ++j) dz[j] = scale * ((dz[j] * inv_se) * T(psum) - p[j]);
        }
        break;
      }
    }
    total += wi * li;
  }
  return total * inv_w;
}

template double loss_forward_backward<float>(float*, const float*, const float*, const int64_t*,
                                             const float*, int64_t, int64_t, const LossArgs&);
template double loss_forward_backward<double>(double*, const double*, const double*,
                                              const int64_t*, const double*, int64_t, int64_t,
                                              const LossArgs&);

}  // namespace fastbp
