// The finite check compiled for the avx2 kernel set (see finite_impl.h).
#define FASTBP_FINITE_NS avx2
#include "kernels/finite_impl.h"
