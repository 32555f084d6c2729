// Bindings of sparse (CSR) input for Network32 / Network64 (docs/ENGINE.md): predict,
// loss and flat gradient, and a whole epoch, each checked as its dense counterpart
// (convert_sparse.h), then run as network_calls.h runs the dense calls.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "bindings/convert.h"
#include "bindings/convert_sparse.h"
#include "bindings/network_calls.h"
#include "bindings/spec_parse.h"

namespace py = pybind11;

namespace fastbp {

namespace {

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

template <typename T>
void bind_network_csr(py::class_<Network<T>>& c) {
  bind_network_sparse<T>(c);
}

template void bind_network_csr<float>(py::class_<Network<float>>&);
template void bind_network_csr<double>(py::class_<Network<double>>&);

}  // namespace fastbp
