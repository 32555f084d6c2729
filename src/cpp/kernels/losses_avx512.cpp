// Loss kernel of losses.h compiled for AVX-512; used only when the CPU has it.
#define FASTBP_VM_NS avx512
#include "kernels/losses_impl.h"  // (instantiates loss_rows_isa in namespace avx512)
