#include "core/interrupt.h"

#if defined(__unix__) || defined(__APPLE__)
#include <csignal>
#define FASTBP_HAVE_SIGACTION 1
#endif

namespace fastbp {

namespace {
std::atomic<bool> g_fired{false};
std::atomic<bool> g_installed{false};
}  // namespace

#ifdef FASTBP_HAVE_SIGACTION
namespace {
struct sigaction g_previous;

// Async-signal-safe: an atomic store, then the previous handler (Python's only records the
// signal and writes its wakeup fd).
void on_sigint(int sig, siginfo_t* info, void* uctx) {
  g_fired.store(true);
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(sig, info, uctx);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  }
}
}  // namespace

SigintWatch::SigintWatch() {
  bool expected = false;
  if (!g_installed.compare_exchange_strong(expected, true)) return;
  g_fired.store(false);
  struct sigaction sa {};
  sa.sa_sigaction = on_sigint;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, &g_previous) != 0) {
    g_installed.store(false);
    return;
  }
  active_ = true;
}

SigintWatch::~SigintWatch() {
  if (!active_) return;
  // Put the previous handler back unless somebody replaced ours meanwhile.
  struct sigaction current {};
  if (sigaction(SIGINT, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
      current.sa_sigaction == on_sigint)
    sigaction(SIGINT, &g_previous, nullptr);
  g_installed.store(false);
}
#else
SigintWatch::SigintWatch() {}
SigintWatch::~SigintWatch() {}
#endif

const std::atomic<bool>* SigintWatch::flag() const { return active_ ? &g_fired : nullptr; }

bool SigintWatch::fired() const { return active_ && g_fired.load(); }

}  // namespace fastbp
