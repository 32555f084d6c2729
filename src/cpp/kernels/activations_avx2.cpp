// Activation kernels of activations.h compiled for AVX2 + FMA; used only when the CPU has them.
#define FASTBP_VM_NS avx2
#include "kernels/activations_impl.h"

namespace fastbp {
namespace avx2 {
template const ActKernels<float>& act_kernels_isa<float>();
template const ActKernels<double>& act_kernels_isa<double>();
}  // namespace avx2
}  // namespace fastbp
