// Activation kernels of activations.h compiled for AVX-512; used only when the CPU has it.
#define FASTBP_VM_NS avx512
#include "kernels/activations_impl.h"

namespace fastbp {
namespace avx512 {
template const ActKernels<float>& act_kernels_isa<float>();
template const ActKernels<double>& act_kernels_isa<double>();
}  // namespace avx512
}  // namespace fastbp
