// The optimizer update loops, compiled once per instruction set: this header is included by
// optimizers_generic.cpp (baseline), optimizers_avx2.cpp and optimizers_avx512.cpp (with
// their ISA flags), each inside its own namespace FASTBP_OPT_NS so the copies never mix at
// link time; each copy registers its loops in its ISA's kernel set (core/kernel_set.h).
// Every loop: p, g and the state pointers cover the same n elements of the arena (one
// thread's range); `step` is the step count after this update (1 on the first). The update
// rules are torch.optim's (docs/ENGINE.md).
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/kernel_set.h"
#include "kernels/optimizers.h"

#ifndef FASTBP_OPT_NS
#error "define FASTBP_OPT_NS before including optimizers_impl.h"
#endif

namespace fastbp {
namespace FASTBP_OPT_NS {

// An optimizer state value below the smallest normal number is stored as zero (its sign kept):
// the moving averages of a parameter whose gradient stays 0 (a dead ReLU unit, a feature that
// is always 0 in a batch) decay geometrically into the subnormals, where every operation on
// them takes a slow microcode path on x86 (measured: +45% on a batch-1 Adam step); such a value
// moves no parameter of magnitude above ~1e-26 (f32). The reference does the same
// (reference/optimizers.py flush_subnormal). Bit operations only: no subnormal arithmetic.
template <typename T>
inline T flush_subnormal(T x) {
  return std::abs(x) < std::numeric_limits<T>::min() ? std::copysign(T(0), x) : x;
}

// L2 weight decay folded into the gradient (torch's coupled weight_decay): g += wd p.
template <typename T>
void couple_weight_decay(T* p, T* g, int64_t n, const OptConfig& c) {
  if (c.weight_decay == 0.0) return;
  const T wd = T(c.weight_decay);
  for (int64_t i = 0; i < n; ++i) g[i] += wd * p[i];
}

template <typename T>
void sgd_step(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st, int64_t step) {
  couple_weight_decay(p, g, n, c);
  const T lr = T(c.lr);
  if (c.momentum == 0.0) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * g[i];
    return;
  }
  const bool first = step == 1;
  T* buf = st[StateSlot::momentum_buffer];
  const T mom = T(c.momentum), damp = T(1.0 - c.dampening);
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = flush_subnormal(first ? g[i] : mom * buf[i] + damp * g[i]);
    const T d = c.nesterov ? g[i] + mom * buf[i] : buf[i];
    p[i] -= lr * d;
  }
}

// 1 - beta^step, Adam's bias correction. Once beta^step < e^-42 (< 2^-54) the difference is
// exactly 1.0 in double, so it is returned without pow, whose underflow path is slow (after
// some thousand steps it cost more than the update of a small network).
inline double one_minus_pow(double beta, int64_t step) {
  // log(beta) and the last result of the last two betas seen (Adam asks for beta1 and beta2
  // every step, and the fused update, nn/fused_update.h, once per block of every step); one
  // thread_local object: one TLS lookup per call from a shared library
  struct Memo {
    double beta[2] = {-1.0, -1.0}, log[2] = {0.0, 0.0}, last[2] = {0.0, 0.0};
    int64_t step[2] = {-1, -1};
  };
  thread_local Memo m;
  int e = (m.beta[0] == beta) ? 0 : (m.beta[1] == beta) ? 1 : -1;
  if (e >= 0 && m.step[e] == step) return m.last[e];
  if (e < 0) {
    m.beta[1] = m.beta[0];
    m.log[1] = m.log[0];
    m.last[1] = m.last[0];
    m.step[1] = m.step[0];
    m.beta[0] = beta;
    m.log[0] = beta > 0.0 ? std::log(beta) : -HUGE_VAL;
    e = 0;
  }
  m.step[e] = step;
  m.last[e] = double(step) * m.log[e] < -42.0 ? 1.0 : 1.0 - std::pow(beta, double(step));
  return m.last[e];
}

