// The loss kernel of losses.h, compiled once per instruction set inside namespace
// FASTBP_VM_NS: binary cross-entropy, softmax cross-entropy and poisson on the vector math
// (vecmath_impl.h), the others as plain loops. NaN in the logits gives a NaN loss and NaN
// gradients where torch gives them (mse, huber, bce: that element; softmax cross-entropy:
// the whole row); mae's gradient is sign(d), 0 for NaN, as torch's.
#pragma once
#include <algorithm>
#include <cmath>

#include "kernels/losses.h"
#include "kernels/vecmath_impl.h"

namespace fastbp {
namespace FASTBP_VM_NS {

// Sum of the first m lanes of v, lane 0 first, in double.
template <typename T>
inline double hsum_n(Vec<T> v, int64_t m) {
  alignas(64) T b[Vec<T>::W];
  v.store(b);
  double s = 0.0;
  for (int64_t i = 0; i < m; ++i) s += double(b[i]);
  return s;
}

// Row loss of mse / mae / huber, writing dz = scale * d loss / d z.
template <typename T>
double loss_row_regression(T* dz, const T* z, const T* t, int64_t k, LossKind kind, T scale,
                           T delta) {
  double li = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    const T d = z[j] - t[j];
    if (kind == LossKind::mse) {
      li += double(d) * double(d);
      dz[j] = T(2) * scale * d;
    } else if (kind == LossKind::mae) {
      li += std::fabs(double(d));
      dz[j] = d > T(0) ? scale : (d < T(0) ? -scale : T(0));
    } else {
      const T ad = std::fabs(d);
      li += ad <= delta ? 0.5 * double(d) * double(d)
                        : double(delta) * (double(ad) - 0.5 * double(delta));
      // torch's rule: the linear branches only for d beyond +-delta (NaN -> scale * d)
      dz[j] = d < -delta ? -scale * delta : (d > delta ? scale * delta : scale * d);
    }
  }
  return k == 1 ? li : li / double(k);  // (li / 1 is li: one division less in each row's chain)
}

// max(x, 0) - x t + log1p(exp(-|x|)) per element (stable for any |x|), dz = scale (sigmoid(x) - t).
template <typename T>
double loss_row_bce(T* dz, const T* z, const T* t, int64_t k, T scale) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const V zero(T(0)), one(T(1)), sc(scale);
  double li = 0.0;
  for (int64_t j = 0; j < k; j += W) {
    const int64_t m = k - j < W ? k - j : W;
    const V x = load_n(z + j, m), y = load_n(t + j, m);
    const V e = vexp(zero - vabs(x));
    const V l = vmax(zero, x) - x * y + vlog1p(e);
    const V inv = one / (one + e);
    const V s = select(cmp_le(zero, x), inv, e * inv);
    store_n(dz + j, m, sc * (s - y));
    li += hsum_n(l, m);
  }
  return li / double(k);
}

// Poisson half deviance with a log link: the mean over the k outputs of
// exp(z) - y z + y log(y) - y, and dz = scale * (exp(z) - y).
template <typename T>
double loss_row_poisson(T* dz, const T* z, const T* y, int64_t k, T scale) {
  using V = Vec<T>;
  constexpr int W = V::W;
  double li = 0.0;
  for (int64_t j = 0; j < k; j += W) {
    const int64_t m = k - j < W ? k - j : W;
    const V mu = vexp(load_n(z + j, m));
    store_n(dz + j, m, V(scale) * (mu - load_n(y + j, m)));
    alignas(64) T mus[W];
    mu.store(mus);
    for (int64_t i = 0; i < m; ++i) {
      const double yi = double(y[j + i]);
      const double ylogy = yi > 0.0 ? yi * std::log(yi) : 0.0;
      li += double(mus[i]) - yi * double(z[j + i]) + ylogy - yi;
    }
  }
  return li / double(k);
}

