// Optimizer update loops compiled for AVX2 (see optimizers_impl.h); in the avx2 kernel set,
// selected only when the CPU has AVX2 and FMA (core/cpu.h).
#define FASTBP_OPT_NS avx2
#include "kernels/optimizers_impl.h"
