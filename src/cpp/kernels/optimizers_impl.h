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
#include <cstdint>
#include <limits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/kernel_set.h"
#include "kernels/optimizers.h"

#ifndef FASTBP_OPT_NS
#error "define FASTBP_OPT_NS before including optimizers_impl.h"
#endif
#define FASTBP_VM_NS FASTBP_OPT_NS
#include "kernels/vecmath_simd.h"

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

// a * b + c: one rounding where the ISA has a fused multiply-add; two on the generic build
// (baseline x86-64 has no FMA instruction: a call to libm's fma per element would be slow).
template <typename T>
inline Vec<T> madd(Vec<T> a, Vec<T> b, Vec<T> c) {
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  return fma(a, b, c);
#else
  return a * b + c;
#endif
}

// flush_subnormal on every lane.
template <typename T>
inline Vec<T> flush_lanes(Vec<T> x) {
  return select(cmp_lt(vabs(x), Vec<T>(std::numeric_limits<T>::min())), zero_signed(x), x);
}

// The L1/L2 penalty's gradient on lanes: g + l1 sign(w) + l2 w (kL1) or g + l2 w. The penalty
// pass and the folded update (adam_run) both use it: an element gets the same bits from both.
template <typename T, bool kL1>
inline Vec<T> penalised(Vec<T> g, Vec<T> w, T l1, T l2) {
  using V = Vec<T>;
  if (!kL1) return madd(V(l2), w, g);
  const V zero(T(0)), one(T(1));
  const V sgn = select(cmp_lt(zero, w), one, zero) - select(cmp_lt(w, zero), one, zero);
  return g + madd(V(l1), sgn, V(l2) * w);
}

// Adam's scalars for one step (adam, and adamw: decoupled decay, p *= 1 - lr wd first, no wd
// in the gradient).
template <typename T>
struct AdamScalars {
  T b2, one_b1, one_b2, step_size, inv_bc2_sqrt, eps, wd, decay;
  AdamScalars(const OptConfig& c, int64_t step) {
    const bool w = c.kind == OptKind::adamw;
    b2 = T(c.beta2);
    one_b1 = T(1.0 - c.beta1);
    one_b2 = T(1.0 - c.beta2);
    step_size = T(c.lr / one_minus_pow(c.beta1, step));
    inv_bc2_sqrt = T(1.0 / std::sqrt(one_minus_pow(c.beta2, step)));
    eps = T(c.eps);
    wd = w ? T(0) : T(c.weight_decay);
    decay = w ? T(1.0 - c.lr * c.weight_decay) : T(1);
  }
};

// Adam on the m (1 <= m <= W) lanes at i, its gradient penalised first (kPen: l1, l2); every
// element goes through these operations, in a vector body or a masked tail, so its bits do not
// depend on where a range starts or ends.
// kStream: p's whole, aligned vectors are written around the caches (see adam_shared).
template <typename T, bool kPen, bool kL1, bool kAms, bool kStream = false>
inline void adam_lanes(T* p, const T* g, T* m, T* v, T* vm, int64_t i, int64_t n_lanes,
                       const AdamScalars<T>& k, T l1, T l2) {
  using V = Vec<T>;
  const bool full = n_lanes == V::W;
  const V w = full ? V::load(p + i) : load_n(p + i, n_lanes);
  V gv = full ? V::load(g + i) : load_n(g + i, n_lanes);
  if (kPen) gv = penalised<T, kL1>(gv, w, l1, l2);
  if (k.wd != T(0)) gv = madd(V(k.wd), w, gv);
  V mv = full ? V::load(m + i) : load_n(m + i, n_lanes);
  V vv = full ? V::load(v + i) : load_n(v + i, n_lanes);
  mv = flush_lanes(madd(V(k.one_b1), gv - mv, mv));
  vv = flush_lanes(madd(V(k.one_b2) * gv, gv, V(k.b2) * vv));
  V d = vv;
  if (kAms) {
    d = vmax(full ? V::load(vm + i) : load_n(vm + i, n_lanes), vv);
    full ? d.store(vm + i) : store_n(vm + i, n_lanes, d);
  }
  // p decay - q in one rounding (decay is 1 but for adamw): one explicit form, so that no
  // instantiation contracts it differently from another
  const V q = V(k.step_size) * mv / madd(vsqrt(d), V(k.inv_bc2_sqrt), V(k.eps));
  const V pn = madd(w, V(k.decay), V(T(0)) - q);
  if (full) {
    mv.store(m + i);
    vv.store(v + i);
    if (kStream && reinterpret_cast<uintptr_t>(p + i) % sizeof(V) == 0)
      pn.stream(p + i);
    else
      pn.store(p + i);
  } else {
    store_n(m + i, n_lanes, mv);
    store_n(v + i, n_lanes, vv);
    store_n(p + i, n_lanes, pn);
  }
}

