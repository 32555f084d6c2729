// The finite check compiled for the avx512 kernel set (see finite_impl.h).
#define FASTBP_FINITE_NS avx512
#include "kernels/finite_impl.h"
