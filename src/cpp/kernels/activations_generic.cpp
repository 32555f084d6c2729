// Activation kernels of activations.h compiled for the baseline instruction set (one lane: plain C++).
#define FASTBP_VM_NS generic
#include "kernels/activations_impl.h"

namespace fastbp {
namespace generic {
template const ActKernels<float>& act_kernels_isa<float>();
template const ActKernels<double>& act_kernels_isa<double>();
}  // namespace generic
}  // namespace fastbp
