// Thread-count policy and fork safety. OpenMP is used only in driver loops (never in
// micro-kernels); every parallel region asks get_num_threads() for its team size.
#pragma once

namespace fastbp {

int get_num_threads();
// 1 <= n <= max_threads(), else std::invalid_argument.
void set_num_threads(int n);
// The upper bound of set_num_threads: 4 threads per logical CPU, at least 4, at most 1024.
// The count in use (get_num_threads) never exceeds it, whatever OMP_NUM_THREADS says.
int max_threads();
bool have_openmp();

// While it lives, every parallel region the calling thread opens runs on one thread
// (get_num_threads() is 1 on it): a network backing off from its team (core/team.h
// TeamBackoff) keeps its products' own regions off the other cores too.
class SerialScope {
 public:
  explicit SerialScope(bool on);
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int saved_ = 0;  // the thread's OpenMP thread count before (0: not changed)
};
const char* openmp_runtime();   // a short description ("OpenMP 201511" or "none")

// Fork safety (installed when the library is loaded): before fork() the forking thread's
// OpenMP worker pool is shut down (omp_pause_resource_all), so the child starts a fresh pool
// on its first parallel region and trains with the same threads and results as the parent
// (the parent re-creates its pool lazily). If the pool could not be shut down (fork from
// inside a parallel region, a runtime without omp_pause_resource_all), the child runs every
// parallel region on one thread instead: same results, never a hang.
bool fork_serial();             // true in such a child

}  // namespace fastbp
