// The activation kernels of activations.h on the vector math (vecmath_impl.h), compiled once
// per instruction set inside namespace FASTBP_VM_NS. ActOps<T, A> holds one activation's
// forward f(z) and backward da * f'(z) on SIMD values; the kernels are loops over rows and
// W-wide column blocks (the tail through a zero-padded register), one instantiation per
// activation chosen by a switch per call (never per element).
#pragma once
#include "kernels/activations.h"
#include "kernels/vecmath_impl.h"

namespace fastbp {
namespace FASTBP_VM_NS {

template <typename T>
inline Vec<T> silu_bwd(Vec<T> da, Vec<T> z) {
  const Vec<T> one(T(1));
  const Vec<T> s = vsigmoid(z);
  return da * (s * fma(z, one - s, one));
}

// mish's t = tanh(softplus(z)) from one exp: with u = e^z, (1 + u)^2 = n + 1 for
// n = u (u + 2), so t = n / (n + 2), and 1 - t = 2 q with q = 1 / (n + 2) -- no cancellation
// as t nears 1 (1 - t^2 = 2 q (1 + t)). One exp and one division instead of exp, log1p and
// tanh (an expm1 and a division): the mish step of the 32-64x5-1 net at batch 64 took 1.8x
// relu's. Above z = 20, t is 1 (1 - t < 2 e^-40, below half an ulp of 1 in double): the
// select also keeps n = inf (u^2 overflows from z = 44 in float) out of n * q.
template <typename T>
inline Vec<T> mish_t(Vec<T> z, Vec<T> u, Vec<T>& q) {
  const Vec<T> one(T(1)), two(T(2));
  const Vec<T> n = u * (u + two);
  q = one / (n + two);
  return select(cmp_lt(Vec<T>(T(20)), z), one, n * q);
}

template <typename T>
inline Vec<T> mish_fwd(Vec<T> z) {
  Vec<T> q;
  return z * mish_t(z, vexp(z), q);
}

// da * (t + z sigmoid(z) (1 - t^2)), sigmoid(z) = u / (1 + u) (1 above z = 20, where e^z may
// overflow; then q = 0 and the term is 0 -- NaN at z = +inf, as in the reference's rule).
template <typename T>
inline Vec<T> mish_bwd(Vec<T> da, Vec<T> z) {
  const Vec<T> one(T(1));
  const Vec<T> u = vexp(z);
  Vec<T> q;
  const Vec<T> t = mish_t(z, u, q);
  const Vec<T> sig = select(cmp_lt(Vec<T>(T(20)), z), one, u / (one + u));
  return da * fma(z * sig, (q + q) * (one + t), t);
}

template <typename T>
inline Vec<T> hardswish_fwd(Vec<T> z) {
  const Vec<T> r = vmin(Vec<T>(T(6)), vmax(Vec<T>(T(0)), z + Vec<T>(T(3))));  // NaN kept
  return z * r / Vec<T>(T(6));
}

template <typename T>
inline Vec<T> hardswish_bwd(Vec<T> da, Vec<T> z) {
  const Vec<T> mid = da * (z / Vec<T>(T(3)) + Vec<T>(T(0.5)));
  const Vec<T> upper = select(cmp_le(Vec<T>(T(3)), z), da, mid);  // NaN -> mid (NaN)
  return select(cmp_le(z, Vec<T>(T(-3))), Vec<T>(T(0)), upper);
}

template <typename T, Act A>
struct ActOps;

#define FASTBP_ACT_OPS(A, NEEDS_Z, FWD, BWD)                                \
  template <typename T>                                                     \
  struct ActOps<T, Act::A> {                                                \
    using V = Vec<T>;                                                       \
    static constexpr bool needs_z = NEEDS_Z;                                \
    static V fwd(V z, V alpha) { (void)alpha; return FWD; }                 \
    static V bwd(V da, V z, V a, V alpha) {                                 \
      (void)z; (void)a; (void)alpha;                                        \
      return BWD;                                                           \
    }                                                                       \
  };

FASTBP_ACT_OPS(identity, false, z, da)
FASTBP_ACT_OPS(sigmoid, false, vsigmoid(z), da * (a * (V(T(1)) - a)))
FASTBP_ACT_OPS(tanh, false, vtanh(z), da * fma(V(T(0)) - a, a, V(T(1))))
FASTBP_ACT_OPS(relu, false, select(cmp_le(z, V(T(0))), V(T(0)), z),
               select(cmp_le(a, V(T(0))), V(T(0)), da))
FASTBP_ACT_OPS(leaky_relu, true, select(cmp_lt(V(T(0)), z), z, alpha * z),
               select(cmp_lt(V(T(0)), z), da, alpha * da))
FASTBP_ACT_OPS(elu, true, select(cmp_lt(V(T(0)), z), z, alpha * vexpm1(z)),
               select(cmp_lt(V(T(0)), z), da, da * (alpha * vexp(z))))
FASTBP_ACT_OPS(gelu, true, z * vncdf(z),
               da * fma(z * vexp(V(T(-0.5)) * (z * z)), V(T(0.39894228040143267794)),
                        vncdf(z)))
FASTBP_ACT_OPS(silu, true, z * vsigmoid(z), silu_bwd(da, z))
FASTBP_ACT_OPS(softplus, true, select(cmp_lt(V(T(20)), z), z, vlog1p(vexp(z))),
               select(cmp_lt(V(T(20)), z), da, da * vsigmoid(z)))
FASTBP_ACT_OPS(mish, true, mish_fwd(z), mish_bwd(da, z))
FASTBP_ACT_OPS(hardswish, true, hardswish_fwd(z), hardswish_bwd(da, z))
#undef FASTBP_ACT_OPS

// Rows narrower than a vector whose width they divide (dim | W, dim < W: the 1-8 unit layers
// of small networks) and stored contiguously: the n x dim block is one flat array, W values
// (W/dim rows) per vector, so a tiny layer costs n*dim/W vector evaluations instead of n.
// The bias is the same W-lane pattern for every vector (W/dim copies of it).
template <typename T>
inline bool flat_rows(int64_t dim, int64_t ld) {
  constexpr int W = Vec<T>::W;
  return W > 1 && dim < W && W % dim == 0 && ld == dim;  // (so dim is a power of two)
}

template <typename T, Act A>
void bias_act_forward_flat(T* y, T* z, const T* bias, int64_t n, int64_t dim, T alpha) {
  constexpr int W = Vec<T>::W;
  const Vec<T> al(alpha), b = tile_n(bias, dim);
  const int64_t count = n * dim;
  for (int64_t o = 0; o < count; o += W) {
    const int64_t m = count - o < W ? count - o : W;
    const Vec<T> v = load_n(y + o, m) + b;
    if (z) store_n(z + o, m, v);
    store_n(y + o, m, ActOps<T, A>::fwd(v, al));
  }
}

template <typename T, Act A>
void bias_act_forward_k(T* y, T* z, const T* bias, int64_t n, int64_t dim, int64_t ld,
                        T alpha) {
  if (flat_rows<T>(dim, ld)) return bias_act_forward_flat<T, A>(y, z, bias, n, dim, alpha);
  constexpr int W = Vec<T>::W;
  const Vec<T> al(alpha);
  for (int64_t i = 0; i < n; ++i) {
    T* row = y + i * ld;
    T* zrow = z ? z + i * dim : nullptr;
    for (int64_t j = 0; j < dim; j += W) {
      const int64_t m = dim - j < W ? dim - j : W;
      const Vec<T> v = load_n(row + j, m) + load_n(bias + j, m);
      if (zrow) store_n(zrow + j, m, v);
      store_n(row + j, m, ActOps<T, A>::fwd(v, al));
    }
  }
}

template <typename T, Act A>
void act_backward_k(T* da, const T* z, const T* a, int64_t count, T alpha) {
  constexpr int W = Vec<T>::W;
  const Vec<T> al(alpha);
  for (int64_t i = 0; i < count; i += W) {
    const int64_t m = count - i < W ? count - i : W;
    const Vec<T> zv = ActOps<T, A>::needs_z ? load_n(z + i, m) : Vec<T>(T(0));
    store_n(da + i, m, ActOps<T, A>::bwd(load_n(da + i, m), zv, load_n(a + i, m), al));
  }
}

// The column sums of flat rows (flat_rows): lane l of acc holds column l % dim's; added in lane
// order, over the first `used` lanes (count values: min(count, W)). The lanes past them hold
// +0 (+0 plus the padding's +-0), and so does no sum of lanes (x + y is -0 only when both
// are): adding them changed no bit, only cost the 1-unit layer of a batch of 4 twelve adds
// in a chain.
template <typename T>
inline void fold_lanes(Vec<T> acc, T* db, int64_t dim, int64_t count) {
  constexpr int W = Vec<T>::W;
  const int64_t used = count < W ? count : W;
  T lanes[W];
  acc.store(lanes);
  for (int64_t j = 0; j < dim; ++j) {
    T s = lanes[j];
    for (int64_t l = j + dim; l < used; l += dim) s += lanes[l];
    db[j] = s;
  }
}

// The flat form of act_backward_bias_k (see flat_rows): lane l of every vector belongs to
// column l % dim; the column sums are the lane sums folded in lane order. (Lanes past the end
// load da = 0, and every backward rule gives 0 for da = 0 at z = a = 0.)
template <typename T, Act A>
void act_backward_bias_flat(T* dy, T* db, const T* z, const T* a, int64_t n, int64_t dim,
                            T alpha) {
  constexpr int W = Vec<T>::W;
  const Vec<T> al(alpha);
  Vec<T> acc(T(0));
  const int64_t count = n * dim;
  for (int64_t o = 0; o < count; o += W) {
    const int64_t m = count - o < W ? count - o : W;
    const Vec<T> zv = ActOps<T, A>::needs_z ? load_n(z + o, m) : Vec<T>(T(0));
    const Vec<T> g = ActOps<T, A>::bwd(load_n(dy + o, m), zv, load_n(a + o, m), al);
    store_n(dy + o, m, g);
    acc = acc + g;
  }
  fold_lanes(acc, db, dim, count);
}

template <typename T, Act A>
void act_backward_bias_k(T* dy, T* db, const T* z, const T* a, int64_t n, int64_t dim,
                         T alpha) {
  if (flat_rows<T>(dim, dim)) return act_backward_bias_flat<T, A>(dy, db, z, a, n, dim, alpha);
  constexpr int W = Vec<T>::W;
  const Vec<T> al(alpha);
  // By blocks of W columns, the rows in order: each block's sums stay in a register (adding
  // them up in db row after row chained every row's add through a store and a load: 16% of
  // the step of an 8-16-16-1 net at a batch of 32).
  for (int64_t j = 0; j < dim; j += W) {
    const int64_t m = dim - j < W ? dim - j : W;
    Vec<T> acc(T(0));
    for (int64_t i = 0; i < n; ++i) {
      T* d = dy + i * dim + j;
      const Vec<T> zv = ActOps<T, A>::needs_z ? load_n(z + i * dim + j, m) : Vec<T>(T(0));
      const Vec<T> g = ActOps<T, A>::bwd(load_n(d, m), zv, load_n(a + i * dim + j, m), al);
      store_n(d, m, g);
      acc = acc + g;
    }
    store_n(db + j, m, acc);
  }
}

// act_backward_bias_k's column sums of a dz it did not form: the same vectors added in the same
// order; in the flat form the lanes past the end hold what that kernel's derivative gives
// them (f' rule at da = z = a = 0: +0, or -0 for a negative alpha), not a plain zero.
template <typename T, Act A>
void bias_grad_k(T* db, const T* dz, int64_t n, int64_t dim, T alpha) {
  constexpr int W = Vec<T>::W;
  if (flat_rows<T>(dim, dim)) {
    const Vec<T> zero(T(0));
    const Vec<T> pad = ActOps<T, A>::bwd(zero, zero, zero, Vec<T>(alpha));
    Vec<T> acc(T(0));
    const int64_t count = n * dim;
    for (int64_t o = 0; o < count; o += W) {
      if (count - o >= W) {
        acc = acc + load_n(dz + o, W);
        continue;
      }
      T tail[W];
      pad.store(tail);
      for (int64_t l = 0; l < count - o; ++l) tail[l] = dz[o + l];
      acc = acc + load_n(tail, W);
    }
    fold_lanes(acc, db, dim, count);
    return;
  }
  for (int64_t j = 0; j < dim; j += W) {  // (act_backward_bias_k's blocks and order)
    const int64_t m = dim - j < W ? dim - j : W;
    Vec<T> acc(T(0));
    for (int64_t i = 0; i < n; ++i) acc = acc + load_n(dz + i * dim + j, m);
    store_n(db + j, m, acc);
  }
}

template <typename T, Act A>
void act_forward_k(T* a, const T* z, int64_t count, T alpha) {
  const Vec<T> al(alpha);
  map_n(a, z, count, [al](Vec<T> v) { return ActOps<T, A>::fwd(v, al); });
}

// One instantiation per activation, picked by a switch on `act` per call.
#define FASTBP_ACT_DISPATCH(KERNEL, ...)                                          \
  switch (act) {                                                                  \
    case Act::identity: return KERNEL<T, Act::identity>(__VA_ARGS__);             \
    case Act::sigmoid: return KERNEL<T, Act::sigmoid>(__VA_ARGS__);               \
    case Act::tanh: return KERNEL<T, Act::tanh>(__VA_ARGS__);                     \
    case Act::relu: return KERNEL<T, Act::relu>(__VA_ARGS__);                     \
    case Act::leaky_relu: return KERNEL<T, Act::leaky_relu>(__VA_ARGS__);         \
    case Act::elu: return KERNEL<T, Act::elu>(__VA_ARGS__);                       \
    case Act::gelu: return KERNEL<T, Act::gelu>(__VA_ARGS__);                     \
    case Act::silu: return KERNEL<T, Act::silu>(__VA_ARGS__);                     \
    case Act::softplus: return KERNEL<T, Act::softplus>(__VA_ARGS__);             \
    case Act::mish: return KERNEL<T, Act::mish>(__VA_ARGS__);                     \
    case Act::hardswish: return KERNEL<T, Act::hardswish>(__VA_ARGS__);           \
  }

template <typename T>
void bias_act_forward_isa(T* y, T* z, const T* bias, int64_t n, int64_t dim, int64_t ld, Act act,
                          T alpha) {
  if (act == Act::identity || act == Act::relu) z = nullptr;
  FASTBP_ACT_DISPATCH(bias_act_forward_k, y, z, bias, n, dim, ld, alpha)
}
template <typename T>
void act_backward_isa(T* da, const T* z, const T* a, int64_t count, Act act, T alpha) {
  if (act == Act::identity) return;
  FASTBP_ACT_DISPATCH(act_backward_k, da, z, a, count, alpha)
}
template <typename T>
void act_backward_bias_isa(T* dy, T* db, const T* z, const T* a, int64_t n, int64_t dim, Act act,
                           T alpha) {
  FASTBP_ACT_DISPATCH(act_backward_bias_k, dy, db, z, a, n, dim, alpha)
}
template <typename T>
void act_forward_isa(T* a, const T* z, int64_t count, Act act, T alpha) {
  FASTBP_ACT_DISPATCH(act_forward_k, a, z, count, alpha)
}
template <typename T>
void bias_grad_isa(T* db, const T* dz, int64_t n, int64_t dim, Act act, T alpha) {
  FASTBP_ACT_DISPATCH(bias_grad_k, db, dz, n, dim, alpha)
}
#undef FASTBP_ACT_DISPATCH

template <typename T>
const ActKernels<T>& act_kernels_isa() {
  static const ActKernels<T> k = {&bias_act_forward_isa<T>, &act_backward_isa<T>,
                                  &act_backward_bias_isa<T>, &act_forward_isa<T>,
                                  &bias_grad_isa<T>};
  return k;
}

}  // namespace FASTBP_VM_NS
}  // namespace fastbp
