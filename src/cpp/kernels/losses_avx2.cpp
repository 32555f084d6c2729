// Loss kernel of losses.h compiled for AVX2 + FMA; used only when the CPU has them.
#define FASTBP_VM_NS avx2
#include "kernels/losses_impl.h"

namespace fastbp {
namespace avx2 {
template double loss_rows_isa<float>(float*, const float*, const float*, const int64_t*,
                                     const float*, int64_t, int64_t, const LossArgs&, int64_t,
                                     int64_t, double*, double*);
template double loss_rows_isa<double>(double*, const double*, const double*, const int64_t*,
                                      const double*, int64_t, int64_t, const LossArgs&, int64_t,
                                      int64_t, double*, double*);
}  // namespace avx2
}  // namespace fastbp
