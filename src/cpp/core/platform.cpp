#include "core/platform.h"

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#elif defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#define FASTBP_POSIX 1
#endif

namespace fastbp {

namespace {
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

double physical_memory_bytes() {
  static const double bytes = read_physical_memory();
  return bytes;
}

int64_t process_id() {
#if defined(_WIN32)
  return int64_t(GetCurrentProcessId());
#elif defined(FASTBP_POSIX)
  return int64_t(getpid());
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
