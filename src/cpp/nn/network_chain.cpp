// A training step of a small network of dense layers on one thread, as a chain of direct
// kernel calls (docs/ENGINE.md, "Small networks"). Where every product of the step takes
// gemm's tiny path (a batch of 2-16 rows through layers no wider than one vector: the 2-4-1
// net), forward, loss and backward call the tiny product kernel and the activation kernels
// themselves, in the order Sequential and Dense call them through gemm() and the activation
// wrappers -- without gemm()'s dispatch per product, the layers' virtual calls and the checks
// of paths such a step never takes (the 2-4-1 net at a batch of 4, Adam, one thread on the
// Zen 4 VM: 281 -> 243 ns a step).
//
// The same kernels on the same operands, so the same bits as forward_backward: only an
// execution strategy (tests/test_chain.py compares the two bit for bit, the engine's
// _set_chain_allowed(False) turning the chain off).
#include "core/cpu.h"
#include "core/team.h"
#include "kernels/activations.h"
#include "kernels/gemm/gemm.h"
#include "kernels/losses.h"
#include "nn/network.h"

namespace fastbp {

template <typename T>
bool Network<T>::chain_fits(int64_t n) {
  const Isa isa = active_isa();
  if (n != chain_n_ || static_cast<int>(isa) != chain_isa_) {
    const GemmFn<T> tiny = tiny_gemm_kernel<T>(isa);
    chain_count_ = chain_allowed_ && tiny != nullptr
                       ? body_.chain(chain_, kChainMaxLayers, out_.data(), dout_.data())
                       : 0;
    chain_reserved_ = reserved_;
    bool ok = chain_count_ > 0;
    for (int i = 0; ok && i < chain_count_; ++i) {  // (x W, x^T dz, and dz W^T but the first's)
      const int64_t in = chain_[i].in, out = chain_[i].out;
      ok = gemm_path<T>(Trans::N, Trans::N, n, out, in, isa) == GemmPath::tiny &&
           gemm_path<T>(Trans::T, Trans::N, in, out, n, isa) == GemmPath::tiny &&
           (i == 0 || gemm_path<T>(Trans::N, Trans::T, n, in, out, isa) == GemmPath::tiny);
    }
    chain_tiny_ = ok ? tiny : nullptr;
    chain_n_ = n;
    chain_isa_ = static_cast<int>(isa);
  }
  return chain_tiny_ != nullptr && current_team() == nullptr;  // (in a team: not gemm's tiny)
}

template <typename T>
double Network<T>::chain_forward_backward(const T* x, const Target<T>& t, int64_t n,
                                          const LossArgs& loss, const PenaltyArgs& pen) {
  reserve(n);
  if (chain_reserved_ != reserved_) {  // (the buffers grew: the layers' y, dy and z moved)
    chain_count_ = body_.chain(chain_, kChainMaxLayers, out_.data(), dout_.data());
    chain_reserved_ = reserved_;
  }
  const ChainLayer<T>* c = chain_;
  const int count = chain_count_;
  const GemmFn<T> tiny = chain_tiny_;  // (checked by chain_fits for these shapes)
  const ActKernels<T>& ak = act_kernels<T>();
  for (int i = 0; i < count; ++i) {  // (Dense::forward: y = x W, then f(y + b), z kept)
    const ChainLayer<T>& l = c[i];
    tiny(Trans::N, Trans::N, n, l.out, l.in, T(1), i == 0 ? x : c[i - 1].y, l.in, l.W, l.out,
         T(0), l.y, l.out);
    ak.bias_act_forward(l.y, l.z, l.b, n, l.out, l.out, l.act, l.alpha);
  }
  double value = loss_forward_backward<T>(dout_.data(), out_.data(), t.values, t.labels,
                                          t.weight, n, out_dim(), loss);
  ++step_counter_;
  for (int i = count; i-- > 0;) {  // (Dense::backward: dz and db, dx = dz W^T, dW = x^T dz)
    const ChainLayer<T>& l = c[i];
    ak.act_backward_bias(l.dy, l.db, l.z, l.y, n, l.out, l.act, l.alpha);
    if (i > 0)
      tiny(Trans::N, Trans::T, n, l.in, l.out, T(1), l.dy, l.out, l.W, l.out, T(0), c[i - 1].dy,
           l.in);
    tiny(Trans::T, Trans::N, l.in, l.out, n, T(1), i == 0 ? x : c[i - 1].y, l.in, l.dy, l.out,
         T(0), l.dW, l.out);
  }
  ++chain_steps_;
  if (pen.l1 != 0.0 || pen.l2 != 0.0) value += add_penalty(pen);
  return value;
}

#define FASTBP_INST(T)                                                                     \
  template bool Network<T>::chain_fits(int64_t);                                           \
  template double Network<T>::chain_forward_backward(const T*, const Target<T>&, int64_t,  \
                                                     const LossArgs&, const PenaltyArgs&);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
