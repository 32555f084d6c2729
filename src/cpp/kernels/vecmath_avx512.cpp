// Vector math of vecmath.h compiled for AVX-512; called only when the CPU has it.
#define FASTBP_VM_NS avx512
#include "kernels/vecmath_impl.h"

namespace fastbp {
namespace avx512 {
template void vecmath_array<float>(VecFn, float*, const float*, int64_t);
template void vecmath_array<double>(VecFn, double*, const double*, int64_t);
}  // namespace avx512
}  // namespace fastbp
