// Optimizer update loops compiled for AVX512 (see optimizers_impl.h); called only when
// active_isa() says the CPU has it.
#define FASTBP_OPT_NS avx512
#include "kernels/optimizers_impl.h"

namespace fastbp {
namespace avx512 {
FASTBP_OPT_INSTANTIATE
}  // namespace avx512
}  // namespace fastbp
