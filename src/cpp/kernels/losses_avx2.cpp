// Loss kernel of losses.h compiled for AVX2 + FMA; used only when the CPU has them.
#define FASTBP_VM_NS avx2
#include "kernels/losses_impl.h"  // (instantiates loss_rows_isa in namespace avx2)
