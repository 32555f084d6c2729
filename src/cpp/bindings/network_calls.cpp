#include "bindings/network_calls.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <vector>

#include "bindings/convert.h"
#include "bindings/spec_parse.h"
#include "core/interrupt.h"
#include "core/rng.h"
#include "nn/layer_table.h"

namespace fastbp {

namespace {

// Whether a SIGINT now would raise KeyboardInterrupt in this thread: the main thread, with
// Python's default SIGINT handler. Only then does fit_epoch stop early on Ctrl-C (with any
// other handler the epoch completes and the handler runs afterwards, as for other code).
bool sigint_raises_here() {
  py::module_ threading = py::module_::import("threading");
  if (!threading.attr("current_thread")().is(threading.attr("main_thread")())) return false;
  // (_signal: signal.getsignal converts the handler to an enum member first, ~4 us a call)
  py::module_ signal = py::module_::import("_signal");
  return signal.attr("getsignal")(signal.attr("SIGINT")).is(signal.attr("default_int_handler"));
}

// run_locked for a loop that polls a stop flag between mini-batches: when a SIGINT would
// raise KeyboardInterrupt here (sigint_raises_here), Ctrl-C sets the flag, the loop ends after
// its current step, and KeyboardInterrupt is raised once the network is consistent again.
// `brief`: the call is estimated to take well under a millisecond (short_epoch). It runs
// without the watch, whose set-up (the thread and handler queries, two sigaction calls) costs
// about 2 us, several steps of a tiny network; a SIGINT during it is handled when it returns.
template <typename Net, typename F>
double run_interruptible(Net& n, bool brief, F&& f) {
  std::optional<SigintWatch> watch;
  if (!brief && sigint_raises_here()) watch.emplace();
  if (watch && PyErr_CheckSignals() != 0) throw py::error_already_set();
  const double v = run_locked(n, [&] { return f(watch ? watch->flag() : nullptr); });
  const bool interrupted = watch && watch->fired();
  watch.reset();
  if (interrupted) {
    if (PyErr_CheckSignals() == 0) PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
  }
  return v;
}

// Whether an epoch of N rows in `steps` steps of a network with `params` parameters is short
// (estimated < 0.5 ms: 6 flops per row and parameter at 20 GFLOP/s, and 1 us per step).
bool short_epoch(int64_t N, int64_t steps, int64_t params) {
  return 6.0 * double(N) * double(params) / 2e10 + double(steps) * 1e-6 < 5e-4;
}

// fit_epoch's per-step learning rates: None, or finite values >= 0, one per step.
struct CheckedLrs {
  py::object arr;  // keeps the converted array alive (py::object: see CheckedTarget)
  const double* data = nullptr;
};
CheckedLrs check_lrs(const py::object& lrs, int64_t steps) {
  CheckedLrs out;
  if (lrs.is_none()) return out;
  const py::array a = as_array(lrs, "lrs", py::dtype::of<double>(), "iuf");
  if (a.ndim() != 1 || a.shape(0) != steps)
    throw std::invalid_argument("lrs must hold one learning rate per step (" +
                                std::to_string(steps) + "), got shape " + shape_str(a));
  out.arr = a;
  out.data = static_cast<const double*>(a.data());
  for (int64_t i = 0; i < steps; ++i)
    if (!(out.data[i] >= 0.0) || !std::isfinite(out.data[i]))
      throw std::invalid_argument("lrs must be finite and >= 0");
  return out;
}

// state['step']: a non-negative int (a 0-d array of one too).
int64_t check_state_step(const py::dict& d) {
  if (!d.contains("step")) throw std::invalid_argument("state lacks 'step'");
  py::object step_o = d["step"];
  if (py::isinstance<py::array>(step_o) && py::array(step_o).ndim() == 0)
    step_o = step_o.attr("item")();
  if (PyBool_Check(step_o.ptr()) || !PyIndex_Check(step_o.ptr()))
    throw std::invalid_argument("state['step'] must be a non-negative int, got " +
                                repr_of(step_o));
  py::object step_i = py::reinterpret_steal<py::object>(PyNumber_Index(step_o.ptr()));
  if (!step_i) throw py::error_already_set();
  int overflow = 0;
  const long long step = PyLong_AsLongLongAndOverflow(step_i.ptr(), &overflow);
  if (overflow || step < 0)
    throw std::invalid_argument("state['step'] must be a non-negative int, got " +
                                repr_of(step_o));
  return int64_t(step);
}

// The state arrays `names` of `count` values each, converted; unknown keys refused.
template <typename T>
std::vector<py::array> check_state_arrays(const py::dict& d,
                                          const std::vector<std::string>& names, size_t count,
                                          const std::string& opt) {
  for (auto item : d) {
    const std::string k = py::str(item.first);
    if (k != "step" && std::find(names.begin(), names.end(), k) == names.end())
      throw std::invalid_argument("state has an unknown key '" + k + "' for optimizer '" +
                                  opt + "'");
  }
  std::vector<py::array> arrays;
  for (const auto& name : names) {
    if (!d.contains(name.c_str()))
      throw std::invalid_argument("optimizer state lacks '" + name + "'");
    py::array a = as_array(d[name.c_str()], ("state['" + name + "']").c_str(),
                           py::dtype::of<T>(), "iuf");
    if (a.ndim() != 1 || size_t(a.shape(0)) != count)
      throw std::invalid_argument("optimizer state '" + name + "' must have shape (" +
                                  std::to_string(count) + ",), got " + shape_str(a));
    arrays.push_back(a);
  }
  return arrays;
}

}  // namespace

template <typename T>
std::unique_ptr<Network<T>> NetworkCalls<T>::create(const py::object& spec,
                                                    const py::object& seed) {
  const uint64_t s = to_u64(seed, "seed");
  const std::vector<LayerSpec> parsed = parse_spec(spec);
  const SpecTotals sz = spec_totals(parsed);
  const std::string what = "a network of " + std::to_string(sz.params) + " parameters";
  // parameters + gradients + up to 3 optimizer state arrays, and the buffers
  check_memory(5.0 * double(sz.params) * sizeof(T) + double(sz.buffers) * sizeof(T), what);
  try {
    auto net = std::make_unique<Net>(parsed, s);
    net->row_elems = sz.row;
    return net;
  } catch (const std::bad_alloc&) {
    raise_py(PyExc_MemoryError, "out of memory for " + what);
  } catch (const std::length_error&) {
    raise_py(PyExc_MemoryError, what + " is too large");
  }
}

template <typename T>
py::array_t<T> NetworkCalls<T>::arena(const py::object& self) {
  Net& n = self.cast<Net&>();
  return view(n.arena().data(), 0, {int64_t(n.arena().size())}, self);
}

template <typename T>
py::list NetworkCalls<T>::parameters(const py::object& self) {
  Net& n = self.cast<Net&>();
  return views(n.arena().data(), n.param_info(), self);
}

template <typename T>
py::list NetworkCalls<T>::buffers(const py::object& self) {
  Net& n = self.cast<Net&>();
  return views(n.buffer_arena().data(), n.buffer_info(), self);
}

template <typename T>
py::array_t<T> NetworkCalls<T>::predict(Net& n, const py::object& Xo, const py::object& cf) {
  py::array X = check_x<T>(Xo, n.in_dim(), "X", resolve_check_finite(cf));
  const T* x = static_cast<const T*>(X.data());
  const int64_t rows = X.shape(0);
  check_batch_memory(std::min(rows, n.predict_budget_rows()), n.row_elems, sizeof(T));
  check_memory(double(rows) * double(n.out_dim()) * sizeof(T), "the output");
  py::array_t<T> out({py::ssize_t(rows), py::ssize_t(n.out_dim())});
  T* o = out.mutable_data();
  run_locked(n, [&] {
    n.predict(x, o, rows);
    return 0.0;
  });
  return out;
}

// loss_and_gradients on a checked batch under the network's lock, then each(i, gradient, size)
// for every parameter in order, while the gradients are in grad_arena() (still locked: they are
// those of this call even if another thread trains concurrently).
template <typename T, typename F>
double gradients_each(Network<T>& n, const CheckedBatch<T>& b, bool probe, F&& each) {
  return run_locked(n, [&] {
    const double r = n.loss_and_gradients(b.x, b.ct.t, b.rows, b.la, b.pen, probe);
    const T* g = n.grad_arena().data();
    for (size_t i = 0; i < n.param_info().size(); ++i) {
      const int64_t sz = n.param_info()[i].size();
      each(i, g, sz);
      g += sz;
    }
    return r;
  });
}

template <typename T>
py::tuple NetworkCalls<T>::loss_and_gradients(Net& n, const py::object& X, const py::object& y,
                                              const std::string& loss, const py::object& lp,
                                              const py::object& sw, const py::object& cf,
                                              bool probe) {
  CheckedBatch<T> b = fastbp::check_batch<T>(n.in_dim(), n.out_dim(), X, y, loss, lp, sw, cf);
  check_batch_memory(b.rows, n.row_elems, sizeof(T));
  // Output arrays first (GIL held); filled under the mutex, so the gradients returned are
  // those of this call even if another thread trains concurrently.
  std::vector<T*> dst;
  py::list grads = new_arrays<T>(n.param_info(), dst);
  const double v = gradients_each(n, b, probe, [&](size_t i, const T* g, int64_t sz) {
    std::copy(g, g + sz, dst[i]);
  });
  return py::make_tuple(v, grads);
}

// sqrt(sum of g[i]^2) in double, in four interleaved partial sums (a diagnostic: its order is
// not part of any result a training step reads).
template <typename T>
double l2_norm(const T* g, int64_t n) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += double(g[i + j]) * double(g[i + j]);
  for (; i < n; ++i) s[0] += double(g[i]) * double(g[i]);
  return std::sqrt((s[0] + s[1]) + (s[2] + s[3]));
}