// e_j = exp(z_j - max z) into dz (k values) for R consecutive rows (row r at z + r * k, dz +
// r * k); each row's max into mx[r] and the sum of its e_j (in double: each chunk of lanes
// from 0, lane 0 first, then the chunks in order) into se[r]. The rows' steps are interleaved:
// their chains (the max, the exp, the lane sums) are independent, so the core overlaps them
// (one row at a time was latency-bound, ~100 cycles for a 10-class row), and a row's result is
// the same in any R.
template <typename T, int R>
void softmax_exps_rows(T* dz, const T* z, int64_t k, T* mx, double* se) {
  using V = Vec<T>;
  constexpr int W = V::W;
  T x[R];
  double s[R];
  for (int r = 0; r < R; ++r) x[r] = z[r * k];
  for (int64_t j = 1; j < k; ++j)
    for (int r = 0; r < R; ++r) x[r] = z[r * k + j] > x[r] ? z[r * k + j] : x[r];
  for (int r = 0; r < R; ++r) s[r] = 0.0;
  alignas(64) T b[R][W];
  for (int64_t j = 0; j < k; j += W) {
    const int64_t m = k - j < W ? k - j : W;
    for (int r = 0; r < R; ++r) {
      const V e = vexp(load_n(z + r * k + j, m) - V(x[r]));
      store_n(dz + r * k + j, m, e);
      e.store(b[r]);
    }
    double c[R];  // (each chunk of W lanes summed from 0, then added: hsum_n's order)
    for (int r = 0; r < R; ++r) c[r] = 0.0;
    for (int64_t i = 0; i < m; ++i)
      for (int r = 0; r < R; ++r) c[r] += double(b[r][i]);
    for (int r = 0; r < R; ++r) s[r] += c[r];
  }
  for (int r = 0; r < R; ++r) {
    mx[r] = x[r];
    se[r] = s[r];
  }
}

// Cross-entropy of softmax(z) against probabilities p (labels: softmax_ce_labels).
template <typename T>
double loss_row_softmax(T* dz, const T* z, const T* p, int64_t k, T scale) {
  T mx;
  double se;
  softmax_exps_rows<T, 1>(dz, z, k, &mx, &se);
  const double lse = double(mx) + std::log(se);
  const T inv_se = T(1.0 / se);
  double li = 0.0, psum = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    li += double(p[j]) * (lse - double(z[j]));
    psum += double(p[j]);
  }
  for (int64_t j = 0; j < k; ++j) dz[j] = scale * ((dz[j] * inv_se) * T(psum) - p[j]);
  return li;
}

// Softmax cross-entropy against integer labels, rows in chunks of kLseChunk: the rows' exp
// sums first, then their logs in one vector pass (log s = log1p(s - 1), s >= 1: the max
// logit's term is 1) instead of a scalar log per row -- half of a 10-class row's time. The
// row losses are added in row order, as the per-row form does.
constexpr int64_t kLseChunk = 64;
// (rows [r0, r1); each row's term w_i l_i is passed to add: the rows do not depend on where
// a chunk starts -- vlog1p is the same function in every lane)
template <typename T, typename Add>
void softmax_ce_labels(T* dlogits, const T* logits, const int64_t* labels, const T* weight,
                       int64_t r0, int64_t r1, int64_t k, double inv_w, Add&& add) {
  using VD = Vec<double>;
  double se[kLseChunk], lse[kLseChunk];
  T mx[kLseChunk];
  for (int64_t i0 = r0; i0 < r1; i0 += kLseChunk) {
    const int64_t m = r1 - i0 < kLseChunk ? r1 - i0 : kLseChunk;
    int64_t r = 0;
    for (; r + 4 <= m; r += 4)
      softmax_exps_rows<T, 4>(dlogits + (i0 + r) * k, logits + (i0 + r) * k, k, mx + r, se + r);
    for (; r < m; ++r)
      softmax_exps_rows<T, 1>(dlogits + (i0 + r) * k, logits + (i0 + r) * k, k, mx + r, se + r);
    for (int64_t r = 0; r < m; r += VD::W) {
      const int64_t q = m - r < VD::W ? m - r : VD::W;
      store_n(lse + r, q, vlog1p(load_n(se + r, q) - VD(1.0)));
    }
    for (int64_t r = 0; r < m; ++r) {
      const int64_t i = i0 + r, c = labels[i];
      const T* z = logits + i * k;
      T* dz = dlogits + i * k;
      const double wi = weight ? double(weight[i]) : 1.0;
      const T scale = T(wi * inv_w), inv_se = T(1.0 / se[r]);
      for (int64_t j = 0; j < k; ++j) dz[j] = scale * (dz[j] * inv_se);
      dz[c] -= scale;
      add(i, wi * ((double(mx[r]) + lse[r]) - double(z[c])));
    }
  }
}

