// Vector math of vecmath.h compiled for AVX2 + FMA; called only when the CPU has them.
#define FASTBP_VM_NS avx2
#include "kernels/vecmath_impl.h"

namespace fastbp {
namespace avx2 {
template void vecmath_array<float>(VecFn, float*, const float*, int64_t);
template void vecmath_array<double>(VecFn, double*, const double*, int64_t);
}  // namespace avx2
}  // namespace fastbp
