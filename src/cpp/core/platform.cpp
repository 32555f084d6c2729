#include "core/platform.h"

#include <atomic>

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#elif defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <csignal>
#define FASTBP_POSIX 1
#endif

#if defined(_MSC_VER) && !defined(__clang__) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>
#include <intrin.h>
#define FASTBP_MSVC_X86 1
#endif

namespace fastbp {

namespace {

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
// GCC / Clang: the compiler's runtime checks CPUID and the OS's XCR0 state.
CpuFeatures read_cpu_features() {
  __builtin_cpu_init();
  CpuFeatures f;
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  return f;
}
#elif defined(FASTBP_MSVC_X86)
// MSVC: CPUID leaves 1 and 7, and XGETBV for the register state the OS saves (XCR0 bits
// 1-2: SSE/AVX, bits 5-7: AVX-512 opmask and upper registers).
CpuFeatures read_cpu_features() {
  CpuFeatures f;
  int r1[4] = {0}, r7[4] = {0};
  __cpuid(r1, 0);
  const int max_leaf = r1[0];
  __cpuid(r1, 1);
  if (max_leaf >= 7) __cpuidex(r7, 7, 0);
  const bool osxsave = (r1[2] >> 27) & 1;
  const unsigned long long xcr0 = osxsave ? _xgetbv(0) : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;
  f.fma = os_avx && ((r1[2] >> 12) & 1);
  f.avx2 = os_avx && ((r7[1] >> 5) & 1);
  f.avx512f = os_avx512 && ((r7[1] >> 16) & 1);
  f.avx512dq = os_avx512 && ((r7[1] >> 17) & 1);
  f.avx512bw = os_avx512 && ((r7[1] >> 30) & 1);
  f.avx512vl = os_avx512 && ((r7[1] >> 31) & 1);
  return f;
}
#else
// Other architectures: no x86 features.
CpuFeatures read_cpu_features() { return CpuFeatures{}; }
#endif
double read_physical_memory() {
#if defined(_WIN32)
  MEMORYSTATUSEX st;
  st.dwLength = sizeof(st);
  return GlobalMemoryStatusEx(&st) ? double(st.ullTotalPhys) : 0.0;
#elif defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return (pages > 0 && page > 0) ? double(pages) * double(page) : 0.0;
#else
  return 0.0;
#endif
}
}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = read_cpu_features();
  return f;
}

double physical_memory_bytes() {
  static const double bytes = read_physical_memory();
  return bytes;
}

#if defined(FASTBP_POSIX)
namespace {
// getpid() is a system call (~100 ns under a hypervisor) and every compute call asks: the id is
// cached, and a fork's child forgets it (pthread_atfork) so that it reads its own.
std::atomic<int64_t> g_process_id{0};
void forget_process_id() { g_process_id.store(0, std::memory_order_relaxed); }
}  // namespace
#endif

int64_t thread_cpu_ns() {
#if defined(_WIN32)
  FILETIME created, exited, kernel, user;
  if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user)) return -1;
  const auto ticks = [](const FILETIME& f) {
    return (int64_t(f.dwHighDateTime) << 32) | int64_t(f.dwLowDateTime);
  };
  return (ticks(kernel) + ticks(user)) * 100;  // (100 ns ticks)
#elif defined(FASTBP_POSIX) && defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1;
  return int64_t(ts.tv_sec) * 1000000000 + int64_t(ts.tv_nsec);
#else
  return -1;
#endif
}

int64_t process_id() {
#if defined(_WIN32)
  return int64_t(GetCurrentProcessId());
#elif defined(FASTBP_POSIX)
  const int64_t cached = g_process_id.load(std::memory_order_relaxed);
  if (cached != 0) return cached;
  static const bool forgets = pthread_atfork(nullptr, nullptr, &forget_process_id) == 0;
  const int64_t pid = int64_t(getpid());
  if (forgets) g_process_id.store(pid, std::memory_order_relaxed);
  return pid;
#else
  return 1;
#endif
}

bool on_fork(void (*prepare)(), void (*child)()) {
#ifdef FASTBP_POSIX
  return pthread_atfork(prepare, nullptr, child) == 0;
#else
  (void)prepare;
  (void)child;
  return false;
#endif
}

#ifdef FASTBP_POSIX
namespace {
void (*g_sigint_handler)() = nullptr;
struct sigaction g_previous_sigint;

void chained_sigint(int sig, siginfo_t* info, void* uctx) {
  g_sigint_handler();
  const struct sigaction& p = g_previous_sigint;
  if (p.sa_flags & SA_SIGINFO) {
    if (p.sa_sigaction) p.sa_sigaction(sig, info, uctx);
  } else if (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
    p.sa_handler(sig);
  }
}
}  // namespace

bool install_sigint_chain(void (*handler)()) {
  g_sigint_handler = handler;
  struct sigaction sa {};
  sa.sa_sigaction = chained_sigint;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGINT, &sa, &g_previous_sigint) == 0;
}

void uninstall_sigint_chain() {
  struct sigaction current {};
  if (sigaction(SIGINT, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
      current.sa_sigaction == chained_sigint)
    sigaction(SIGINT, &g_previous_sigint, nullptr);
}
#else
bool install_sigint_chain(void (*)()) { return false; }
void uninstall_sigint_chain() {}
#endif

}  // namespace fastbp
