// Optimizer update loops for the baseline instruction set (see optimizers_impl.h).
#define FASTBP_OPT_NS generic
#include "kernels/optimizers_impl.h"

namespace fastbp {
namespace generic {
FASTBP_OPT_INSTANTIATE
}  // namespace generic
}  // namespace fastbp
