// Bindings for the engine (Network). Filled by the core issue.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace fastbp {
void bind_nn(py::module_& m) {}
}  // namespace fastbp
