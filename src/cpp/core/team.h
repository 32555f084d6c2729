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
#include <climits>
#include <cstdint>
#include <thread>

namespace fastbp {

// A sense-reversing barrier for the threads of one team. Spins (with pause) first, then
// yields, so a descheduled team-mate does not burn the other core for long.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n = 1) : n_(n) {}
  void resize(int n) { n_ = n; }  // (before any thread waits)
  // With `waited_ns`: a wait that outlasts kTimedSpins spins adds its time from then on (two
  // clock reads; a shorter wait reads no clock).
  void wait(int64_t* waited_ns = nullptr) {
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
      return;
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
  // timed: sync adds this thread's time in waits past a few spins to waited_ns (SpinBarrier;
  // the split epochs' hand-over reads it); untimed teams read no clock at their meetings.
  bool timed = false;
  mutable int64_t waited_ns = 0;
  void sync() const {
    if (nt > 1) bar->wait(timed ? &waited_ns : nullptr);
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

// A team whose threads are kept off their cores -- by another process, or by another
// library's spinning pool (OpenBLAS's workers spin ~0.1 s after each NumPy product) -- is
// slower than one thread, and its own spinning slows that pool in turn (a 784-256-256-10
// train_step with a 300x300 NumPy product between steps: 11.5 ms a step on a team of two,
// 2.3 ms on one thread). One rule for every team region of a network (nn/network.cpp
// run_team, nn/network_split.cpp's epochs):
// - the regions' threads' time (threads x wall time) and the part of it they were not running
//   (wall time minus each thread's CPU time, platform.h thread_cpu_ns) add up over a window
//   of kWindowNs; kBadWindows windows in a row whose threads were off their cores more than
//   kShare of them back the network off (one such window is often a passing preemption). A
//   team of two whose second thread runs a fraction 1 - p of the time beats one thread while
//   p < 1/2, i.e. while the team is off its cores less than a quarter of its time. (A host
//   that preempts or slows a virtual CPU is not seen by the guest's clocks: TeamProbe, below,
//   times the team against one thread instead. Waits at the barrier are no measure: a team's
//   own imbalance makes them, and a rule on them backed off teams that still beat one thread.)
// - backing off: the network's calls of the next back-off time run on one thread, their
//   products too (SerialScope, core/threading.h): 50 ms, doubled at each back-off up to 1 s,
//   and back to 50 ms once its teams have run kCalmNs of threads' time without one (a pool
//   that keeps spinning -- NumPy products between steps -- then costs a few slow steps a
//   second, not a few every 50 ms).
class TeamBackoff {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr double kShare = 0.25;
  static constexpr double kWindowNs = 4e6;
  static constexpr int kBadWindows = 2;
  static constexpr double kSampleNs = 400e3;
  static constexpr int64_t kMaxStride = 16;
  static constexpr double kCalmNs = 200e6;
  static constexpr std::chrono::milliseconds kMin{50}, kMax{1000};

  // Whether a team may run now (false: backing off).
  bool allows() const { return retry_ == Clock::time_point{} || Clock::now() >= retry_; }
  // A region's threads' time and the part of it they were not running.
  void record(double busy_ns, double off_ns) {
    busy_ += busy_ns;
    off_ += off_ns;
    calm_ += busy_ns;
    if (calm_ > kCalmNs) next_ = kMin;
    if (busy_ < kWindowNs) return;
    const bool kept_off = off_ > kShare * busy_;
    busy_ = off_ = 0.0;
    bad_windows_ = kept_off ? bad_windows_ + 1 : 0;
    if (bad_windows_ >= kBadWindows) back_off();
  }
  // Back off now (also: a region that handed its work to one thread midway).
  void back_off() {
    busy_ = off_ = calm_ = 0.0;
    bad_windows_ = 0;
    retry_ = Clock::now() + next_;
    next_ = next_ * 2 < kMax ? next_ * 2 : kMax;
    ++count_;
  }
  int64_t count() const { return count_; }  // back-offs so far
  // (RegionClock) Whether the next region reads the threads' CPU clocks, and the length of
  // the last one: regions of at least kSampleNs are all sampled, shorter ones every
  // kSampleNs / length (at most every kMaxStride-th).
  bool sample() { return ++since_sample_ >= stride_ ? (since_sample_ = 0, true) : false; }
  void sampled(double wall_ns) {
    const double k = kSampleNs / (wall_ns > 1.0 ? wall_ns : 1.0);
    stride_ = k < 1.0 ? 1 : k > double(kMaxStride) ? kMaxStride : int64_t(k);
  }

 private:
  int64_t since_sample_ = 0, stride_ = 1;
  double busy_ = 0.0, off_ = 0.0, calm_ = 0.0;
  int bad_windows_ = 0;
  Clock::time_point retry_{};
  std::chrono::milliseconds next_ = kMin;
  int64_t count_ = 0;
};

// A team region's clocks for TeamBackoff: the wall time from its opening (before the region)
// and each thread's CPU time inside it (add_thread, once per thread), read on a sample of the
// regions: a thread's CPU clock is a system call (~0.5 us on the development VM), so regions
// shorter than TeamBackoff::kSampleNs are sampled every few (the previous region's length
// decides); a platform without a thread CPU clock records nothing.
class RegionClock {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RegionClock(TeamBackoff& b) : b_(b), start_(Clock::now()), sampled_(b.sample()) {}
  bool sampled() const { return sampled_; }  // (every thread: read thread_cpu_ns or not)
  // Each thread of a sampled region: its CPU time from `cpu0` (thread_cpu_ns at its start).
  void add_thread(int64_t cpu0, int64_t cpu1) {
    if (cpu0 < 0 || cpu1 < 0)
      ok_.store(false, std::memory_order_relaxed);
    else
      cpu_.fetch_add(cpu1 - cpu0, std::memory_order_relaxed);
  }
  // After the region, with its `threads` threads; returns its wall time (ns).
  double record(int threads) {
    const double wall = std::chrono::duration<double, std::nano>(Clock::now() - start_).count();
    b_.sampled(wall);
    if (!sampled_ || !ok_.load(std::memory_order_relaxed)) return wall;
    const double busy = threads * wall;
    const double off = busy - double(cpu_.load(std::memory_order_relaxed));
    b_.record(busy, off > 0.0 ? off : 0.0);
    return wall;
  }

 private:
  TeamBackoff& b_;
  Clock::time_point start_;
  bool sampled_;
  std::atomic<int64_t> cpu_{0};
  std::atomic<bool> ok_{true};
};

// Whether a network's team is faster than one thread, measured: a host that runs one of its
// two virtual CPUs slowly (seen on the development VM for minutes at a time: tanh 32-64x5-1
// at batch 64, 160-180 us a step on a team of two against 87 us on one thread) is invisible
// to the guest's clocks, so TeamBackoff cannot see it. Every kGapNs (at least kGapCalls team
// calls' time), and right after a back-off, a network's calls of one size (`key`: a
// train_step's rows, an epoch's shape) run kCalls times on one thread; when the fastest of
// them beats kMargin x the fastest of its last kRecent team calls, the network backs off
// (TeamBackoff::back_off). The probes cost at most a few percent of a second.
class TeamProbe {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kProbe = -1;  // (threads_for: one thread, a probe)
  static constexpr int kCalls = 3, kRecent = 8;
  static constexpr double kGapNs = 1e9, kGapCalls = 100.0, kMargin = 0.95;

  // The threads of a call of size `key` that would run on a team of `threads`.
  int threads_for(int64_t key, int threads) {
    if (key != key_) reset(key);
    if (probes_ > 0 || (seen_ >= kRecent && Clock::now() >= next_)) return kProbe;
    return threads;
  }
  // After a call of `key` (probe: it ran as one), its wall time; true when one thread won.
  bool record(int64_t key, bool probe, double wall_ns) {
    if (key != key_) return false;
    if (!probe) {
      team_[seen_++ % kRecent] = wall_ns;
      return false;
    }
    solo_ = probes_ == 0 || wall_ns < solo_ ? wall_ns : solo_;
    if (++probes_ < kCalls) return false;
    ++count_;
    double team = team_[0];
    for (int i = 1; i < kRecent; ++i) team = team_[i] < team ? team_[i] : team;
    const bool solo_wins = solo_ < margin_ * team;
    const double gap = kGapNs > kGapCalls * team ? kGapNs : kGapCalls * team;
    next_ = solo_wins ? Clock::time_point{}  // (again once the back-off is over)
                      : Clock::now() + std::chrono::nanoseconds(int64_t(gap));
    reset(key);
    return solo_wins;
  }
  int64_t count() const { return count_; }  // probes so far
  void set_margin(double m) { margin_ = m; }  // (tests: > 1 makes one thread win)

 private:
  void reset(int64_t key) {  // (a new size, or a probe done: kRecent team calls first)
    key_ = key;
    probes_ = 0;
    seen_ = 0;
  }
  int64_t key_ = INT64_MIN;
  int probes_ = 0;
  int64_t seen_ = 0;  // team calls recorded since the reset (team_: the last kRecent)
  double team_[kRecent] = {}, solo_ = 0.0, margin_ = kMargin;
  Clock::time_point next_{};
  int64_t count_ = 0;
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
