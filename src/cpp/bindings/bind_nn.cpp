// Bindings for the engine: Network32 / Network64 (docs/ENGINE.md). Definitions only: the
// work behind each method (argument checks, memory refusal, locking) is in network_calls.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/convert.h"
#include "bindings/network_calls.h"

namespace py = pybind11;

namespace fastbp {

// Sparse (CSR) input methods: bind_nn_sparse.cpp.
template <typename T>
void bind_network_csr(py::class_<Network<T>>& c);

namespace {

template <typename T>
using NetClass = py::class_<Network<T>>;

template <typename T>
void bind_construction(NetClass<T>& c) {
  using C = NetworkCalls<T>;
  using Net = Network<T>;
  c.def(py::init(&C::create), py::arg("spec"), py::arg("seed") = 0)
      .def_property_readonly("dtype", [](const Net&) { return std::string(dtype_name<T>()); })
      .def_property_readonly("in_dim", &Net::in_dim)
      .def_property_readonly("out_dim", &Net::out_dim)
      .def_property_readonly("num_params", [](Net& n) { return int64_t(n.arena().size()); })
      .def_property_readonly("team_capable", &Net::team_capable)
      .def_property_readonly("split_epochs", &Net::split_epochs)
      .def_property_readonly("team_backoffs", &Net::team_backoffs)
      .def_property_readonly("team_probes", &Net::team_probes)
      .def_property_readonly("rows_steps", &Net::rows_steps)
      .def("_set_rows_allowed", &Net::set_rows_allowed, py::arg("allowed"))
      .def_property_readonly("chain_steps", &Net::chain_steps)
      .def("_set_chain_allowed", &Net::set_chain_allowed, py::arg("allowed"))
      .def("_set_team_probe_margin", &Net::set_team_probe_margin, py::arg("margin"))
      .def("_set_split_yield_at", &Net::set_split_yield_at, py::arg("step"))
      .def("arena", &C::arena)
      .def("parameters", &C::parameters)
      .def("buffers", &C::buffers);
}

template <typename T>
void bind_compute(NetClass<T>& c) {
  using C = NetworkCalls<T>;
  c.def("predict", &C::predict, py::arg("X"), py::arg("check_finite") = py::none())
      .def("loss_and_gradients", &C::loss_and_gradients, py::arg("X"), py::arg("y"),
           py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = py::none(),
           py::arg("probe") = false)
      .def("gradient_norms", &C::gradient_norms, py::arg("X"), py::arg("y"), py::arg("loss"),
           py::arg("loss_params") = py::none(), py::arg("sample_weight") = py::none(),
           py::arg("check_finite") = py::none())
      .def("grad_arena", &C::grad_arena)
      .def("compute_gradients", &C::compute_gradients, py::arg("X"), py::arg("y"),
           py::arg("loss"), py::arg("loss_params") = py::none(),
           py::arg("sample_weight") = py::none(), py::arg("check_finite") = py::none())
      .def("apply_gradients", &C::apply_gradients)
      .def("train_step", &C::train_step, py::arg("X"), py::arg("y"), py::arg("loss"),
           py::arg("loss_params") = py::none(), py::arg("sample_weight") = py::none(),
           py::arg("check_finite") = py::none())
      .def("fit_epoch", &C::fit_epoch, py::arg("X"), py::arg("y"), py::arg("loss"),
           py::arg("loss_params") = py::none(), py::arg("sample_weight") = py::none(),
           py::arg("batch_size") = 32, py::arg("shuffle") = true, py::arg("lrs") = py::none(),
           py::arg("check_finite") = py::none())
      .def("check_batch", &C::check_batch, py::arg("X"), py::arg("y"), py::arg("loss"),
           py::arg("loss_params") = py::none(), py::arg("sample_weight") = py::none(),
           py::arg("check_finite") = py::none(),
           "Check a batch as train_step would, without computing anything.")
      .def("loss_value", &C::loss_value, py::arg("outputs"), py::arg("y"), py::arg("loss"),
           py::arg("loss_params") = py::none(), py::arg("sample_weight") = py::none(),
           "The loss (no penalties) of given outputs against y.");
}

template <typename T>
void bind_optimizer(NetClass<T>& c) {
  using C = NetworkCalls<T>;
  c.def("set_optimizer", &C::set_optimizer, py::arg("name"), py::arg("hyper") = py::none(),
        py::arg("reset") = false)
      .def("set_lr", &C::set_lr, py::arg("lr"))
      .def("optimizer_name", &C::optimizer_name)
      .def("optimizer_state", &C::optimizer_state)
      .def("set_optimizer_state", &C::set_optimizer_state, py::arg("state"));
}

template <typename T>
void bind_rng(NetClass<T>& c) {
  using C = NetworkCalls<T>;
  c.def("rng_state", &C::rng_state)
      .def("permutation", &C::permutation, py::arg("n"),
           "The row order the next shuffled fit_epoch over n rows uses.")
      .def("set_rng_state", &C::set_rng_state, py::arg("seed"), py::arg("step"),
           py::arg("epoch"));
}

template <typename T>
void bind_network(py::module_& m, const char* name) {
  NetClass<T> c(m, name);
  bind_construction(c);
  bind_compute(c);
  bind_optimizer(c);
  bind_rng(c);
  bind_network_csr<T>(c);
}

}  // namespace

void bind_nn(py::module_& m) {
  m.def("set_check_finite", &set_check_finite_default, py::arg("on"),
        "Default of every check_finite=None argument: reject NaN/Inf in X (True).");
  m.def("get_check_finite", &check_finite_default,
        "The default of every check_finite=None argument (the one store of the setting).");
  bind_network<float>(m, "Network32");
  bind_network<double>(m, "Network64");
}

}  // namespace fastbp
