// The finite check of input arrays (core/finite.h: integer tests of the exponent bits),
// compiled once per instruction set: included by finite_generic.cpp, finite_avx2.cpp and
// finite_avx512.cpp inside namespace FASTBP_FINITE_NS, so the compiler widens the loop to the
// ISA's vectors (the baseline file ran it on 16-byte vectors, bound by issuing them: a 4 MB
// float32 input took 83-108 us on the Zen 4 VM, 50-52 us compiled for AVX-512).
#pragma once
#include "core/finite.h"
#include "core/kernel_set.h"

#ifndef FASTBP_FINITE_NS
#error "define FASTBP_FINITE_NS before including finite_impl.h"
#endif

namespace fastbp {
namespace FASTBP_FINITE_NS {

template <typename T>
bool all_finite_isa(const T* x, int64_t count) {
  return all_finite(x, count);
}

// Defined once per including file (one per ISA), declared in core/kernel_set.h.
void register_finite_kernels(KernelSet& set) {
  set.f32.all_finite = &all_finite_isa<float>;
  set.f64.all_finite = &all_finite_isa<double>;
}

}  // namespace FASTBP_FINITE_NS
}  // namespace fastbp
