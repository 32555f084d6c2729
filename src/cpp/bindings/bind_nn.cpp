// Bindings for the engine: Network32 / Network64 (docs/ENGINE.md). Validation happens here,
// once, before any native work: a rejected call raises and leaves the network unchanged.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "nn/network.h"

namespace py = pybind11;

namespace fastbp {

namespace {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

template <typename T>
double dget(const py::dict& d, const char* key, double dflt) {
  if (!d.contains(key)) return dflt;
  py::object v = d[key];
  if (v.is_none()) return dflt;
  return v.cast<double>();
}

bool bget(const py::dict& d, const char* key, bool dflt) {
  if (!d.contains(key)) return dflt;
  py::object v = d[key];
  if (v.is_none()) return dflt;
  return v.cast<bool>();
}

LayerSpec parse_layer(const py::handle& h) {
  if (!py::isinstance<py::dict>(h)) throw std::invalid_argument("spec: each layer must be a dict");
  py::dict d = py::reinterpret_borrow<py::dict>(h);
  LayerSpec s;
  if (!d.contains("type")) throw std::invalid_argument("spec: a layer has no 'type'");
  s.type = d["type"].cast<std::string>();
  auto geti = [&](const char* k) -> int64_t {
    if (!d.contains(k))
      throw std::invalid_argument("spec: layer '" + s.type + "' needs '" + k + "'");
    return d[k].cast<int64_t>();
  };
  if (s.type == "dense") {
    s.in = geti("in");
    s.out = geti("out");
  } else {
    s.in = s.out = geti("dim");
  }
  if (d.contains("activation") && !d["activation"].is_none())
    s.act = act_from_name(d["activation"].cast<std::string>());
  double default_alpha = s.act == Act::leaky_relu ? 0.01 : (s.act == Act::elu ? 1.0 : 0.0);
  s.alpha = dget<double>(d, "alpha", default_alpha);
  s.rate = dget<double>(d, "rate", 0.0);
  s.eps = dget<double>(d, "eps", 1e-5);
  s.momentum = dget<double>(d, "momentum", 0.1);
  if (s.type == "residual") {
    if (!d.contains("layers")) throw std::invalid_argument("spec: residual needs 'layers'");
    for (auto c : d["layers"].cast<py::list>()) s.children.push_back(parse_layer(c));
  }
  return s;
}

OptConfig parse_opt(const std::string& name, const py::dict& h) {
  OptConfig c;
  c.kind = opt_from_name(name);
  const bool adam = c.kind == OptKind::adam || c.kind == OptKind::adamw;
  const double lr_default = adam ? 1e-3 : (c.kind == OptKind::sgd ? 1e-3 : 1e-2);
  c.lr = dget<double>(h, "lr", lr_default);
  c.momentum = dget<double>(h, "momentum", 0.0);
  c.dampening = dget<double>(h, "dampening", 0.0);
  c.nesterov = bget(h, "nesterov", false);
  c.weight_decay = dget<double>(h, "weight_decay", c.kind == OptKind::adamw ? 1e-2 : 0.0);
  c.beta1 = dget<double>(h, "beta1", 0.9);
  c.beta2 = dget<double>(h, "beta2", 0.999);
  c.eps = dget<double>(h, "eps", c.kind == OptKind::adagrad ? 1e-10 : 1e-8);
  c.amsgrad = bget(h, "amsgrad", false);
  c.alpha = dget<double>(h, "alpha", 0.99);
  c.centered = bget(h, "centered", false);
  c.lr_decay = dget<double>(h, "lr_decay", 0.0);
  c.initial_accumulator_value = dget<double>(h, "initial_accumulator_value", 0.0);
  c.clip_value = dget<double>(h, "clip_value", 0.0);
  c.clip_norm = dget<double>(h, "clip_norm", 0.0);
  if (!(c.lr >= 0.0) || !std::isfinite(c.lr))
    throw std::invalid_argument("optimizer lr must be a finite number >= 0");
  if (c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0))
    throw std::invalid_argument("nesterov momentum requires a momentum and zero dampening");
  if (!(c.beta1 >= 0.0 && c.beta1 < 1.0) || !(c.beta2 >= 0.0 && c.beta2 < 1.0))
    throw std::invalid_argument("adam betas must be in [0, 1)");
  if (!(c.eps >= 0.0)) throw std::invalid_argument("optimizer eps must be >= 0");
  if (c.momentum < 0.0) throw std::invalid_argument("optimizer momentum must be >= 0");
  if (c.weight_decay < 0.0) throw std::invalid_argument("weight_decay must be >= 0");
  if (c.clip_value < 0.0 || c.clip_norm < 0.0)
    throw std::invalid_argument("clip_value and clip_norm must be >= 0");
  return c;
}

LossArgs parse_loss(const std::string& name, const py::dict& p, PenaltyArgs& pen) {
  LossArgs a;
  a.kind = loss_from_name(name);
  a.delta = dget<double>(p, "delta", 1.0);
  if (!(a.delta > 0.0)) throw std::invalid_argument("huber delta must be > 0");
  pen.l1 = dget<double>(p, "l1", 0.0);
  pen.l2 = dget<double>(p, "l2", 0.0);
  if (pen.l1 < 0.0 || pen.l2 < 0.0) throw std::invalid_argument("l1 and l2 must be >= 0");
  return a;
}

template <typename T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// X: exact dtype, C-contiguous, 2-D (n, in_dim), n >= 1, finite.
template <typename T>
const T* check_x(const py::array& X, int64_t in_dim, const char* name, bool check_finite) {
  if (!py::isinstance<py::array_t<T>>(X) || !X.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + " must be a " + dtype_name<T>() +
                         " array (the model's dtype), got dtype " +
                         py::str(X.dtype()).cast<std::string>());
  if (X.ndim() != 2 || X.shape(1) != in_dim)
    throw std::invalid_argument(std::string(name) + " must have shape (n, " +
                                std::to_string(in_dim) + "), got " + shape_str(X));
  if (X.shape(0) < 1) throw std::invalid_argument(std::string(name) + " is empty (0 rows)");
  if (!(X.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + " must be C-contiguous");
  const T* p = static_cast<const T*>(X.data());
  if (check_finite) {
    const int64_t count = X.shape(0) * X.shape(1);
    bool ok = true;
    for (int64_t i = 0; i < count; ++i) ok &= std::isfinite(p[i]);
    if (!ok) throw std::invalid_argument(std::string(name) + " contains NaN or Inf");
  }
  return p;
}

// Fills a Target from y and sample_weight, checking shapes against n rows and k outputs.
template <typename T>
Target<T> check_target(const py::array& y, const py::object& sw, int64_t n, int64_t k,
                       LossKind kind, bool check_finite) {
  Target<T> t;
  const bool is_int = y.dtype().kind() == 'i' || y.dtype().kind() == 'u';
  if (kind == LossKind::softmax_ce && y.ndim() == 1) {
    if (!y.dtype().is(py::dtype::of<int64_t>()))
      throw py::type_error("y: integer class labels must be int64, got " +
                           py::str(y.dtype()).cast<std::string>());
    if (y.shape(0) != n)
      throw std::invalid_argument("y has " + std::to_string(y.shape(0)) + " labels but X has " +
                                  std::to_string(n) + " rows");
    if (!(y.flags() & py::array::c_style)) throw std::invalid_argument("y must be C-contiguous");
    const int64_t* l = static_cast<const int64_t*>(y.data());
    for (int64_t i = 0; i < n; ++i)
      if (l[i] < 0 || l[i] >= k)
        throw std::invalid_argument("y: label " + std::to_string(l[i]) + " at row " +
                                    std::to_string(i) + " is out of range [0, " +
                                    std::to_string(k) + ")");
    t.labels = l;
  } else {
    if (is_int || !y.dtype().is(py::dtype::of<T>()))
      throw py::type_error(std::string("y must be a ") + dtype_name<T>() +
                           " array (the model's dtype), got " +
                           py::str(y.dtype()).cast<std::string>());
    const bool ok = (y.ndim() == 2 && y.shape(0) == n && y.shape(1) == k) ||
                    (y.ndim() == 1 && k == 1 && y.shape(0) == n);
    if (!ok)
      throw std::invalid_argument("y must have shape (" + std::to_string(n) + ", " +
                                  std::to_string(k) + "), got " + shape_str(y));
    if (!(y.flags() & py::array::c_style)) throw std::invalid_argument("y must be C-contiguous");
    t.values = static_cast<const T*>(y.data());
    if (check_finite) {
      for (int64_t i = 0; i < n * k; ++i)
        if (!std::isfinite(t.values[i])) throw std::invalid_argument("y contains NaN or Inf");
    }
  }
  if (!sw.is_none()) {
    py::array w = sw.cast<py::array>();
    if (!w.dtype().is(py::dtype::of<T>()))
      throw py::type_error(std::string("sample_weight must be a ") + dtype_name<T>() + " array");
    if (w.ndim() != 1 || w.shape(0) != n)
      throw std::invalid_argument("sample_weight must have shape (" + std::to_string(n) +
                                  ",), got " + shape_str(w));
    if (!(w.flags() & py::array::c_style))
      throw std::invalid_argument("sample_weight must be C-contiguous");
    const T* wp = static_cast<const T*>(w.data());
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(wp[i]) || wp[i] < T(0))
        throw std::invalid_argument("sample_weight must be finite and >= 0");
      s += double(wp[i]);
    }
    if (!(s > 0.0)) throw std::invalid_argument("sample_weight must not sum to 0");
    t.weight = wp;
  }
  return t;
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

py::dict as_dict(const py::object& o) {
  if (o.is_none()) return py::dict();
  if (!py::isinstance<py::dict>(o)) throw py::type_error("expected a dict or None");
  return py::reinterpret_borrow<py::dict>(o);
}

std::vector<LayerSpec> parse_spec(const py::list& spec) {
  std::vector<LayerSpec> out;
  for (auto h : spec) out.push_back(parse_layer(h));
  return out;
}

template <typename T>
void bind_network(py::module_& m, const char* cls) {
  using Net = Network<T>;
  py::class_<Net>(m, cls)
      .def(py::init([](const py::list& spec, uint64_t seed) {
             return std::make_unique<Net>(parse_spec(spec), seed);
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
           [](Net& n, const py::array& X, bool check_finite) {
             const T* x = check_x<T>(X, n.in_dim(), "X", check_finite);
             const int64_t rows = X.shape(0);
             py::array_t<T> out({py::ssize_t(rows), py::ssize_t(n.out_dim())});
             T* o = out.mutable_data();
             {
               py::gil_scoped_release release;
               std::lock_guard<std::mutex> lock(n.mutex());
               n.predict(x, o, rows);
             }
             return out;
           },
           py::arg("X"), py::arg("check_finite") = true)
      .def("loss_and_gradients",
           [](Net& n, const py::array& X, const py::array& y, const std::string& loss,
              const py::object& loss_params_obj, const py::object& sample_weight, bool check_finite) {
             PenaltyArgs pen;
             LossArgs la = parse_loss(loss, as_dict(loss_params_obj), pen);
             const T* x = check_x<T>(X, n.in_dim(), "X", check_finite);
             Target<T> t = check_target<T>(y, sample_weight, X.shape(0), n.out_dim(), la.kind,
                                           check_finite);
             double v;
             {
               py::gil_scoped_release release;
               std::lock_guard<std::mutex> lock(n.mutex());
               v = n.loss_and_gradients(x, t, X.shape(0), la, pen);
             }
             return py::make_tuple(v, copies(n.grad_arena(), n.param_info()));
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = true)
      .def("train_step",
           [](Net& n, const py::array& X, const py::array& y, const std::string& loss,
              const py::object& loss_params_obj, const py::object& sample_weight, bool check_finite) {
             PenaltyArgs pen;
             LossArgs la = parse_loss(loss, as_dict(loss_params_obj), pen);
             const T* x = check_x<T>(X, n.in_dim(), "X", check_finite);
             Target<T> t = check_target<T>(y, sample_weight, X.shape(0), n.out_dim(), la.kind,
                                           check_finite);
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             return n.train_step(x, t, X.shape(0), la, pen);
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = true)
      .def("fit_epoch",
           [](Net& n, const py::array& X, const py::array& y, const std::string& loss,
              const py::object& loss_params_obj, const py::object& sample_weight, int64_t batch_size,
              bool shuffle, const py::object& lrs, bool check_finite) {
             PenaltyArgs pen;
             LossArgs la = parse_loss(loss, as_dict(loss_params_obj), pen);
             const T* x = check_x<T>(X, n.in_dim(), "X", check_finite);
             const int64_t N = X.shape(0);
             Target<T> t = check_target<T>(y, sample_weight, N, n.out_dim(), la.kind,
                                           check_finite);
             if (batch_size < 1) throw std::invalid_argument("batch_size must be >= 1");
             const int64_t bs = std::min(batch_size, N);
             const int64_t steps = (N + bs - 1) / bs;
             py::array_t<double, py::array::c_style | py::array::forcecast> lr_arr;
             const double* lp = nullptr;
             if (!lrs.is_none()) {
               lr_arr = lrs.cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
               if (lr_arr.ndim() != 1 || lr_arr.shape(0) < steps)
                 throw std::invalid_argument("lrs must hold one learning rate per step (" +
                                             std::to_string(steps) + ")");
               lp = lr_arr.data();
             }
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             return n.fit_epoch(x, t, N, bs, shuffle, lp, la, pen);
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("batch_size") = 32,
           py::arg("shuffle") = true, py::arg("lrs") = py::none(),
           py::arg("check_finite") = true)
      .def("set_optimizer",
           [](Net& n, const std::string& name, const py::object& hyper, bool reset) {
             OptConfig c = parse_opt(name, as_dict(hyper));
             std::lock_guard<std::mutex> lock(n.mutex());
             n.set_optimizer(c, reset);
           },
           py::arg("name"), py::arg("hyper") = py::none(), py::arg("reset") = false)
      .def("set_lr",
           [](Net& n, double lr) {
             if (!(lr >= 0.0) || !std::isfinite(lr))
               throw std::invalid_argument("lr must be a finite number >= 0");
             std::lock_guard<std::mutex> lock(n.mutex());
             n.set_lr(lr);
           },
           py::arg("lr"))
      .def("optimizer_name", [](Net& n) { return std::string(opt_name(n.optimizer().kind)); })
      .def("optimizer_state",
           [](Net& n) {
             std::lock_guard<std::mutex> lock(n.mutex());
             py::dict d;
             auto& st = n.opt_state();
             d["step"] = st.step;
             for (size_t i = 0; i < st.names.size(); ++i) {
               py::array_t<T> a(py::ssize_t(st.arrays[i].size()));
               std::copy(st.arrays[i].begin(), st.arrays[i].end(), a.mutable_data());
               d[py::str(st.names[i])] = a;
             }
             return d;
           })
      .def("set_optimizer_state",
           [](Net& n, const py::dict& d) {
             std::lock_guard<std::mutex> lock(n.mutex());
             auto& st = n.opt_state();
             // validate everything first, then write
             for (size_t i = 0; i < st.names.size(); ++i) {
               if (!d.contains(st.names[i].c_str()))
                 throw std::invalid_argument("optimizer state lacks '" + st.names[i] + "'");
               auto a = d[st.names[i].c_str()].template cast<py::array_t<T, py::array::c_style | py::array::forcecast>>();
               if (a.ndim() != 1 || size_t(a.shape(0)) != st.arrays[i].size())
                 throw std::invalid_argument("optimizer state '" + st.names[i] + "' must have " +
                                             std::to_string(st.arrays[i].size()) + " values");
             }
             int64_t step = d.contains("step") ? d["step"].cast<int64_t>() : st.step;
             if (step < 0) throw std::invalid_argument("optimizer step must be >= 0");
             for (size_t i = 0; i < st.names.size(); ++i) {
               auto a = d[st.names[i].c_str()].template cast<py::array_t<T, py::array::c_style | py::array::forcecast>>();
               std::copy(a.data(), a.data() + a.shape(0), st.arrays[i].begin());
             }
             st.step = step;
           })
      .def("rng_state",
           [](Net& n) { return py::make_tuple(n.seed(), n.step_counter(), n.epoch_counter()); })
      .def("set_rng_state",
           [](Net& n, uint64_t seed, uint64_t step, uint64_t epoch) {
             std::lock_guard<std::mutex> lock(n.mutex());
             n.set_rng_state(seed, step, epoch);
           },
           py::arg("seed"), py::arg("step"), py::arg("epoch"));
}

}  // namespace

void bind_nn(py::module_& m) {
  bind_network<float>(m, "Network32");
  bind_network<double>(m, "Network64");
}

}  // namespace fastbp
