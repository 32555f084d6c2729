// The loss kernel of the active instruction set.
#include "kernels/losses.h"

#include "core/cpu.h"

namespace fastbp {

#define FASTBP_LOSS_DECLARE(NS)                                                              \
  namespace NS {                                                                             \
  template <typename T>                                                                      \
  double loss_rows_isa(T*, const T*, const T*, const int64_t*, const T*, int64_t, int64_t,   \
                       const LossArgs&, int64_t, int64_t, double*, double*);                 \
  }
FASTBP_LOSS_DECLARE(generic)
#if defined(FASTBP_HAVE_X86_KERNELS)
FASTBP_LOSS_DECLARE(avx2)
FASTBP_LOSS_DECLARE(avx512)
#endif
#undef FASTBP_LOSS_DECLARE

// The kernel of the active ISA, from a table filled once (Isa values are 0, 1, 2).
template <typename T>
double loss_rows(T* dlogits, const T* logits, const T* target, const int64_t* labels,
                 const T* weight, int64_t n, int64_t k, const LossArgs& args, int64_t r0,
                 int64_t r1, double* terms, double* inv_w) {
  using Fn = double (*)(T*, const T*, const T*, const int64_t*, const T*, int64_t, int64_t,
                        const LossArgs&, int64_t, int64_t, double*, double*);
  static const Fn sets[3] = {
      &generic::loss_rows_isa<T>,
#if defined(FASTBP_HAVE_X86_KERNELS)
      &avx2::loss_rows_isa<T>, &avx512::loss_rows_isa<T>,
#else
      &generic::loss_rows_isa<T>, &generic::loss_rows_isa<T>,
#endif
  };
  return sets[static_cast<int>(active_isa())](dlogits, logits, target, labels, weight, n, k,
                                                args, r0, r1, terms, inv_w);
}

template <typename T>
double loss_forward_backward(T* dlogits, const T* logits, const T* target,
                             const int64_t* labels, const T* weight, int64_t n, int64_t k,
                             const LossArgs& args) {
  double inv_w;
  const double total =
      loss_rows(dlogits, logits, target, labels, weight, n, k, args, 0, n, nullptr, &inv_w);
  return total * inv_w;
}

template double loss_forward_backward<float>(float*, const float*, const float*, const int64_t*,
                                             const float*, int64_t, int64_t, const LossArgs&);
template double loss_forward_backward<double>(double*, const double*, const double*,
                                              const int64_t*, const double*, int64_t, int64_t,
                                              const LossArgs&);
template double loss_rows<float>(float*, const float*, const float*, const int64_t*,
                                 const float*, int64_t, int64_t, const LossArgs&, int64_t,
                                 int64_t, double*, double*);
template double loss_rows<double>(double*, const double*, const double*, const int64_t*,
                                  const double*, int64_t, int64_t, const LossArgs&, int64_t,
                                  int64_t, double*, double*);

}  // namespace fastbp
