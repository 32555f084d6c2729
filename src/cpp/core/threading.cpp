#include "core/threading.h"

#include <atomic>
#include <stdexcept>
#include <string>

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastbp {

// The count set by set_num_threads, process-wide. omp_set_num_threads alone is not enough:
// it sets the calling thread's ICV only, so a model trained from another Python thread
// (threading.Thread, a web server's worker) would ignore fastbp.set_num_threads.
// 0: never set, use OpenMP's default (OMP_NUM_THREADS or all cores).
// The count in use is the smaller of this and the calling thread's OpenMP ICV, so a limit
// set the OpenMP way in this thread (threadpoolctl's threadpool_limits calls
// omp_set_num_threads) is honoured too.
static std::atomic<int> g_num_threads{0};

int get_num_threads() {
#ifdef FASTBP_HAVE_OPENMP
  const int n = g_num_threads.load(std::memory_order_relaxed);
  const int icv = omp_get_max_threads();
  return n > 0 && n < icv ? n : icv;
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("num_threads must be >= 1, got " + std::to_string(n));
  g_num_threads.store(n, std::memory_order_relaxed);
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
