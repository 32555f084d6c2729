// The activation kernel table of the active instruction set.
#include "kernels/activations.h"

#include "core/cpu.h"

namespace fastbp {

#define FASTBP_ACT_DECLARE(NS)             \
  namespace NS {                           \
  template <typename T>                    \
  const ActKernels<T>& act_kernels_isa();  \
  }
FASTBP_ACT_DECLARE(generic)
#if defined(FASTBP_HAVE_X86_KERNELS)
FASTBP_ACT_DECLARE(avx2)
FASTBP_ACT_DECLARE(avx512)
#endif
#undef FASTBP_ACT_DECLARE

// One table per ISA, filled once; indexed by the active ISA (Isa values are 0, 1, 2).
template <typename T>
const ActKernels<T>& act_kernels() {
  static const ActKernels<T>* const sets[3] = {
      &generic::act_kernels_isa<T>(),
#if defined(FASTBP_HAVE_X86_KERNELS)
      &avx2::act_kernels_isa<T>(), &avx512::act_kernels_isa<T>(),
#else
      &generic::act_kernels_isa<T>(), &generic::act_kernels_isa<T>(),
#endif
  };
  return *sets[static_cast<int>(active_isa())];
}

template const ActKernels<float>& act_kernels<float>();
template const ActKernels<double>& act_kernels<double>();

}  // namespace fastbp
