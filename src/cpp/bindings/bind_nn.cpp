// Bindings for the engine: Network32 / Network64 (docs/ENGINE.md). Validation happens here,
// once, before any native work: a rejected call raises and leaves the network unchanged
// (parameters, buffers, optimizer state, RNG counters). docs/RELIABILITY.md lists the checks.
//
// Locking rule (GIL and the network mutex): the mutex is only ever waited for by a thread
// that either released the GIL first (compute calls) or holds the GIL and runs pure C++ under
// the mutex (state getters/setters: no Python call while the mutex is held); no thread waits
// for the GIL while holding the mutex. So the two locks cannot deadlock.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/convert.h"
#include "bindings/convert_sparse.h"
#include "bindings/spec_parse.h"
#include "core/finite.h"
#include "core/interrupt.h"
#include "core/rng.h"
#include "nn/layer_table.h"
#include "nn/network.h"
#include "nn/registry.h"

namespace py = pybind11;

namespace fastbp {

namespace {

// The process-wide default of every check_finite=None argument (fastbp.set_check_finite).
std::atomic<bool> g_check_finite{true};

bool resolve_check_finite(const py::object& o) {
  if (o.is_none()) return g_check_finite.load();
  return o.cast<bool>();
}

template <typename T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// X: (n, in_dim), n >= 1, finite (when checked). Returns the converted array.
template <typename T>
py::array check_x(const py::handle& Xo, int64_t in_dim, const char* name, bool check_finite) {
  py::array X = as_array(Xo, name, py::dtype::of<T>(), "biuf");
  if (X.ndim() != 2 || X.shape(1) != in_dim)
    throw std::invalid_argument(std::string(name) + " must have shape (n, " +
                                std::to_string(in_dim) + "), got " + shape_str(X));
  if (X.shape(0) < 1) throw std::invalid_argument(std::string(name) + " is empty (0 rows)");
  if (check_finite) {
    const T* p = static_cast<const T*>(X.data());
    if (!all_finite(p, X.shape(0) * X.shape(1)))
      throw std::invalid_argument(std::string(name) +
                                  " contains NaN or Inf (after conversion to " +
                                  dtype_name<T>() +
                                  "); fastbp.set_check_finite(False) skips this check");
  }
  return X;
}

// y and sample_weight, converted and checked against n rows and k outputs. The arrays are
// kept alive in the struct for the duration of the call.
template <typename T>
struct CheckedTarget {
  py::array y, w;
  Target<T> t;
};

template <typename T>
CheckedTarget<T> check_target(const py::handle& yo, const py::handle& sw, int64_t n, int64_t k,
                              LossKind kind) {
  CheckedTarget<T> ct;
  py::array y0 = to_ndarray(yo, "y");  // dtype decided below
  const char yk = y0.dtype().kind();
  if (kind == LossKind::softmax_ce && y0.ndim() == 1) {
    if (yk != 'i' && yk != 'u')
      throw py::type_error("y: class labels for softmax_cross_entropy must be integers, got "
                           "dtype " + std::string(py::str(y0.dtype())) +
                           " (pass probabilities as an (n, classes) array)");
    if (y0.shape(0) != n)
      throw std::invalid_argument("y has " + std::to_string(y0.shape(0)) + " labels but X has " +
                                  std::to_string(n) + " rows");
    if (yk == 'u' && y0.dtype().itemsize() == 8) {
      // uint64 labels above 2**63 would wrap to negative numbers in int64: check first.
      py::object mx = y0.attr("max")();
      if (mx.cast<uint64_t>() >= uint64_t(k))
        throw std::invalid_argument("y: label " + std::string(py::str(mx)) +
                                    " is out of range [0, " + std::to_string(k) + ")");
    }
    ct.y = as_array(y0, "y", py::dtype::of<int64_t>(), "iu");
    const int64_t* l = static_cast<const int64_t*>(ct.y.data());
    for (int64_t i = 0; i < n; ++i)
      if (l[i] < 0 || l[i] >= k)
        throw std::invalid_argument("y: label " + std::to_string(l[i]) + " at row " +
                                    std::to_string(i) + " is out of range [0, " +
                                    std::to_string(k) + ")");
    ct.t.labels = l;
  } else {
    if (yk != 'i' && yk != 'u' && yk != 'f')
      throw py::type_error(std::string("y must hold real numbers, got dtype ") +
                           std::string(py::str(y0.dtype())));
    ct.y = as_array(y0, "y", py::dtype::of<T>(), "iuf");
    const bool ok = (ct.y.ndim() == 2 && ct.y.shape(0) == n && ct.y.shape(1) == k) ||
                    (ct.y.ndim() == 1 && k == 1 && ct.y.shape(0) == n);
    if (!ok)
      throw std::invalid_argument("y must have shape (" + std::to_string(n) + ", " +
                                  std::to_string(k) + "), got " + shape_str(ct.y));
    ct.t.values = static_cast<const T*>(ct.y.data());
    // Targets are always checked: a NaN target has no meaning for any loss.
    if (!all_finite(ct.t.values, n * k)) throw std::invalid_argument("y contains NaN or Inf");
  }
  if (!sw.is_none()) {
    ct.w = as_array(sw, "sample_weight", py::dtype::of<T>(), "iuf");
    if (ct.w.ndim() != 1 || ct.w.shape(0) != n)
      throw std::invalid_argument("sample_weight must have shape (" + std::to_string(n) +
                                  ",), got " + shape_str(ct.w));
    const T* wp = static_cast<const T*>(ct.w.data());
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(wp[i]) || wp[i] < T(0))
        throw std::invalid_argument("sample_weight must be finite and >= 0");
      s += double(wp[i]);
    }
    if (!(s > 0.0)) throw std::invalid_argument("sample_weight must have a positive sum");
    ct.t.weight = wp;
  }
  return ct;
}

