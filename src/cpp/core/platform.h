// Platform shim: every compiler- or OS-specific call of the engine goes through here, with
// one branch per platform (GCC/Clang builtins; MSVC intrinsics / Win32; a portable fallback).
#pragma once
#include <cstdint>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

// A function the compiler must inline (a dispatch on a hot path of tiny calls, where a call
// and its spills cost more than the work).
#if defined(__GNUC__) || defined(__clang__)
#define FASTBP_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FASTBP_ALWAYS_INLINE __forceinline
#else
#define FASTBP_ALWAYS_INLINE inline
#endif

// A rarely taken path kept out of its caller (whose hot path would otherwise carry its stack
// frame and register saves).
#if defined(__GNUC__) || defined(__clang__)
#define FASTBP_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define FASTBP_NOINLINE __declspec(noinline)
#else
#define FASTBP_NOINLINE
#endif

namespace fastbp {

// r = a * b; true when the product overflows int64 (r is then unspecified).
inline bool mul_overflow(int64_t a, int64_t b, int64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_mul_overflow(a, b, r);
#elif defined(_MSC_VER) && defined(_M_X64)
  int64_t hi = 0;
  const int64_t lo = _mul128(a, b, &hi);
  *r = lo;
  return hi != (lo < 0 ? -1 : 0);
#else
  if (a != 0 && ((a > 0 && b > 0 && a > INT64_MAX / b) || (a > 0 && b < 0 && b < INT64_MIN / a) ||
                 (a < 0 && b > 0 && a < INT64_MIN / b) || (a < 0 && b < 0 && a < INT64_MAX / b)))
    return true;
  *r = a * b;
  return false;
#endif
}

// r = a + b; true when the sum overflows int64.
inline bool add_overflow(int64_t a, int64_t b, int64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_add_overflow(a, b, r);
#else
  if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b)) return true;
  *r = a + b;
  return false;
#endif
}

// x86 CPU features the kernel sets need, as the CPU and the OS report them (the OS must save
// the AVX / AVX-512 register state). All false on other architectures.
struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
};
const CpuFeatures& cpu_features();  // read once

// Physical memory in bytes (0 if unknown), read once (sysconf is a system call).
double physical_memory_bytes();

// This process's id (changes in a forked child).
int64_t process_id();

// The calling thread's CPU time in nanoseconds (user + system), or -1 where the platform has
// no such clock. A system call on Linux (~0.1-0.2 us): a few per team region, not per step.
int64_t thread_cpu_ns();

// Registers prepare() to run in the forking thread before fork() and child() in the child
// after it (pthread_atfork). false where there is no fork (Windows) or registration failed.
bool on_fork(void (*prepare)(), void (*child)());

// SIGINT chaining: while installed, a SIGINT runs `handler` (async-signal-safe code only),
// then the handler installed before (e.g. Python's). uninstall_sigint_chain restores that
// previous handler unless somebody replaced ours meanwhile. false where unsupported.
bool install_sigint_chain(void (*handler)());
void uninstall_sigint_chain();

}  // namespace fastbp
