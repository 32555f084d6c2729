#include "core/threading.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "core/platform.h"
#include "core/team.h"

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

// Set in a forked child whose parent could not shut its worker pool down before the fork.
static std::atomic<bool> g_fork_serial{false};

int max_threads() {
  static const int bound = [] {
    const unsigned cpus = std::thread::hardware_concurrency();  // 0 when unknown
    return int(std::min(1024u, std::max(4u, 4u * cpus)));
  }();
  return bound;
}

int get_num_threads() {
#ifdef FASTBP_HAVE_OPENMP
  if (g_fork_serial.load(std::memory_order_relaxed)) return 1;
  const int n = g_num_threads.load(std::memory_order_relaxed);
  const int icv = std::min(omp_get_max_threads(), max_threads());
  return n > 0 && n < icv ? n : icv;
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1 || n > max_threads())
    throw std::invalid_argument("num_threads must be in [1, " + std::to_string(max_threads()) +
                                "] (4 per logical CPU), got " + std::to_string(n));
  g_num_threads.store(n, std::memory_order_relaxed);
#ifdef FASTBP_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
}

bool fork_serial() { return g_fork_serial.load(); }

// The calling thread's team (core/team.h); one per thread, set only inside a team region.
static thread_local const Team* tl_team = nullptr;
std::atomic<int> g_open_teams{0};

const Team* calling_thread_team() { return tl_team; }

TeamScope::TeamScope(const Team* team) : saved_(tl_team) {
  tl_team = (team != nullptr && team->nt > 1) ? team : nullptr;
  if (tl_team) g_open_teams.fetch_add(1, std::memory_order_relaxed);
}
TeamScope::~TeamScope() {
  if (tl_team) g_open_teams.fetch_sub(1, std::memory_order_relaxed);
  tl_team = saved_;
}

// (get_num_threads reads the calling thread's OpenMP count, omp_get_max_threads: 1 here)
SerialScope::SerialScope(bool on) {
#ifdef FASTBP_HAVE_OPENMP
  if (on) {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(1);
  }
#else
  (void)on;
#endif
}
SerialScope::~SerialScope() {
#ifdef FASTBP_HAVE_OPENMP
  if (saved_ > 0) omp_set_num_threads(saved_);
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

#ifdef FASTBP_HAVE_OPENMP
namespace {

// Written in the parent by the prepare handler, read by the child handler (the child's
// memory is a copy of the parent's at fork time, so a plain flag carries it across).
std::atomic<bool> g_pool_paused{true};

// A libgomp worker pool belongs to the thread that started it; after fork() the child has
// only the forking thread, whose pool then refers to workers that do not exist: its next
// parallel region waits for them forever. Shutting the pool down first avoids that.
void prepare_fork() {
  g_pool_paused.store(omp_in_parallel() == 0 && omp_pause_resource_all(omp_pause_soft) == 0);
}

void child_after_fork() {
  if (!g_pool_paused.load()) g_fork_serial.store(true);
}

const bool g_fork_handlers = on_fork(prepare_fork, child_after_fork);

}  // namespace
#endif

}  // namespace fastbp
