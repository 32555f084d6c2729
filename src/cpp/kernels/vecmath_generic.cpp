// Vector math of vecmath.h compiled for the baseline instruction set (one lane: plain C++).
#define FASTBP_VM_NS generic
#include "kernels/vecmath_impl.h"

namespace fastbp {
namespace generic {
template void vecmath_array<float>(VecFn, float*, const float*, int64_t);
template void vecmath_array<double>(VecFn, double*, const double*, int64_t);
}  // namespace generic
}  // namespace fastbp
