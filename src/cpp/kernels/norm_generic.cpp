// The norm layers' loops compiled for the generic kernel set (see norm_impl.h).
#define FASTBP_NORM_NS generic
#include "kernels/norm_impl.h"
