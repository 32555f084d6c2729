// The kernels of one instruction set in named slots (the idea of BLIS's context,
// config/haswell/bli_cntx_init_haswell.c): each ISA's set is filled once, by its init
// function in kernel_set.cpp (the generic kernels first, then every slot the wider ISA
// implements overwritten), and callers read the slots of the active ISA through kernels().
// Nothing outside kernel_set.cpp switches on the ISA.
//
// Adding a kernel family: a slot here, a register_<family>_kernels(KernelSet&) function per
// ISA next to the kernels (declared below), one call in each init function of kernel_set.cpp.
#pragma once
#include <cstdint>

#include "core/cpu.h"
#include "kernels/norm.h"
#include "kernels/optimizers.h"

namespace fastbp {

// One optimizer's update loop over a range of the arena (kernels/optimizers_impl.h):
// p, g and the state pointers cover the same n elements; `step` counts this update (1 first).
// Call it through opt_range (kernels/optimizers.h) where every element must see the loop's
// vector body.
template <typename T>
using OptStepFn = void (*)(T* p, T* g, int64_t n, const OptConfig& c, const OptSlots<T>& st,
                           int64_t step);

// kernel(p, g, n, c, st, step) such that every element is computed by the loop's vector body,
// whatever n is: the whole multiples of kOptTail elements in place, the rest on a copy padded
// to kOptTail (kernels/optimizers.cpp). A loop's scalar tail may contract multiply-adds
// differently from its vector body, and an element must get the same bits whether the fused
// update (nn/fused_update.h) or the whole-arena pass updates it.
constexpr int64_t kOptTail = 64;
template <typename T>
void opt_range(OptStepFn<T> kernel, T* p, T* g, int64_t n, const OptConfig& c,
               const OptSlots<T>& st, int64_t step);

// The L1/L2 penalty over a range of kPenaltyLanes-interleaved elements (optimizers_impl.h):
// g += l1 sign(w) + l2 w; element i's |w| and w^2 (in double) summed into lane
// i % kPenaltyLanes of a1, a2 (the tail into lane 0; a sum whose coefficient is 0 is not
// formed). The lanes are summed in order by the caller.
constexpr int kPenaltyLanes = 32;
template <typename T>
using PenaltyFn = void (*)(T* g, const T* w, int64_t n, T l1, T l2, double* a1, double* a2);

// The penalty pass (PenaltyFn) and the optimizer's update (OptStepFn) over the same range in
// one pass, with the same results: p, g and the lanes a1, a2 as the two calls leave them,
// except that g is not written (p and g are read once). For the optimizers whose update is
// bound by something other than memory (Adam's divides and square roots leave the multiply-add
// units idle, so the penalty's operations come nearly free: docs/ENGINE.md, "Penalties").
// The range is `rows` rows of n elements, row q at p + q * ld (g and the state alike): each
// row as one PenaltyFn call over it would take it (a block of a weight's column strip,
// nn/fused_update.h), the update's scalars formed once.
template <typename T>
using PenOptStepFn = void (*)(T* p, T* g, int64_t rows, int64_t n, int64_t ld,
                              const OptConfig& c, const OptSlots<T>& st, int64_t step, T l1, T l2,
                              double* a1, double* a2);

// The gradient x^T dz of a block of a dense weight at a batch of one row (optimizers_impl.h
// outer_rows; the fused update, nn/fused_update.h).
template <typename T>
using OuterFn = void (*)(T* g, int64_t ldg, const T* x, const T* dz, int64_t rows, int64_t cols);

// Are all `count` values finite (core/finite.h, compiled per ISA)?
template <typename T>
using AllFiniteFn = bool (*)(const T* x, int64_t count);

template <typename T>
struct KernelSlots {
  // Optimizer update loops, indexed by OptKind.
  OptStepFn<T> opt_step[kNumOptKinds] = {};
  PenOptStepFn<T> opt_penalised[kNumOptKinds] = {};  // (null: no folded form)
  // The update of a team thread's part of parameters its team-mates read (their stores go
  // around the caches; optimizers_impl.h adam_shared); the same bits as opt_step. (null: none)
  OptStepFn<T> opt_step_shared[kNumOptKinds] = {};
  PenaltyFn<T> penalty = nullptr;
  OuterFn<T> outer = nullptr;
  AllFiniteFn<T> all_finite = nullptr;
  // The norm layers' loops (kernels/norm.h).
  BnForwardFn<T> bn_forward = nullptr;
  BnInferFn<T> bn_infer = nullptr;
  BnBackwardFn<T> bn_backward = nullptr;
  LnForwardFn<T> ln_forward = nullptr;
  LnParamGradFn<T> ln_param_grads = nullptr;
  LnInputGradFn<T> ln_input_grad = nullptr;
  // GEMM micro-kernels and blocking: the GEMM driver (kernels/gemm/) keeps its own per-ISA
  // lookup (gemm_kernel_for); its slot and register_gemm_kernels belong here when it moves.
};

struct KernelSet {
  Isa isa = Isa::generic;
  KernelSlots<float> f32;
  KernelSlots<double> f64;
  template <typename T>
  const KernelSlots<T>& slots() const {
    if constexpr (sizeof(T) == sizeof(float)) return f32;
    else return f64;
  }
};

// The set of `isa` (built once, on first use, for every ISA of this build).
const KernelSet& kernel_set(Isa isa);
// The set of the active ISA (core/cpu.h active_isa()).
inline const KernelSet& kernels() { return kernel_set(active_isa()); }

// Registration functions, one per kernel family and ISA, defined next to the kernels.
namespace generic {
void register_optimizer_kernels(KernelSet& set);
void register_norm_kernels(KernelSet& set);
void register_finite_kernels(KernelSet& set);
}
#if defined(FASTBP_HAVE_X86_KERNELS)
namespace avx2 {
void register_optimizer_kernels(KernelSet& set);
void register_norm_kernels(KernelSet& set);
void register_finite_kernels(KernelSet& set);
}
namespace avx512 {
void register_optimizer_kernels(KernelSet& set);
void register_norm_kernels(KernelSet& set);
void register_finite_kernels(KernelSet& set);
}
#endif

}  // namespace fastbp
