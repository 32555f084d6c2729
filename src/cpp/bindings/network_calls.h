// The work behind each method of Network32 / Network64 (bind_nn.cpp binds them): convert and
// check every argument (convert.h, spec_parse.h), refuse what cannot fit in memory, then call
// the network. A rejected call raises before the network is touched, so it leaves the network
// unchanged (parameters, buffers, optimizer state, RNG counters).
//
// Locking rule (GIL and the network mutex): the mutex is only ever waited for by a thread
// that either released the GIL first (compute calls) or holds the GIL and runs pure C++ under
// the mutex (state getters/setters: no Python call while the mutex is held); no thread waits
// for the GIL while holding the mutex. So the two locks cannot deadlock.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

#include "nn/network.h"

namespace fastbp {

namespace py = pybind11;

// Runs f() (native work) with the GIL released and the network's mutex held. Allocation
// failures inside (std::bad_alloc, std::length_error from a vector) become MemoryError.
template <typename Net, typename F>
double run_locked(Net& n, F&& f) {
  std::string oom;
  double result = 0.0;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(n.mutex());
    try {
      result = f();
    } catch (const std::bad_alloc&) {
      oom = "out of memory for the workspace of this batch";
    } catch (const std::length_error&) {
      oom = "the workspace of this batch is too large";
    }
  }
  if (!oom.empty()) {
    PyErr_SetString(PyExc_MemoryError, oom.c_str());
    throw py::error_already_set();
  }
  return result;
}

template <typename T>
struct NetworkCalls {
  using Net = Network<T>;
  static std::unique_ptr<Net> create(const py::object& spec, const py::object& seed);
  // Live views (keeping `self` alive): the whole arena, the parameters, the buffers.
  static py::array_t<T> arena(const py::object& self);
  static py::list parameters(const py::object& self);
  static py::list buffers(const py::object& self);

  static py::array_t<T> predict(Net& n, const py::object& X, const py::object& check_finite);
  // Gradients as new arrays shaped like parameters(); `probe`: see Network::loss_and_gradients.
  static py::tuple loss_and_gradients(Net& n, const py::object& X, const py::object& y,
                                      const std::string& loss, const py::object& loss_params,
                                      const py::object& sample_weight,
                                      const py::object& check_finite, bool probe);
  // The L2 norm of each parameter's gradient on a probe (loss_and_gradients with probe, the
  // gradients left in grad_arena()): (loss, [norm, ...]) without copying any gradient out.
  static py::tuple gradient_norms(Net& n, const py::object& X, const py::object& y,
                                  const std::string& loss, const py::object& loss_params,
                                  const py::object& sample_weight,
                                  const py::object& check_finite);
  // Live 1-D view of the gradient arena (same layout as arena()).
  static py::array_t<T> grad_arena(const py::object& self);
  // loss_and_gradients without copies: the gradients stay in grad_arena().
  static double compute_gradients(Net& n, const py::object& X, const py::object& y,
                                  const std::string& loss, const py::object& loss_params,
                                  const py::object& sample_weight,
                                  const py::object& check_finite);
  // Clip and one optimizer update from grad_arena() (train_step's second half).
  static void apply_gradients(Net& n);
  static double train_step(Net& n, const py::object& X, const py::object& y,
                           const std::string& loss, const py::object& loss_params,
                           const py::object& sample_weight, const py::object& check_finite);
  // Stops early on Ctrl-C, between two steps, when SIGINT would raise KeyboardInterrupt in
  // this thread; KeyboardInterrupt is raised once the network is consistent again.
  static double fit_epoch(Net& n, const py::object& X, const py::object& y,
                          const std::string& loss, const py::object& loss_params,
                          const py::object& sample_weight, const py::object& batch_size,
                          bool shuffle, const py::object& lrs, const py::object& check_finite);
  // Check a batch as train_step would, computing nothing.
  static void check_batch(Net& n, const py::object& X, const py::object& y,
                          const std::string& loss, const py::object& loss_params,
                          const py::object& sample_weight, const py::object& check_finite);
  // The loss (no penalties) of given outputs (rows x out_dim) against y: the engine's loss
  // kernel, no forward pass, no state touched (evaluation and metrics).
  static double loss_value(Net& n, const py::object& outputs, const py::object& y,
                           const std::string& loss, const py::object& loss_params,
                           const py::object& sample_weight);
  // The row order the next shuffled fit_epoch over n rows uses (counters not advanced).
  static py::array_t<int64_t> permutation(Net& n, const py::object& rows);

  static void set_optimizer(Net& n, const std::string& name, const py::object& hyper,
                            bool reset);
  static void set_lr(Net& n, const py::object& lr);
  static std::string optimizer_name(Net& n);
  static py::dict optimizer_state(Net& n);
  static void set_optimizer_state(Net& n, const py::object& state);
  static py::tuple rng_state(Net& n);
  static void set_rng_state(Net& n, const py::object& seed, const py::object& step,
                            const py::object& epoch);
};

extern template struct NetworkCalls<float>;
extern template struct NetworkCalls<double>;

}  // namespace fastbp
