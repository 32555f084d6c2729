// Optimizer update loops compiled for AVX2 (see optimizers_impl.h); called only when
// active_isa() says the CPU has it.
#define FASTBP_OPT_NS avx2
#include "kernels/optimizers_impl.h"

namespace fastbp {
namespace avx2 {
FASTBP_OPT_INSTANTIATE
}  // namespace avx2
}  // namespace fastbp