// Lanes [i, n) by whole vectors, then a masked tail.
template <typename T, bool kPen, bool kL1, bool kAms, bool kStream = false>
inline void adam_span(T* p, const T* g, T* m, T* v, T* vm, int64_t i, int64_t n,
                      const AdamScalars<T>& k, T l1, T l2) {
  constexpr int W = Vec<T>::W;
  for (; i + W <= n; i += W)
    adam_lanes<T, kPen, kL1, kAms, kStream>(p, g, m, v, vm, i, W, k, l1, l2);
  if (i < n) adam_lanes<T, kPen, kL1, kAms>(p, g, m, v, vm, i, n - i, k, l1, l2);
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

// The penalty's sums: s1[l] += |w[i]| (kAbs), s2[l] += w[i]^2 (kSq), in double, for
// i = l (mod kPenaltyLanes), one group of kPenaltyLanes elements per add(). Explicit vectors
// where the ISA has them (the compiler left the |w| sum scalar), lanes in the same order as the
// plain loop: 32 lanes are 4 independent AVX-512 chains (8 AVX2 ones), so the sums are not
// bound by the latency of one chain of adds (8 lanes, one AVX-512 chain, made an L2 penalty
// cost 12% of a digits step).
template <typename T, bool kAbs, bool kSq>
struct PenaltySums {
  static constexpr int L = kPenaltyLanes;
#if defined(__AVX512F__)
  static constexpr int Q = L / 8;
  __m512d v1[Q], v2[Q];
  void load(const double* s1, const double* s2) {
    for (int q = 0; q < Q; ++q) {
      if (kAbs) v1[q] = _mm512_loadu_pd(s1 + 8 * q);
      if (kSq) v2[q] = _mm512_loadu_pd(s2 + 8 * q);
    }
  }
  void add(const T* w) {
    for (int q = 0; q < Q; ++q) {
      __m512d d;
      if constexpr (sizeof(T) == 4)
        d = _mm512_cvtps_pd(_mm256_loadu_ps(reinterpret_cast<const float*>(w + 8 * q)));
      else
        d = _mm512_loadu_pd(reinterpret_cast<const double*>(w + 8 * q));
      if (kAbs) v1[q] = _mm512_add_pd(v1[q], _mm512_abs_pd(d));
      if (kSq) v2[q] = _mm512_fmadd_pd(d, d, v2[q]);
    }
  }
  void store(double* s1, double* s2) const {
    for (int q = 0; q < Q; ++q) {
      if (kAbs) _mm512_storeu_pd(s1 + 8 * q, v1[q]);
      if (kSq) _mm512_storeu_pd(s2 + 8 * q, v2[q]);
    }
  }
#elif defined(__AVX2__) && defined(__FMA__)
  static constexpr int Q = L / 4;
  __m256d v1[Q], v2[Q];
  void load(const double* s1, const double* s2) {
    for (int q = 0; q < Q; ++q) {
      if (kAbs) v1[q] = _mm256_loadu_pd(s1 + 4 * q);
      if (kSq) v2[q] = _mm256_loadu_pd(s2 + 4 * q);
    }
  }
  void add(const T* w) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    for (int q = 0; q < Q; ++q) {
      __m256d d;
      const T* p = w + 4 * q;
      if constexpr (sizeof(T) == 4)
        d = _mm256_cvtps_pd(_mm_loadu_ps(reinterpret_cast<const float*>(p)));
      else
        d = _mm256_loadu_pd(reinterpret_cast<const double*>(p));
      if (kAbs) v1[q] = _mm256_add_pd(v1[q], _mm256_andnot_pd(sign, d));
      if (kSq) v2[q] = _mm256_fmadd_pd(d, d, v2[q]);
    }
  }
  void store(double* s1, double* s2) const {
    for (int q = 0; q < Q; ++q) {
      if (kAbs) _mm256_storeu_pd(s1 + 4 * q, v1[q]);
      if (kSq) _mm256_storeu_pd(s2 + 4 * q, v2[q]);
    }
  }
#else
  double *a1 = nullptr, *a2 = nullptr;
  void load(double* s1, double* s2) {
    a1 = s1;
    a2 = s2;
  }
  void add(const T* w) {
    for (int l = 0; l < L; ++l) {
      const double d = double(w[l]);
      if (kAbs) a1[l] += std::fabs(d);
      if (kSq) a2[l] += d * d;
    }
  }
  void store(double*, double*) const {}
#endif
};

