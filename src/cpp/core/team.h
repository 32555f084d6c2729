// A training step on a thread team (nn/network.cpp): one OpenMP region around a whole step or
// epoch, instead of one region per product. The threads of the team split each operation of
// the step among themselves and meet at a spinning barrier between dependent operations.
//
// Why: a digits-size step (about 20 us on one core) is made of products far below the size
// where a parallel region of its own pays (~0.5 us per region, ~0.25 us per OpenMP barrier on
// the 2-core Zen 4 box); this barrier costs ~30 ns.
//
// Contract: every thread of the team calls the same operations in the same order (the
// barrier counts arrivals). An operation run "by the team" gives the same bits as on one
// thread: products split their output rows or columns along the boundaries their own
// parallel drivers use (kernels/gemm/gemm.cpp), elementwise sweeps split rows, and anything
// that reduces (column sums, the loss, penalty sums) runs on thread 0 alone.
// Nothing inside a team region may throw: whatever can fail is checked before it opens.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace fastbp {

// A sense-reversing barrier for the threads of one team. Spins (with pause) first, then
// yields, so a descheduled team-mate does not burn the other core for long.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n = 1) : n_(n) {}
  void resize(int n) { n_ = n; }  // (before any thread waits)
  // True when this thread waited long (past the spinning phase: ~10-50 us, a team-mate that
  // was not running). With `waited_ns`: a wait that outlasts kTimedSpins spins adds its time
  // from then on (two clock reads; a shorter wait reads no clock).
  bool wait(int64_t* waited_ns = nullptr) {
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
      return false;
    }
    int spins = 0;
    std::chrono::steady_clock::time_point since;
    for (; gen_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins == kTimedSpins && waited_ns != nullptr) since = std::chrono::steady_clock::now();
      if (spins < kSpins) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
    if (spins > kTimedSpins && waited_ns != nullptr)
      *waited_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - since)
                        .count();
    return spins >= kSpins;
  }

 private:
  static constexpr int kSpins = 1 << 11;
  static constexpr int kTimedSpins = 64;
  int n_;
  // (no alignas(64) padding: the barrier lives on the stack, and ASan's fake stack gives only
  // 32-byte alignment)
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

struct Team {
  int t = 0, nt = 1;          // this thread's number, team size
  SpinBarrier* bar = nullptr;
  mutable int64_t long_waits = 0;  // this thread's long waits at the barrier (SpinBarrier)
  mutable int64_t waited_ns = 0;   // and the time of its waits past a few spins
  void sync() const {
    if (nt > 1 && bar->wait(&waited_ns)) ++long_waits;
  }
  bool lead() const { return t == 0; }
  // This thread's share [b, e) of `blocks` equal blocks (contiguous, in order).
  void share(int64_t blocks, int64_t& b, int64_t& e) const {
    b = int64_t(t) * blocks / nt;
    e = int64_t(t + 1) * blocks / nt;
  }
  // This thread's rows [r0, r1) of n rows cut on multiples of `align` (the last block may be
  // short); empty when it gets no block.
  void rows(int64_t n, int64_t align, int64_t& r0, int64_t& r1) const {
    if (nt == 1) {  // (no divisions on the one-thread path)
      r0 = 0;
      r1 = n;
      return;
    }
    int64_t b, e;
    share((n + align - 1) / align, b, e);
    r0 = b * align < n ? b * align : n;
    r1 = e * align < n ? e * align : n;
  }
};

// One thread alone (sync is a no-op, it leads and gets every row).
inline const Team kSoloTeam{};

// The number of team regions open in the process (TeamScope): while it is 0, current_team()
// costs one relaxed load instead of a thread-local lookup (a call in a shared library).
extern std::atomic<int> g_open_teams;
const Team* calling_thread_team();

// The team the calling thread works in (null outside a team region, and for a team of one).
// Set by TeamScope; read by the kernels that can split themselves (gemm, the optimizer pass).
inline const Team* current_team() {
  return g_open_teams.load(std::memory_order_relaxed) == 0 ? nullptr : calling_thread_team();
}

class TeamScope {
 public:
  explicit TeamScope(const Team* team);
  ~TeamScope();
  TeamScope(const TeamScope&) = delete;
  TeamScope& operator=(const TeamScope&) = delete;

 private:
  const Team* saved_;
};

}  // namespace fastbp