// Whether a SIGINT now would raise KeyboardInterrupt in this thread: the main thread, with
// Python's default SIGINT handler. Only then does fit_epoch stop early on Ctrl-C (with any
// other handler the epoch completes and the handler runs afterwards, as for other code).
bool sigint_raises_here() {
  py::module_ threading = py::module_::import("threading");
  if (!threading.attr("current_thread")().is(threading.attr("main_thread")())) return false;
  py::module_ signal = py::module_::import("signal");
  return signal.attr("getsignal")(signal.attr("SIGINT")).is(signal.attr("default_int_handler"));
}

// Refuses a batch whose workspace cannot exist, before any allocation.
void check_batch_memory(int64_t rows, int64_t row_elems, size_t elem_size) {
  const double bytes = double(rows) * double(row_elems) * double(elem_size);
  check_memory(bytes, "a batch of " + std::to_string(rows) + " rows");
}

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
  if (!oom.empty()) raise_py(PyExc_MemoryError, oom);
  return result;
}

// run_locked for a loop that polls a stop flag between mini-batches: when a SIGINT would
// raise KeyboardInterrupt here (sigint_raises_here), Ctrl-C sets the flag, the loop ends after
// its current step, and KeyboardInterrupt is raised once the network is consistent again.
template <typename Net, typename F>
double run_interruptible(Net& n, F&& f) {
  std::optional<SigintWatch> watch;
  if (sigint_raises_here()) watch.emplace();
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

template <typename T>
py::array_t<T> view(std::vector<T>& v, int64_t offset, const std::vector<int64_t>& shape,
                    py::handle base) {
  std::vector<py::ssize_t> sh(shape.begin(), shape.end());
  std::vector<py::ssize_t> st(shape.size());
  py::ssize_t stride = sizeof(T);
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = stride;
    stride *= shape[i];
  }
  return py::array_t<T>(sh, st, v.data() + offset, base);
}