// Rows [r0, r1) of the loss of an n-row batch (losses.h loss_rows): their gradients, and each
// row's term w_i l_i in terms[i - r0] when terms is not null; returns the sum of the terms in
// row order, and 1 / (total weight of the n rows) in inv_w_out (0 when the weights sum to 0:
// then the rows' gradients are zero and so is every term).
template <typename T>
double loss_rows_isa(T* dlogits, const T* logits, const T* target, const int64_t* labels,
                     const T* weight, int64_t n, int64_t k, const LossArgs& args, int64_t r0,
                     int64_t r1, double* terms, double* inv_w_out) {
  double wsum = 0.0;  // total weight, in a fixed order
  if (weight) {
    for (int64_t i = 0; i < n; ++i) wsum += double(weight[i]);
  } else {
    wsum = double(n);
  }
  // A mini-batch whose weights sum to zero contributes nothing: loss 0, zero gradient.
  if (!(wsum > 0.0)) {
    std::fill(dlogits + r0 * k, dlogits + r1 * k, T(0));
    if (terms) std::fill(terms, terms + (r1 - r0), 0.0);
    *inv_w_out = 0.0;
    return 0.0;
  }
  const double inv_w = 1.0 / wsum;
  *inv_w_out = inv_w;
  double total = 0.0;
  // (v is stored or not at run time, so the compiler cannot fuse the product into the sum
  // with a multiply-add in one of the two uses only: the terms a team adds are the ones one
  // thread adds)
  const auto add = [&](int64_t i, double v) {
    if (terms) terms[i - r0] = v;
    total += v;
  };
  if (args.kind == LossKind::softmax_ce && labels) {
    softmax_ce_labels(dlogits, logits, labels, weight, r0, r1, k, inv_w, add);
    return total;
  }
  for (int64_t i = r0; i < r1; ++i) {
    const T* z = logits + i * k;
    T* dz = dlogits + i * k;
    const double wi = weight ? double(weight[i]) : 1.0;
    double li;
    switch (args.kind) {
      case LossKind::bce:
        li = loss_row_bce(dz, z, target + i * k, k, T(wi * inv_w / double(k)));
        break;
      case LossKind::poisson:
        li = loss_row_poisson(dz, z, target + i * k, k, T(wi * inv_w / double(k)));
        break;
      case LossKind::softmax_ce:  // (probabilities: labels went to softmax_ce_labels)
        li = loss_row_softmax(dz, z, target + i * k, k, T(wi * inv_w));
        break;
      default:
        li = loss_row_regression(dz, z, target + i * k, k, args.kind,
                                 T(wi * inv_w / double(k)), T(args.delta));
    }
    add(i, wi * li);
  }
  return total;
}

// The entry of this instruction set (this header is included once per ISA file).
template double loss_rows_isa<float>(float*, const float*, const float*, const int64_t*,
                                     const float*, int64_t, int64_t, const LossArgs&, int64_t,
                                     int64_t, double*, double*);
template double loss_rows_isa<double>(double*, const double*, const double*, const int64_t*,
                                      const double*, int64_t, int64_t, const LossArgs&, int64_t,
                                      int64_t, double*, double*);

}  // namespace FASTBP_VM_NS
}  // namespace fastbp