template <typename T>
py::tuple NetworkCalls<T>::gradient_norms(Net& n, const py::object& X, const py::object& y,
                                          const std::string& loss, const py::object& lp,
                                          const py::object& sw, const py::object& cf) {
  CheckedBatch<T> b = fastbp::check_batch<T>(n.in_dim(), n.out_dim(), X, y, loss, lp, sw, cf);
  check_batch_memory(b.rows, n.row_elems, sizeof(T));
  std::vector<double> norms(n.param_info().size());
  const double v = gradients_each(n, b, true, [&](size_t i, const T* g, int64_t sz) {
    norms[i] = l2_norm(g, sz);
  });
  py::list out;
  for (double x : norms) out.append(x);
  return py::make_tuple(v, out);
}

template <typename T>
py::array_t<T> NetworkCalls<T>::grad_arena(const py::object& self) {
  Net& n = self.cast<Net&>();
  return view(n.grad_arena().data(), 0, {int64_t(n.grad_arena().size())}, self);
}

template <typename T>
double NetworkCalls<T>::compute_gradients(Net& n, const py::object& X, const py::object& y,
                                          const std::string& loss, const py::object& lp,
                                          const py::object& sw, const py::object& cf) {
  CheckedBatch<T> b = fastbp::check_batch<T>(n.in_dim(), n.out_dim(), X, y, loss, lp, sw, cf);
  check_batch_memory(b.rows, n.row_elems, sizeof(T));
  return run_locked(n, [&] { return n.loss_and_gradients(b.x, b.ct.t, b.rows, b.la, b.pen); });
}