template <typename T>
py::list views(std::vector<T>& arena, const std::vector<ParamInfo>& info, py::handle base) {
  py::list out;
  int64_t off = 0;
  for (const auto& p : info) {
    out.append(view(arena, off, p.shape, base));
    off += p.size();
  }
  return out;
}

template <typename T>
py::list copies(const std::vector<T>& arena, const std::vector<ParamInfo>& info) {
  py::list out;
  int64_t off = 0;
  for (const auto& p : info) {
    std::vector<py::ssize_t> sh(p.shape.begin(), p.shape.end());
    py::array_t<T> a(sh);
    std::copy(arena.begin() + off, arena.begin() + off + p.size(), a.mutable_data());
    out.append(a);
    off += p.size();
  }
  return out;
}

// One checked batch (X, y, sample_weight, loss and its parameters), shared by
// loss_and_gradients, train_step and fit_epoch; the arrays stay alive with the struct.
template <typename T>
struct CheckedBatch {
  PenaltyArgs pen;
  LossArgs la;
  py::array X;
  CheckedTarget<T> ct;
  int64_t rows = 0;
  const T* x = nullptr;
};

template <typename T>
CheckedBatch<T> check_batch(const Network<T>& n, const py::object& Xo, const py::object& yo,
                            const std::string& loss, const py::object& loss_params_o,
                            const py::object& sample_weight, const py::object& cf) {
  CheckedBatch<T> b;
  b.la = parse_loss(loss, as_dict(loss_params_o, "loss_params"), b.pen);
  b.X = check_x<T>(Xo, n.in_dim(), "X", resolve_check_finite(cf));
  b.rows = b.X.shape(0);
  b.ct = check_target<T>(yo, sample_weight, b.rows, n.out_dim(), b.la.kind);
  b.x = static_cast<const T*>(b.X.data());
  return b;
}

// The loss of given outputs (no forward pass, no state touched): the engine's loss kernel on
// `outputs` (rows x out_dim), used for evaluation and metrics.
template <typename T>
double loss_of_outputs(const Network<T>& n, const py::object& outo, const py::object& yo,
                       const std::string& loss, const py::object& loss_params_o,
                       const py::object& sample_weight) {
  PenaltyArgs pen;
  const LossArgs la = parse_loss(loss, as_dict(loss_params_o, "loss_params"), pen);
  py::array out = check_x<T>(outo, n.out_dim(), "outputs", false);
  const int64_t rows = out.shape(0);
  CheckedTarget<T> ct = check_target<T>(yo, sample_weight, rows, n.out_dim(), la.kind);
  check_memory(double(rows) * double(n.out_dim()) * sizeof(T), "the loss gradient");
  std::vector<T> dlogits(size_t(rows * n.out_dim()));
  const T* o = static_cast<const T*>(out.data());
  py::gil_scoped_release release;
  return loss_forward_backward<T>(dlogits.data(), o, ct.t.values, ct.t.labels, ct.t.weight,
                                  rows, n.out_dim(), la);
}

