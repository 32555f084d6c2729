// Optimizer update loops compiled for AVX-512 (see optimizers_impl.h); in the avx512 kernel
// set, selected only when the CPU has AVX-512 (core/cpu.h).
#define FASTBP_OPT_NS avx512
#include "kernels/optimizers_impl.h"