template <typename T>
void NetworkCalls<T>::apply_gradients(Net& n) {
  run_locked(n, [&] {
    n.apply_gradients();
    return 0.0;
  });
}

template <typename T>
double NetworkCalls<T>::train_step(Net& n, const py::object& X, const py::object& y,
                                   const std::string& loss, const py::object& lp,
                                   const py::object& sw, const py::object& cf) {
  CheckedBatch<T> b = fastbp::check_batch<T>(n.in_dim(), n.out_dim(), X, y, loss, lp, sw, cf);
  check_batch_memory(b.rows, n.row_elems, sizeof(T));
  return run_locked(n, [&] { return n.train_step(b.x, b.ct.t, b.rows, b.la, b.pen); });
}

template <typename T>
double NetworkCalls<T>::fit_epoch(Net& n, const py::object& X, const py::object& y,
                                  const std::string& loss, const py::object& lp,
                                  const py::object& sw, const py::object& batch_size,
                                  bool shuffle, const py::object& lrs, const py::object& cf) {
  CheckedBatch<T> b = fastbp::check_batch<T>(n.in_dim(), n.out_dim(), X, y, loss, lp, sw, cf);
  const int64_t N = b.rows;
  const int64_t bs = std::min(to_pos_int(batch_size, "batch_size"), N);
  check_batch_memory(bs, n.row_elems + n.in_dim() + n.out_dim() + 2, sizeof(T));
  check_memory(double(N) * 8.0, "the shuffle of " + std::to_string(N) + " rows");
  const int64_t steps = (N + bs - 1) / bs;
  const CheckedLrs l = check_lrs(lrs, steps);
  const bool brief = short_epoch(N, steps, int64_t(n.arena().size()));
  return run_interruptible(n, brief, [&](const std::atomic<bool>* stop) {
    return n.fit_epoch(b.x, b.ct.t, N, bs, shuffle, l.data, b.la, b.pen, stop);
  });
}

template <typename T>
void NetworkCalls<T>::check_batch(Net& n, const py::object& X, const py::object& y,
                                  const std::string& loss, const py::object& lp,
                                  const py::object& sw, const py::object& cf) {
  fastbp::check_batch<T>(n.in_dim(), n.out_dim(), X, y, loss, lp, sw, cf);
}