// The elements past the last whole group, into lane 0 (in order).
template <typename T>
inline void penalty_tail(const T* w, int64_t i, int64_t n, bool abs, bool sq, double* a1,
                         double* a2) {
  for (; i < n; ++i) {
    if (abs) a1[0] += std::fabs(double(w[i]));
    if (sq) a2[0] += double(w[i]) * double(w[i]);
  }
}

// The penalty pass (see PenaltyFn): the gradient by `penalised` on every lane, the sums by
// PenaltySums, so they come out in one order on every ISA up to FMA contraction. A sum whose
// coefficient is 0 is not formed (its lanes are left as they are).
// (a1 and a2 are the caller's: local copies here were once 64-byte-aligned stack arrays the
// compiler loaded with vmovapd, which faults on ASan's 32-byte-aligned fake stack)
template <typename T, bool kAbs, bool kSq>
void penalty_run(T* __restrict g, const T* __restrict w, int64_t n, T l1, T l2,
                 double* __restrict a1, double* __restrict a2) {
  using V = Vec<T>;
  constexpr int W = V::W;
  int64_t i = 0;
  for (; i + W <= n; i += W)
    penalised<T, kAbs>(V::load(g + i), V::load(w + i), l1, l2).store(g + i);
  if (i < n)
    store_n(g + i, n - i, penalised<T, kAbs>(load_n(g + i, n - i), load_n(w + i, n - i), l1, l2));
  PenaltySums<T, kAbs, kSq> acc;
  acc.load(a1, a2);
  for (i = 0; i + kPenaltyLanes <= n; i += kPenaltyLanes) acc.add(w + i);
  acc.store(a1, a2);
  penalty_tail(w, i, n, kAbs, kSq, a1, a2);
}

template <typename T>
void penalty_pass(T* g, const T* w, int64_t n, T l1, T l2, double* a1, double* a2) {
  if (l1 != T(0))
    (l2 != T(0) ? penalty_run<T, true, true>
                : penalty_run<T, true, false>)(g, w, n, l1, l2, a1, a2);
  else if (l2 != T(0))
    penalty_run<T, false, true>(g, w, n, l1, l2, a1, a2);
}

// Adam over `rows` rows of [0, n) at stride ld: kPen: the penalty folded in (the gradient
// penalised on the lanes, the sums formed group by group as the pass forms them, each row as
// penalty_run takes a range), so p and g are read once.
template <typename T, bool kPen, bool kAbs, bool kSq, bool kAms, bool kStream = false>
void adam_run(T* p, T* g, int64_t rows, int64_t n, int64_t ld, const OptConfig& c,
              const OptSlots<T>& st, int64_t step, T l1, T l2, double* a1, double* a2) {
  const AdamScalars<T> k(c, step);
  constexpr int W = Vec<T>::W;
  PenaltySums<T, kAbs, kSq> acc;  // (the lanes in registers across rows without a tail)
  if (kPen) acc.load(a1, a2);
  for (int64_t q = 0; q < rows; ++q) {
    const int64_t o = q * ld;
    T* pq = p + o;
    const T* gq = g + o;
    T* m = st[StateSlot::exp_avg] + o;
    T* v = st[StateSlot::exp_avg_sq] + o;
    T* vm = kAms ? st[StateSlot::max_exp_avg_sq] + o : nullptr;
    int64_t i = 0;
    if (kPen) {
      for (; i + kPenaltyLanes <= n; i += kPenaltyLanes) {
        acc.add(pq + i);  // (before the group is updated)
        for (int j = 0; j < kPenaltyLanes; j += W)
          adam_lanes<T, kPen, kAbs, kAms>(pq, gq, m, v, vm, i + j, W, k, l1, l2);
      }
      if (i < n) {
        acc.store(a1, a2);
        penalty_tail(pq, i, n, kAbs, kSq, a1, a2);
        acc.load(a1, a2);
      }
    }
    adam_span<T, kPen, kAbs, kAms, kStream>(pq, gq, m, v, vm, i, n, k, l1, l2);
  }
  if (kPen) acc.store(a1, a2);
}