// adam, and adamw (decoupled decay: p *= 1 - lr wd first, no wd in the gradient).
template <typename T>
void adam_step(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st, int64_t step) {
  if (c.kind != OptKind::adamw) {
    couple_weight_decay(p, g, n, c);
  } else if (c.weight_decay != 0.0) {
    const T f = T(1.0 - c.lr * c.weight_decay);
    for (int64_t i = 0; i < n; ++i) p[i] *= f;
  }
  const T b2 = T(c.beta2);
  const T one_b1 = T(1.0 - c.beta1), one_b2 = T(1.0 - c.beta2);
  const double bc1 = one_minus_pow(c.beta1, step);
  const double bc2 = one_minus_pow(c.beta2, step);
  const T step_size = T(c.lr / bc1);
  const T inv_bc2_sqrt = T(1.0 / std::sqrt(bc2));
  const T eps = T(c.eps);
  // Two loops rather than a branch per element, so the common (no amsgrad) loop vectorises
  // without masks; __restrict: the arena and the state never overlap.
  T* __restrict pr = p;
  const T* __restrict gr = g;
  T* __restrict mr = st[StateSlot::exp_avg];
  T* __restrict vr = st[StateSlot::exp_avg_sq];
  if (T* __restrict vm = st[StateSlot::max_exp_avg_sq]) {
    for (int64_t i = 0; i < n; ++i) {
      mr[i] = flush_subnormal(mr[i] + one_b1 * (gr[i] - mr[i]));
      vr[i] = flush_subnormal(b2 * vr[i] + one_b2 * gr[i] * gr[i]);
      vm[i] = std::max(vm[i], vr[i]);
      pr[i] -= step_size * mr[i] / (std::sqrt(vm[i]) * inv_bc2_sqrt + eps);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      mr[i] = flush_subnormal(mr[i] + one_b1 * (gr[i] - mr[i]));
      vr[i] = flush_subnormal(b2 * vr[i] + one_b2 * gr[i] * gr[i]);
      pr[i] -= step_size * mr[i] / (std::sqrt(vr[i]) * inv_bc2_sqrt + eps);
    }
  }
}

template <typename T>
void rmsprop_step(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st, int64_t) {
  couple_weight_decay(p, g, n, c);
  T* sq = st[StateSlot::square_avg];
  T* buf = st[StateSlot::momentum_buffer];
  T* ga = st[StateSlot::grad_avg];
  const T lr = T(c.lr);
  const T a = T(c.alpha), one_a = T(1.0 - c.alpha), eps = T(c.eps), mom = T(c.momentum);
  for (int64_t i = 0; i < n; ++i) {
    sq[i] = flush_subnormal(a * sq[i] + one_a * g[i] * g[i]);
    T avg;
    if (ga) {
      ga[i] = flush_subnormal(ga[i] + one_a * (g[i] - ga[i]));
      avg = std::sqrt(sq[i] - ga[i] * ga[i]) + eps;
    } else {
      avg = std::sqrt(sq[i]) + eps;
    }
    if (buf) {
      buf[i] = flush_subnormal(mom * buf[i] + g[i] / avg);
      p[i] -= lr * buf[i];
    } else {
      p[i] -= lr * g[i] / avg;
    }
  }
}

template <typename T>
void adagrad_step(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st,
                  int64_t step) {
  couple_weight_decay(p, g, n, c);
  T* s = st[StateSlot::sum];
  const T clr = T(c.lr / (1.0 + double(step - 1) * c.lr_decay));
  const T eps = T(c.eps);
  for (int64_t i = 0; i < n; ++i) {
    s[i] += g[i] * g[i];
    p[i] -= clr * g[i] / (std::sqrt(s[i]) + eps);
  }
}