template <typename T>
double NetworkCalls<T>::loss_value(Net& n, const py::object& outputs, const py::object& y,
                                   const std::string& loss, const py::object& lp,
                                   const py::object& sw) {
  PenaltyArgs pen;
  const LossArgs la = parse_loss(loss, as_dict(lp, "loss_params"), pen);
  const int64_t k = n.out_dim();
  py::array out = check_x<T>(outputs, k, "outputs", false);
  const int64_t rows = out.shape(0);
  CheckedTarget<T> ct = check_target<T>(y, sw, rows, k, la.kind);
  check_memory(double(rows) * double(k) * sizeof(T), "the loss gradient");
  std::vector<T> dlogits(size_t(rows * k));
  const T* o = static_cast<const T*>(out.data());
  py::gil_scoped_release release;
  return loss_forward_backward<T>(dlogits.data(), o, ct.t.values, ct.t.labels, ct.t.weight,
                                  rows, k, la);
}

template <typename T>
py::array_t<int64_t> NetworkCalls<T>::permutation(Net& n, const py::object& rows_o) {
  const int64_t rows = to_pos_int(rows_o, "n");
  check_memory(double(rows) * 8.0, "the shuffle of " + std::to_string(rows) + " rows");
  py::array_t<int64_t> perm(rows);
  uint64_t seed, epoch;
  {
    std::lock_guard<std::mutex> lock(n.mutex());
    seed = n.seed();
    epoch = n.epoch_counter();
  }
  int64_t* p = perm.mutable_data();
  py::gil_scoped_release release;
  shuffle_permutation(seed, epoch, rows, p);
  return perm;
}

template <typename T>
void NetworkCalls<T>::set_optimizer(Net& n, const std::string& name, const py::object& hyper,
                                    bool reset) {
  const OptConfig c = parse_opt(name, as_dict(hyper, "hyper"));
  std::lock_guard<std::mutex> lock(n.mutex());  // pure C++ below
  n.set_optimizer(c, reset);
}

template <typename T>
void NetworkCalls<T>::set_lr(Net& n, const py::object& lr_o) {
  const double lr = to_double(lr_o, "lr");
  if (!(lr >= 0.0) || !std::isfinite(lr))
    throw std::invalid_argument("lr must be a finite number >= 0");
  std::lock_guard<std::mutex> lock(n.mutex());
  n.set_lr(lr);
}

template <typename T>
std::string NetworkCalls<T>::optimizer_name(Net& n) {
  std::lock_guard<std::mutex> lock(n.mutex());
  return opt_name(n.optimizer().kind);
}

template <typename T>
py::dict NetworkCalls<T>::optimizer_state(Net& n) {
  OptState<T> copy;
  {
    std::lock_guard<std::mutex> lock(n.mutex());
    copy = n.opt_state();
  }
  py::dict d;
  d["step"] = copy.step;
  const std::vector<std::string> names = copy.names();
  for (size_t i = 0; i < names.size(); ++i) {
    py::array_t<T> a(py::ssize_t(copy.arrays[i].size()));
    std::copy(copy.arrays[i].begin(), copy.arrays[i].end(), a.mutable_data());
    d[py::str(names[i])] = a;
  }
  return d;
}

template <typename T>
void NetworkCalls<T>::set_optimizer_state(Net& n, const py::object& state) {
  if (!py::isinstance<py::dict>(state))
    throw py::type_error("state must be a dict, got " + type_name(state));
  const py::dict d = py::reinterpret_borrow<py::dict>(state);
  std::vector<std::string> names;
  size_t count;
  std::string opt;
  {
    std::lock_guard<std::mutex> lock(n.mutex());
    names = n.opt_state().names();
    count = n.arena().size();
    opt = opt_name(n.optimizer().kind);
  }
  // Validate and convert everything (Python calls) before touching the state.
  const int64_t step = check_state_step(d);
  const std::vector<py::array> arrays = check_state_arrays<T>(d, names, count, opt);
  std::lock_guard<std::mutex> lock(n.mutex());  // pure C++ below
  auto& st = n.opt_state();
  if (st.names() != names)
    throw std::runtime_error("the optimizer changed while its state was being set");
  for (size_t i = 0; i < names.size(); ++i) {
    const T* src = static_cast<const T*>(arrays[i].data());
    std::copy(src, src + count, st.arrays[i].begin());
  }
  st.step = step;
}

template <typename T>
py::tuple NetworkCalls<T>::rng_state(Net& n) {
  uint64_t a, b, c;
  {
    std::lock_guard<std::mutex> lock(n.mutex());
    a = n.seed();
    b = n.step_counter();
    c = n.epoch_counter();
  }
  return py::make_tuple(a, b, c);
}

template <typename T>
void NetworkCalls<T>::set_rng_state(Net& n, const py::object& seed, const py::object& step,
                                    const py::object& epoch) {
  const uint64_t a = to_u64(seed, "seed"), b = to_u64(step, "step_counter"),
                 c = to_u64(epoch, "epoch_counter");
  std::lock_guard<std::mutex> lock(n.mutex());
  n.set_rng_state(a, b, c);
}

template struct NetworkCalls<float>;
template struct NetworkCalls<double>;

}  // namespace fastbp
