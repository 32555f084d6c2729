// Loss kernel of losses.h compiled for AVX-512; used only when the CPU has it.
#define FASTBP_VM_NS avx512
#include "kernels/losses_impl.h"

namespace fastbp {
namespace avx512 {
template double loss_rows_isa<float>(float*, const float*, const float*, const int64_t*,
                                     const float*, int64_t, int64_t, const LossArgs&, int64_t,
                                     int64_t, double*, double*);
template double loss_rows_isa<double>(double*, const double*, const double*, const int64_t*,
                                      const double*, int64_t, int64_t, const LossArgs&, int64_t,
                                      int64_t, double*, double*);
}  // namespace avx512
}  // namespace fastbp
