// Bindings for core: ISA choice, threads, build information.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "core/cpu.h"
#include "core/threading.h"

namespace py = pybind11;

namespace fastbp {

void bind_core(py::module_& m) {
  init_isa_from_env();
  m.def("get_isa", []() { return std::string(isa_name(active_isa())); },
        "Instruction set the kernels use now.");
  m.def(
      "set_isa",
      [](const std::string& name) { set_active_isa(isa_from_name(name, "isa")); },
      py::arg("name"));
  m.def("supported_isas", []() {
    py::list out;
    for (const IsaInfo& i : kIsas)
      if (cpu_supports(i.isa)) out.append(i.name);
    return out;
  });
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("have_openmp", &have_openmp);
  m.def("openmp_runtime", []() { return std::string(openmp_runtime()); });
}

}  // namespace fastbp
