#include "kernels/activations.h"

namespace fastbp {

template <typename T>
void bias_act_forward(T* y, T* z, const T* bias, int64_t n, int64_t dim, int64_t ld, Act act,
                      T alpha) {
  for (int64_t i = 0; i < n; ++i) {
    T* row = y + i * ld;
    T* zrow = z ? z + i * dim : nullptr;
    switch (act) {
      case Act::identity:
        for (int64_t j = 0; j < dim; ++j) row[j] += bias[j];
        break;
      case Act::relu:
        for (int64_t j = 0; j < dim; ++j) {
          const T v = row[j] + bias[j];
          row[j] = v > T(0) ? v : T(0);
        }
        break;
      default:
        for (int64_t j = 0; j < dim; ++j) {
          const T v = row[j] + bias[j];
          if (zrow) zrow[j] = v;
          row[j] = act_scalar(act, v, alpha);
        }
    }
  }
}

template <typename T>
void act_backward(T* da, const T* z, const T* a, int64_t count, Act act, T alpha) {
  switch (act) {
    case Act::identity:
      return;
    case Act::relu:
      for (int64_t i = 0; i < count; ++i) da[i] = a[i] > T(0) ? da[i] : T(0);
      return;
    case Act::sigmoid:
      for (int64_t i = 0; i < count; ++i) da[i] *= a[i] * (T(1) - a[i]);
      return;
    case Act::tanh:
      for (int64_t i = 0; i < count; ++i) da[i] *= T(1) - a[i] * a[i];
      return;
    default:
      for (int64_t i = 0; i < count; ++i) da[i] *= act_deriv_scalar(act, z[i], a[i], alpha);
  }
}

template <typename T>
void act_backward_bias(T* dy, T* db, const T* z, const T* a, int64_t n, int64_t dim, Act act,
                       T alpha) {
  for (int64_t j = 0; j < dim; ++j) db[j] = T(0);
  for (int64_t i = 0; i < n; ++i) {
    T* d = dy + i * dim;
    const T* ar = a + i * dim;
    switch (act) {
      case Act::identity:
        break;
      case Act::relu:
        for (int64_t j = 0; j < dim; ++j) d[j] = ar[j] > T(0) ? d[j] : T(0);
        break;
      case Act::sigmoid:
        for (int64_t j = 0; j < dim; ++j) d[j] *= ar[j] * (T(1) - ar[j]);
        break;
      case Act::tanh:
        for (int64_t j = 0; j < dim; ++j) d[j] *= T(1) - ar[j] * ar[j];
        break;
      default: {
        const T* zr = z + i * dim;
        for (int64_t j = 0; j < dim; ++j) d[j] *= act_deriv_scalar(act, zr[j], ar[j], alpha);
      }
    }
    for (int64_t j = 0; j < dim; ++j) db[j] += d[j];
  }
}

template <typename T>
void act_forward(T* a, const T* z, int64_t count, Act act, T alpha) {
  for (int64_t i = 0; i < count; ++i) a[i] = act_scalar(act, z[i], alpha);
}

#define FASTBP_INST(T)                                                                        \
  template void bias_act_forward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, Act, T);     \
  template void act_backward<T>(T*, const T*, const T*, int64_t, Act, T);                     \
  template void act_backward_bias<T>(T*, T*, const T*, const T*, int64_t, int64_t, Act, T);   \
  template void act_forward<T>(T*, const T*, int64_t, Act, T);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
