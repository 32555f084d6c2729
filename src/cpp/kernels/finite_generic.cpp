// The finite check compiled for the generic kernel set (see finite_impl.h).
#define FASTBP_FINITE_NS generic
#include "kernels/finite_impl.h"
