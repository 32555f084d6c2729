// Vectorised elementwise math: y[i] = f(x[i]) for f in exp, expm1, log1p, tanh, erf, in float
// and double, one implementation (vecmath_impl.h) compiled per instruction set:
// vecmath_generic.cpp (baseline, one lane), vecmath_avx2.cpp (AVX2 + FMA, 256 bit),
// vecmath_avx512.cpp (AVX-512, 512 bit). The activation and loss kernels call the same inline
// functions directly; this header is the array interface (used by tests and benchmarks).
//
// Accuracy, measured against the C library over the whole range (tests/test_vecmath.py checks
// these bounds in every ISA; ulp = unit in the last place of the exact result):
//   function  double          float     (largest measured, double/float: exp 0.95/0.95,
//                                        expm1 1.7/1.3, log1p 0.8/0.8, tanh 2.5/2.5, erf 2.0/2.4)
//   exp       <= 1 ulp        <= 1 ulp  subnormal results <= 1 ulp of the subnormal spacing
//   expm1     <= 2 ulp        <= 2 ulp
//   log1p     <= 1 ulp        <= 1 ulp
//   tanh      <= 3 ulp        <= 3 ulp
//   erf       <= 2 ulp        <= 3 ulp
// Special values follow C99 Annex F: exp(-inf) = 0, exp(+inf) = +inf, overflow -> +inf,
// underflow -> 0 (through the subnormals), expm1(-inf) = -1, log1p(-1) = -inf,
// log1p(x < -1) = NaN, tanh(+-inf) = +-1, erf(+-inf) = +-1; +-0 and the sign of zero are kept
// by expm1, log1p, tanh and erf; NaN in gives NaN out for every function.
// Results may differ by up to the stated bound between instruction sets (the generic build
// has one FMA per step where the vector builds have theirs, but the same algorithm).
#pragma once
#include <cstdint>
#include <string>

#include "core/cpu.h"

namespace fastbp {

enum class VecFn : int { exp = 0, expm1, log1p, tanh, erf };

VecFn vecfn_from_name(const std::string& name);  // throws std::invalid_argument

// y[i] = fn(x[i]), i < n, with the kernels of `isa` (which the CPU must support; y may alias x).
template <typename T>
void vecmath_apply(Isa isa, VecFn fn, T* y, const T* x, int64_t n);

}  // namespace fastbp
