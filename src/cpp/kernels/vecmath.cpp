// Array interface of the vector math: the kernels of the requested instruction set.
#include "kernels/vecmath.h"

#include <stdexcept>

namespace fastbp {

#define FASTBP_VM_DECLARE(NS)                                   \
  namespace NS {                                                \
  template <typename T>                                         \
  void vecmath_array(VecFn fn, T* y, const T* x, int64_t n);    \
  }
FASTBP_VM_DECLARE(generic)
#if defined(FASTBP_HAVE_X86_KERNELS)
FASTBP_VM_DECLARE(avx2)
FASTBP_VM_DECLARE(avx512)
#endif
#undef FASTBP_VM_DECLARE

VecFn vecfn_from_name(const std::string& name) {
  static const char* names[] = {"exp", "expm1", "log1p", "tanh", "erf"};
  for (int i = 0; i < 5; ++i)
    if (name == names[i]) return static_cast<VecFn>(i);
  throw std::invalid_argument("unknown vector math function '" + name +
                              "'; expected one of exp, expm1, log1p, tanh, erf");
}

template <typename T>
void vecmath_apply(Isa isa, VecFn fn, T* y, const T* x, int64_t n) {
  using Fn = void (*)(VecFn, T*, const T*, int64_t);
  Fn f = &generic::vecmath_array<T>;
#if defined(FASTBP_HAVE_X86_KERNELS)
  if (isa == Isa::avx2) f = &avx2::vecmath_array<T>;
  if (isa == Isa::avx512) f = &avx512::vecmath_array<T>;
#endif
  f(fn, y, x, n);
}

template void vecmath_apply<float>(Isa, VecFn, float*, const float*, int64_t);
template void vecmath_apply<double>(Isa, VecFn, double*, const double*, int64_t);

}  // namespace fastbp