// The permutation the next shuffled epoch of fit_epoch will use (counters not advanced).
template <typename T>
py::array_t<int64_t> next_permutation(Network<T>& n, const py::object& rows_o) {
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
void bind_network_sparse(py::class_<Network<T>>& c);

template <typename T>
void bind_network(py::module_& m, const char* cls) {
  using Net = Network<T>;
  py::class_<Net> c(m, cls);
  bind_network_sparse<T>(c);
  c.def(py::init([](const py::object& spec, const py::object& seed) {
             const uint64_t s = to_u64(seed, "seed");
             const std::vector<LayerSpec> parsed = parse_spec(spec);
             const SpecTotals sz = spec_totals(parsed);
             // parameters + gradients + up to 3 optimizer state arrays, and the buffers
             check_memory(5.0 * double(sz.params) * sizeof(T) + double(sz.buffers) * sizeof(T),
                          "a network of " + std::to_string(sz.params) + " parameters");
             try {
               auto net = std::make_unique<Net>(parsed, s);
               net->row_elems = sz.row;
               return net;
             } catch (const std::bad_alloc&) {
               raise_py(PyExc_MemoryError, "out of memory for a network of " +
                                               std::to_string(sz.params) + " parameters");
             } catch (const std::length_error&) {
               raise_py(PyExc_MemoryError, "a network of " + std::to_string(sz.params) +
                                               " parameters is too large");
             }
           }),
           py::arg("spec"), py::arg("seed") = 0)
      .def_property_readonly("dtype", [](const Net&) { return std::string(dtype_name<T>()); })
      .def_property_readonly("in_dim", &Net::in_dim)
      .def_property_readonly("out_dim", &Net::out_dim)
      .def_property_readonly("num_params", [](Net& n) { return int64_t(n.arena().size()); })
      .def("arena", [](py::object self) {
        Net& n = self.cast<Net&>();
        return view(n.arena(), 0, {int64_t(n.arena().size())}, self);
      })
      .def("parameters", [](py::object self) {
        Net& n = self.cast<Net&>();
        return views(n.arena(), n.param_info(), self);
      })
      .def("buffers", [](py::object self) {
        Net& n = self.cast<Net&>();
        return views(n.buffer_arena(), n.buffer_info(), self);
      })
      .def("predict",
           [](Net& n, const py::object& Xo, const py::object& cf) {
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
           },
           py::arg("X"), py::arg("check_finite") = py::none())
      .def("loss_and_gradients",
           [](Net& n, const py::object& Xo, const py::object& yo, const std::string& loss,
              const py::object& loss_params_o, const py::object& sample_weight,
              const py::object& cf, bool probe) {
             CheckedBatch<T> b = check_batch<T>(n, Xo, yo, loss, loss_params_o, sample_weight, cf);
             check_batch_memory(b.rows, n.row_elems, sizeof(T));
             // Output arrays first (GIL held); filled under the mutex, so the gradients
             // returned are those of this call even if another thread trains concurrently.
             py::list grads;
             std::vector<T*> dst;
             for (const auto& p : n.param_info()) {
               std::vector<py::ssize_t> sh(p.shape.begin(), p.shape.end());
               py::array_t<T> a(sh);
               dst.push_back(a.mutable_data());
               grads.append(a);
             }
             const double v = run_locked(n, [&] {
               const double r = n.loss_and_gradients(b.x, b.ct.t, b.rows, b.la, b.pen, probe);
               int64_t off = 0;
               for (size_t i = 0; i < dst.size(); ++i) {
                 const int64_t sz = n.param_info()[i].size();
                 std::copy(n.grad_arena().begin() + off, n.grad_arena().begin() + off + sz,
                           dst[i]);
                 off += sz;
               }
               return r;
             });
             return py::make_tuple(v, grads);
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = py::none(),
           py::arg("probe") = false)
      .def("grad_arena", [](py::object self) {
        Net& n = self.cast<Net&>();
        return view(n.grad_arena(), 0, {int64_t(n.grad_arena().size())}, self);
      })
      .def("compute_gradients",
           [](Net& n, const py::object& Xo, const py::object& yo, const std::string& loss,
              const py::object& loss_params_o, const py::object& sample_weight,
              const py::object& cf) {
             CheckedBatch<T> b = check_batch<T>(n, Xo, yo, loss, loss_params_o, sample_weight, cf);
             check_batch_memory(b.rows, n.row_elems, sizeof(T));
             return run_locked(n, [&] {
               return n.loss_and_gradients(b.x, b.ct.t, b.rows, b.la, b.pen);
             });
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = py::none())
      .def("apply_gradients", [](Net& n) {
        run_locked(n, [&] {
          n.apply_gradients();
          return 0.0;
        });
      })
      .def("train_step",
           [](Net& n, const py::object& Xo, const py::object& yo, const std::string& loss,
              const py::object& loss_params_o, const py::object& sample_weight,
              const py::object& cf) {
             CheckedBatch<T> b = check_batch<T>(n, Xo, yo, loss, loss_params_o, sample_weight, cf);
             check_batch_memory(b.rows, n.row_elems, sizeof(T));
             return run_locked(n, [&] { return n.train_step(b.x, b.ct.t, b.rows, b.la, b.pen); });
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = py::none())
      .def("fit_epoch",
           [](Net& n, const py::object& Xo, const py::object& yo, const std::string& loss,
              const py::object& loss_params_o, const py::object& sample_weight,
              const py::object& batch_size_o, bool shuffle, const py::object& lrs,
              const py::object& cf) {
             CheckedBatch<T> b = check_batch<T>(n, Xo, yo, loss, loss_params_o, sample_weight, cf);
             const int64_t N = b.rows;
             const int64_t batch_size = to_pos_int(batch_size_o, "batch_size");
             const int64_t bs = std::min(batch_size, N);
             const int64_t steps = (N + bs - 1) / bs;
             check_batch_memory(bs, n.row_elems + n.in_dim() + n.out_dim() + 2, sizeof(T));
             check_memory(double(N) * 8.0, "the shuffle of " + std::to_string(N) + " rows");
             py::array_t<double, py::array::c_style | py::array::forcecast> lr_arr;
             const double* lp = nullptr;
             if (!lrs.is_none()) {
               py::array l0 = as_array(lrs, "lrs", py::dtype::of<double>(), "iuf");
               lr_arr = l0;
               if (lr_arr.ndim() != 1 || lr_arr.shape(0) != steps)
                 throw std::invalid_argument("lrs must hold one learning rate per step (" +
                                             std::to_string(steps) + "), got shape " +
                                             shape_str(lr_arr));
               lp = lr_arr.data();
               for (int64_t i = 0; i < steps; ++i)
                 if (!(lp[i] >= 0.0) || !std::isfinite(lp[i]))
                   throw std::invalid_argument("lrs must be finite and >= 0");
             }
             return run_interruptible(n, [&](const std::atomic<bool>* stop) {
               return n.fit_epoch(b.x, b.ct.t, N, bs, shuffle, lp, b.la, b.pen, stop);
             });
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("batch_size") = 32,
           py::arg("shuffle") = true, py::arg("lrs") = py::none(),
           py::arg("check_finite") = py::none())
      .def("set_optimizer",
           [](Net& n, const std::string& name, const py::object& hyper_o, bool reset) {
             py::dict hyper;
             if (!hyper_o.is_none()) {
               if (!py::isinstance<py::dict>(hyper_o))
                 throw py::type_error("hyper must be a dict");
               hyper = py::reinterpret_borrow<py::dict>(hyper_o);
             }
             OptConfig c = parse_opt(name, hyper);
             std::lock_guard<std::mutex> lock(n.mutex());  // pure C++ below (see top)
             n.set_optimizer(c, reset);
           },
           py::arg("name"), py::arg("hyper") = py::none(), py::arg("reset") = false)
      .def("set_lr",
           [](Net& n, const py::object& lr_o) {
             const double lr = to_double(lr_o, "lr");
             if (!(lr >= 0.0) || !std::isfinite(lr))
               throw std::invalid_argument("lr must be a finite number >= 0");
             std::lock_guard<std::mutex> lock(n.mutex());
             n.set_lr(lr);
           },
           py::arg("lr"))
      .def("optimizer_name",
           [](Net& n) {
             std::lock_guard<std::mutex> lock(n.mutex());
             return std::string(opt_name(n.optimizer().kind));
           })
      .def("optimizer_state",
           [](Net& n) {
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
           })
      .def("set_optimizer_state",
           [](Net& n, const py::object& state) {
             if (!py::isinstance<py::dict>(state))
               throw py::type_error("state must be a dict, got " +
                                    type_name(state));
             py::dict d = py::reinterpret_borrow<py::dict>(state);
             std::vector<std::string> names;
             size_t count;
             {
               std::lock_guard<std::mutex> lock(n.mutex());
               names = n.opt_state().names();
               count = n.arena().size();
             }
             // Validate and convert everything (Python calls) before touching the state.
             if (!d.contains("step")) throw std::invalid_argument("state lacks 'step'");
             py::object step_o = d["step"];
             if (py::isinstance<py::array>(step_o) && py::array(step_o).ndim() == 0)
               step_o = step_o.attr("item")();
             if (PyBool_Check(step_o.ptr()) || !PyIndex_Check(step_o.ptr()))
               throw std::invalid_argument("state['step'] must be a non-negative int, got " +
                                           repr_of(step_o));
             py::object step_i = py::reinterpret_steal<py::object>(PyNumber_Index(step_o.ptr()));
             int overflow = 0;
             const long long step = PyLong_AsLongLongAndOverflow(step_i.ptr(), &overflow);
             if (overflow || step < 0)
               throw std::invalid_argument("state['step'] must be a non-negative int, got " +
                                           repr_of(step_o));
             for (auto item : d) {
               const std::string k = py::str(item.first);
               if (k != "step" && std::find(names.begin(), names.end(), k) == names.end())
                 throw std::invalid_argument("state has an unknown key '" + k +
                                             "' for optimizer '" +
                                             opt_name(n.optimizer().kind) + "'");
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
             std::lock_guard<std::mutex> lock(n.mutex());  // pure C++ below
             auto& st = n.opt_state();
             if (st.names() != names)
               throw std::runtime_error("the optimizer changed while its state was being set");
             for (size_t i = 0; i < names.size(); ++i) {
               const T* src = static_cast<const T*>(arrays[i].data());
               std::copy(src, src + count, st.arrays[i].begin());
             }
             st.step = int64_t(step);
           },
           py::arg("state"))
      .def("check_batch",
           [](Net& n, const py::object& Xo, const py::object& yo, const std::string& loss,
              const py::object& loss_params_o, const py::object& sample_weight,
              const py::object& cf) {
             check_batch<T>(n, Xo, yo, loss, loss_params_o, sample_weight, cf);
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = py::none(),
           "Check a batch as train_step would, without computing anything.")
      .def("loss_value", &loss_of_outputs<T>, py::arg("outputs"), py::arg("y"),
           py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(),
           "The loss (no penalties) of given outputs against y.")
      .def("permutation", &next_permutation<T>, py::arg("n"),
           "The row order the next shuffled fit_epoch over n rows uses.")
      .def("rng_state",
           [](Net& n) {
             uint64_t a, b, c;
             {
               std::lock_guard<std::mutex> lock(n.mutex());
               a = n.seed(); b = n.step_counter(); c = n.epoch_counter();
             }
             return py::make_tuple(a, b, c);
           })
      .def("set_rng_state",
           [](Net& n, const py::object& seed, const py::object& step, const py::object& epoch) {
             const uint64_t a = to_u64(seed, "seed"), b = to_u64(step, "step_counter"),
                            c = to_u64(epoch, "epoch_counter");
             std::lock_guard<std::mutex> lock(n.mutex());
             n.set_rng_state(a, b, c);
           },
           py::arg("seed"), py::arg("step"), py::arg("epoch"));
}

// Sparse input rows (CSR: X.data, X.indices, X.indptr of scipy.sparse) for networks whose
// first layer is dense: predict, loss and FLAT gradient (the arena's layout), and a whole
// epoch, each checked as its dense counterpart.
template <typename T>
CheckedBatch<T> check_sparse_batch(const Network<T>& n, const CheckedCsr& x,
                                   const py::object& yo, const std::string& loss,
                                   const py::object& loss_params_o,
                                   const py::object& sample_weight) {
  if (!n.first_layer_dense())
    throw std::invalid_argument("sparse input needs a network whose first layer is dense");
  CheckedBatch<T> b;
  b.la = parse_loss(loss, as_dict(loss_params_o, "loss_params"), b.pen);
  b.rows = x.rows;
  b.ct = check_target<T>(yo, sample_weight, b.rows, n.out_dim(), b.la.kind);
  return b;
}

template <typename T>
void bind_network_sparse(py::class_<Network<T>>& c) {
  using Net = Network<T>;
  c.def("predict_csr",
        [](Net& n, const py::object& d, const py::object& j, const py::object& p,
           const py::object& cf) {
          if (!n.first_layer_dense())
            throw std::invalid_argument("sparse input needs a network whose first layer is dense");
          CheckedCsr x = check_csr<T>(d, j, p, n.in_dim(), resolve_check_finite(cf));
          check_batch_memory(std::min(x.rows, n.predict_budget_rows()), n.row_elems, sizeof(T));
          py::array_t<T> out({py::ssize_t(x.rows), py::ssize_t(n.out_dim())});
          T* o = out.mutable_data();
          run_locked(n, [&] {
            n.predict_csr(x.view, o, x.rows);
            return 0.0;
          });
          return out;
        },
        py::arg("data"), py::arg("indices"), py::arg("indptr"),
        py::arg("check_finite") = py::none());
  c.def("loss_and_gradients_csr",
        [](Net& n, const py::object& d, const py::object& j, const py::object& p,
           const py::object& yo, const std::string& loss, const py::object& lp,
           const py::object& sw, const py::object& cf) {
          CheckedCsr x = check_csr<T>(d, j, p, n.in_dim(), resolve_check_finite(cf));
          CheckedBatch<T> b = check_sparse_batch<T>(n, x, yo, loss, lp, sw);
          check_batch_memory(b.rows, n.row_elems, sizeof(T));
          py::array_t<T> g(py::ssize_t(n.arena().size()));
          T* gp = g.mutable_data();
          const double v = run_locked(n, [&] {
            const double r = n.loss_and_gradients_csr(x.view, b.ct.t, b.rows, b.la, b.pen);
            std::copy(n.grad_arena().begin(), n.grad_arena().end(), gp);
            return r;
          });
          return py::make_tuple(v, g);
        },
        py::arg("data"), py::arg("indices"), py::arg("indptr"), py::arg("y"), py::arg("loss"),
        py::arg("loss_params") = py::none(), py::arg("sample_weight") = py::none(),
        py::arg("check_finite") = py::none());
  c.def("fit_epoch_csr",
        [](Net& n, const py::object& d, const py::object& j, const py::object& p,
           const py::object& yo, const std::string& loss, const py::object& lp,
           const py::object& sw, const py::object& batch_size_o, bool shuffle,
           const py::object& cf) {
          CheckedCsr x = check_csr<T>(d, j, p, n.in_dim(), resolve_check_finite(cf));
          CheckedBatch<T> b = check_sparse_batch<T>(n, x, yo, loss, lp, sw);
          const int64_t bs = std::min(to_pos_int(batch_size_o, "batch_size"), b.rows);
          check_batch_memory(bs, n.row_elems + n.out_dim() + 2, sizeof(T));
          check_memory(double(b.rows) * 16.0, "the shuffle of " + std::to_string(b.rows) + " rows");
          return run_locked(n, [&] {
            return n.fit_epoch_csr(x.view, b.ct.t, b.rows, bs, shuffle, nullptr, b.la, b.pen);
          });
        },
        py::arg("data"), py::arg("indices"), py::arg("indptr"), py::arg("y"), py::arg("loss"),
        py::arg("loss_params") = py::none(), py::arg("sample_weight") = py::none(),
        py::arg("batch_size") = 32, py::arg("shuffle") = true,
        py::arg("check_finite") = py::none());
}

}  // namespace

void bind_nn(py::module_& m) {
  m.def("set_check_finite", [](bool on) { g_check_finite.store(on); }, py::arg("on"),
        "Default of every check_finite=None argument: reject NaN/Inf in X (True).");
  m.def("get_check_finite", []() { return g_check_finite.load(); });
  bind_network<float>(m, "Network32");
  bind_network<double>(m, "Network64");
}

}  // namespace fastbp
