// The one PYBIND11_MODULE: each family binds itself.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace fastbp {
void bind_core(py::module_& m);
void bind_kernels(py::module_& m);
void bind_nn(py::module_& m);
void bind_registry(py::module_& m);
void bind_ensemble(py::module_& m);
}  // namespace fastbp

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastbp native engine";
  // pybind11 already translates std::invalid_argument -> ValueError, std::bad_alloc ->
  // MemoryError, std::out_of_range -> IndexError.
  fastbp::bind_core(m);
  fastbp::bind_kernels(m);
  fastbp::bind_nn(m);
  fastbp::bind_registry(m);
  fastbp::bind_ensemble(m);
}
