// The norm layers' loops compiled for the avx512 kernel set (see norm_impl.h).
#define FASTBP_NORM_NS avx512
#include "kernels/norm_impl.h"