// s1[l] += |w[i]| (kAbs), s2[l] += w[i]^2 (kSq), in double, for i = l (mod kPenaltyLanes)
// over the whole blocks of kPenaltyLanes; returns the count done. Explicit vectors where the
// ISA has them (the compiler left the |w| sum scalar), lanes in the same order as the plain
// loop: 32 lanes are 4 independent AVX-512 chains (8 AVX2 ones), so the sums are not bound by
// the latency of one chain of adds (8 lanes, one AVX-512 chain, made an L2 penalty cost 12%
// of a digits step).
template <typename T, bool kAbs, bool kSq>
int64_t penalty_sums(const T* w, int64_t n, double* s1, double* s2) {
  constexpr int L = kPenaltyLanes;
  int64_t i = 0;
#if defined(__AVX512F__)
  constexpr int Q = L / 8;
  __m512d v1[Q], v2[Q];
  for (int q = 0; q < Q; ++q) {
    if (kAbs) v1[q] = _mm512_loadu_pd(s1 + 8 * q);
    if (kSq) v2[q] = _mm512_loadu_pd(s2 + 8 * q);
  }
  for (; i + L <= n; i += L) {
    for (int q = 0; q < Q; ++q) {
      __m512d d;
      if constexpr (sizeof(T) == 4)
        d = _mm512_cvtps_pd(_mm256_loadu_ps(reinterpret_cast<const float*>(w + i + 8 * q)));
      else
        d = _mm512_loadu_pd(reinterpret_cast<const double*>(w + i + 8 * q));
      if (kAbs) v1[q] = _mm512_add_pd(v1[q], _mm512_abs_pd(d));
      if (kSq) v2[q] = _mm512_fmadd_pd(d, d, v2[q]);
    }
  }
  for (int q = 0; q < Q; ++q) {
    if (kAbs) _mm512_storeu_pd(s1 + 8 * q, v1[q]);
    if (kSq) _mm512_storeu_pd(s2 + 8 * q, v2[q]);
  }
#elif defined(__AVX2__) && defined(__FMA__)
  constexpr int Q = L / 4;
  const __m256d sign = _mm256_set1_pd(-0.0);
  __m256d v1[Q], v2[Q];
  for (int q = 0; q < Q; ++q) {
    if (kAbs) v1[q] = _mm256_loadu_pd(s1 + 4 * q);
    if (kSq) v2[q] = _mm256_loadu_pd(s2 + 4 * q);
  }
  for (; i + L <= n; i += L) {
    for (int q = 0; q < Q; ++q) {
      __m256d d;
      const T* p = w + i + 4 * q;
      if constexpr (sizeof(T) == 4)
        d = _mm256_cvtps_pd(_mm_loadu_ps(reinterpret_cast<const float*>(p)));
      else
        d = _mm256_loadu_pd(reinterpret_cast<const double*>(p));
      if (kAbs) v1[q] = _mm256_add_pd(v1[q], _mm256_andnot_pd(sign, d));
      if (kSq) v2[q] = _mm256_fmadd_pd(d, d, v2[q]);
    }
  }
  for (int q = 0; q < Q; ++q) {
    if (kAbs) _mm256_storeu_pd(s1 + 4 * q, v1[q]);
    if (kSq) _mm256_storeu_pd(s2 + 4 * q, v2[q]);
  }
#else
  for (; i + L <= n; i += L) {
    for (int l = 0; l < L; ++l) {
      const double d = double(w[i + l]);
      if (kAbs) s1[l] += std::fabs(d);
      if (kSq) s2[l] += d * d;
    }
  }
#endif
  return i;
}

// The penalty pass (see PenaltyFn): lane l of a1/a2 takes the elements i = l (mod
// kPenaltyLanes), so the sums come out in one order on every ISA up to FMA contraction. A sum
// whose coefficient is 0 is not formed (its lanes are left as they are).
// (a1 and a2 are the caller's: local copies here were once 64-byte-aligned stack arrays the
// compiler loaded with vmovapd, which faults on ASan's 32-byte-aligned fake stack)
template <typename T>
void penalty_pass(T* __restrict g, const T* __restrict w, int64_t n, T l1, T l2,
                  double* __restrict a1, double* __restrict a2) {
  if (l1 != T(0)) {
    for (int64_t i = 0; i < n; ++i) {
      const T wi = w[i];
      g[i] += l1 * (T(wi > T(0)) - T(wi < T(0))) + l2 * wi;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) g[i] += l2 * w[i];
  }
  const bool abs = l1 != T(0), sq = l2 != T(0);
  const int64_t done = abs ? (sq ? penalty_sums<T, true, true>(w, n, a1, a2)
                                 : penalty_sums<T, true, false>(w, n, a1, a2))
                           : (sq ? penalty_sums<T, false, true>(w, n, a1, a2) : n);
  for (int64_t i = done; i < n; ++i) {  // the tail, into lane 0
    if (abs) a1[0] += std::fabs(double(w[i]));
    if (sq) a2[0] += double(w[i]) * double(w[i]);
  }
}

// The gradient of a block of a dense weight for the fused update (nn/fused_update.h) at a
// batch of one row: g[r * ldg + j] = x[r] * dz[j] for r < rows, j < cols.
template <typename T>
void outer_rows(T* __restrict g, int64_t ldg, const T* __restrict x, const T* __restrict dz,
                int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict gr = g + r * ldg;
    const T xr = x[r];
    for (int64_t j = 0; j < cols; ++j) gr[j] = xr * dz[j];
  }
}

template <typename T>
void fill_optimizer_slots(KernelSlots<T>& k) {
  k.penalty = &penalty_pass<T>;
  k.outer = &outer_rows<T>;
  k.opt_step[static_cast<int>(OptKind::sgd)] = &sgd_step<T>;
  k.opt_step[static_cast<int>(OptKind::adam)] = &adam_step<T>;
  k.opt_step[static_cast<int>(OptKind::adamw)] = &adam_step<T>;
  k.opt_step[static_cast<int>(OptKind::rmsprop)] = &rmsprop_step<T>;
  k.opt_step[static_cast<int>(OptKind::adagrad)] = &adagrad_step<T>;
}

// Defined once per including file (one per ISA), declared in core/kernel_set.h.
void register_optimizer_kernels(KernelSet& set) {
  fill_optimizer_slots(set.f32);
  fill_optimizer_slots(set.f64);
}

}  // namespace FASTBP_OPT_NS
}  // namespace fastbp