// adam_step for parameters the other threads of a team read (OptSlots::opt_step_shared):
// the same bits, p's whole vectors written around the caches. A line of p that another core
// has read is shared; a plain store waits for that copy to be invalidated, one line after
// another, while a streaming store does not wait: two threads each updating half of an 18.8k
// float32 arena after both read all of it, 9.1 us a half against 2.6 us with streaming stores
// (and 2.6 us when only the updating thread had read it); the next reads of all of p took
// 1.0-1.9 us against 1.1 (/tmp/mb3/upg.cpp, the Zen 4 VM, AVX-512). Alone, streaming is
// slower (8.5 against 5.2 us: the thread's own next reads miss).
template <typename T>
void adam_shared(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st,
                 int64_t step) {
  (st[StateSlot::max_exp_avg_sq] ? adam_run<T, false, false, false, true, true>
                                 : adam_run<T, false, false, false, false, true>)(
      p, g, 1, n, n, c, st, step, T(0), T(0), nullptr, nullptr);
#if defined(__AVX512F__) || defined(__AVX2__)
  _mm_sfence();  // (streaming stores are not ordered by the team's barrier)
#endif
}

template <typename T>
void adam_step(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st, int64_t step) {
  (st[StateSlot::max_exp_avg_sq] ? adam_run<T, false, false, false, true>
                                 : adam_run<T, false, false, false, false>)(
      p, g, 1, n, n, c, st, step, T(0), T(0), nullptr, nullptr);
}

// penalty_pass then adam_step, in one pass (see PenOptStepFn).
template <typename T>
void adam_penalised(T* p, T* g, int64_t rows, int64_t n, int64_t ld, const OptConfig& c,
                    const OptSlots<T>& st, int64_t step, T l1, T l2, double* a1, double* a2) {
  const bool ams = st[StateSlot::max_exp_avg_sq] != nullptr;
  if (l1 != T(0) && l2 != T(0))
    (ams ? adam_run<T, true, true, true, true> : adam_run<T, true, true, true, false>)(
        p, g, rows, n, ld, c, st, step, l1, l2, a1, a2);
  else if (l1 != T(0))
    (ams ? adam_run<T, true, true, false, true> : adam_run<T, true, true, false, false>)(
        p, g, rows, n, ld, c, st, step, l1, l2, a1, a2);
  else if (l2 != T(0))
    (ams ? adam_run<T, true, false, true, true> : adam_run<T, true, false, true, false>)(
        p, g, rows, n, ld, c, st, step, l1, l2, a1, a2);
  else
    for (int64_t q = 0; q < rows; ++q) adam_step(p + q * ld, g + q * ld, n, c, st.offset(q * ld), step);
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
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  // (not on the generic build: its one-lane loop with the sums in memory ran the folded pass
  // 1.3x slower than the two passes; measured on digits, 64-128-10 at batch 32)
  k.opt_penalised[static_cast<int>(OptKind::adam)] = &adam_penalised<T>;
  k.opt_penalised[static_cast<int>(OptKind::adamw)] = &adam_penalised<T>;
  k.opt_step_shared[static_cast<int>(OptKind::adam)] = &adam_shared<T>;
  k.opt_step_shared[static_cast<int>(OptKind::adamw)] = &adam_shared<T>;
#endif
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
