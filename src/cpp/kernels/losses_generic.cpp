// Loss kernel of losses.h compiled for the baseline instruction set (one lane: plain C++).
#define FASTBP_VM_NS generic
#include "kernels/losses_impl.h"  // (instantiates loss_rows_isa in namespace generic)
