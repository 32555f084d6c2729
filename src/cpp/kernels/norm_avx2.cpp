// The norm layers' loops compiled for the avx2 kernel set (see norm_impl.h).
#define FASTBP_NORM_NS avx2
#include "kernels/norm_impl.h"
