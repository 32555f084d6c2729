#include "core/threading.h"

#include <stdexcept>
#include <string>

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastbp {

int get_num_threads() {
#ifdef FASTBP_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("num_threads must be >= 1, got " + std::to_string(n));
#ifdef FASTBP_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
}

bool have_openmp() {
#ifdef FASTBP_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

const char* openmp_runtime() {
#ifdef FASTBP_HAVE_OPENMP
  static const std::string s = "OpenMP " + std::to_string(_OPENMP);
  return s.c_str();
#else
  return "none";
#endif
}

}  // namespace fastbp
