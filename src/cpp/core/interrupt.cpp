#include "core/interrupt.h"

#include "core/platform.h"

namespace fastbp {

namespace {
std::atomic<bool> g_fired{false};
std::atomic<bool> g_installed{false};

void on_sigint() { g_fired.store(true); }  // async-signal-safe: a lock-free atomic store
}  // namespace

SigintWatch::SigintWatch() {
  bool expected = false;
  if (!g_installed.compare_exchange_strong(expected, true)) return;
  g_fired.store(false);
  if (!install_sigint_chain(on_sigint)) {
    g_installed.store(false);
    return;
  }
  active_ = true;
}

SigintWatch::~SigintWatch() {
  if (!active_) return;
  uninstall_sigint_chain();
  g_installed.store(false);
}

const std::atomic<bool>* SigintWatch::flag() const { return active_ ? &g_fired : nullptr; }

bool SigintWatch::fired() const { return active_ && g_fired.load(); }

}  // namespace fastbp
