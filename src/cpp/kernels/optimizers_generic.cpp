// Optimizer update loops for the baseline instruction set (see optimizers_impl.h).
#define FASTBP_OPT_NS generic
#include "kernels/optimizers_impl.h"
