// Ctrl-C for long native loops. While a SigintWatch is alive, SIGINT sets a flag that the
// engine polls between mini-batches, then runs the handler installed before the watch
// (Python's, which records the signal so that Python raises KeyboardInterrupt once the
// native call returns). One watch at a time: a second one, while the first is alive, installs
// nothing and observes nothing (active() is false).
#pragma once
#include <atomic>

namespace fastbp {

class SigintWatch {
 public:
  SigintWatch();
  ~SigintWatch();
  SigintWatch(const SigintWatch&) = delete;
  SigintWatch& operator=(const SigintWatch&) = delete;

  bool active() const { return active_; }
  // The flag the engine polls (nullptr when inactive).
  const std::atomic<bool>* flag() const;
  bool fired() const;

 private:
  bool active_ = false;
};

}  // namespace fastbp
