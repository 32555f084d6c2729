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
  m.def(
      "set_num_threads",
      [](const py::object& n) {
        if (PyBool_Check(n.ptr()) || !PyIndex_Check(n.ptr()))
          throw py::type_error("n must be an int, got " + py::repr(n).cast<std::string>());
        const py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(n.ptr()));
        int overflow = 0;
        const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
        if (overflow || v < 1 || v > max_threads())
          throw std::invalid_argument("n must be in [1, " + std::to_string(max_threads()) +
                                      "] (4 threads per logical CPU), got " +
                                      py::repr(n).cast<std::string>());
        set_num_threads(int(v));
      },
      py::arg("n"));
  m.def("max_threads", &max_threads, "Upper bound of set_num_threads.");
  m.def("fork_serial", &fork_serial,
        "True in a forked child whose parent's OpenMP pool could not be shut down before the "
        "fork: every parallel region then runs on one thread.");
  m.def("have_openmp", &have_openmp);
  m.def("openmp_runtime", []() { return std::string(openmp_runtime()); });
}

}  // namespace fastbp
