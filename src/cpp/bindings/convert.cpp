#include "bindings/convert.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/platform.h"

namespace fastbp {

void raise_py(PyObject* type, const std::string& msg) {
  PyErr_SetString(type, msg.c_str());
  throw py::error_already_set();
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

std::string repr_of(const py::handle& h) { return py::repr(h).cast<std::string>(); }

std::string type_name(const py::handle& h) {
  return std::string(py::str(py::type::handle_of(h).attr("__name__")));
}

void check_memory(double bytes, const std::string& what) {
  const double phys = physical_memory_bytes();
  if (!(bytes < 9.0e18) || (phys > 0.0 && bytes > phys))
    raise_py(PyExc_MemoryError, what + " would need " + std::to_string(bytes / 1e9) +
                                    " GB, more than this machine's memory");
}

double to_double(const py::handle& v, const std::string& what) {
  if (PyUnicode_Check(v.ptr()) || PyBytes_Check(v.ptr()) || PyComplex_Check(v.ptr()))
    throw std::invalid_argument(what + " must be a real number, got " + repr_of(v));
  const double x = PyFloat_AsDouble(v.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw std::invalid_argument(what + " must be a real number, got " + repr_of(v));
  }
  return x;
}

double dget(const py::dict& d, const char* key, double dflt, const std::string& where) {
  if (!d.contains(key)) return dflt;
  py::object v = d[key];
  if (v.is_none()) return dflt;
  const double x = to_double(v, where + "['" + key + "']");
  if (!std::isfinite(x))
    throw std::invalid_argument(where + "['" + key + "'] must be finite, got " + repr_of(v));
  return x;
}

bool bget(const py::dict& d, const char* key, bool dflt, const std::string& where) {
  if (!d.contains(key)) return dflt;
  py::object v = d[key];
  if (v.is_none()) return dflt;
  const int t = PyObject_IsTrue(v.ptr());
  if (t < 0) {  // e.g. an array of several values: its truth is ambiguous
    PyErr_Clear();
    throw std::invalid_argument(where + "['" + key + "'] must be a bool, got " + repr_of(v));
  }
  return t == 1;
}

int64_t to_pos_int(const py::handle& v, const std::string& what) {
  if (PyBool_Check(v.ptr()) || !PyIndex_Check(v.ptr()))
    throw std::invalid_argument(what + " must be a positive integer, got " + repr_of(v));
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  const long long x = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow > 0) throw std::invalid_argument(what + " is too large: " + repr_of(v));
  if (overflow < 0 || x < 1)
    throw std::invalid_argument(what + " must be a positive integer, got " + repr_of(v));
  return int64_t(x);
}

uint64_t to_u64(const py::handle& v, const char* what) {
  if (PyBool_Check(v.ptr()) || !PyIndex_Check(v.ptr()))
    throw py::type_error(std::string(what) + " must be an int, got " + repr_of(v));
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  const unsigned long long x = PyLong_AsUnsignedLongLong(i.ptr());
  if (x == (unsigned long long)-1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw std::invalid_argument(std::string(what) + " must be in [0, 2**64), got " + repr_of(v));
  }
  return uint64_t(x);
}

py::dict as_dict(const py::object& o, const char* what) {
  if (o.is_none()) return py::dict();
  if (!py::isinstance<py::dict>(o))
    throw py::type_error(std::string(what) + " must be a dict or None");
  return py::reinterpret_borrow<py::dict>(o);
}

namespace {
// Deliberately never destroyed: a static py::object would be released by the C++ exit
// handlers after the interpreter is finalised (a segfault at exit, found by ASan).
py::module_& numpy() {
  static py::module_* np = new py::module_(py::module_::import("numpy"));
  return *np;
}
}  // namespace

py::array to_ndarray(const py::handle& obj, const char* name) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  try {
    return numpy().attr("asarray")(obj);
  } catch (py::error_already_set& e) {  // ragged nested lists and the like
    throw py::type_error(std::string(name) + " must be a numeric array: " + e.what());
  }
}

py::array as_array(const py::handle& obj, const char* name, const py::dtype& dt,
                   const char* kinds) {
  py::array a = to_ndarray(obj, name);
  const char kind = a.dtype().kind();
  if (!std::strchr(kinds, kind))
    throw py::type_error(std::string(name) + " must hold real numbers, got dtype " +
                         std::string(py::str(a.dtype())));
  const bool ok = a.dtype().is(dt) && (a.flags() & py::array::c_style) &&
                  (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_);
  if (ok) return a;
  py::array out = numpy().attr("ascontiguousarray")(a, dt);
  // ascontiguousarray returns a misaligned buffer as it is (UBSan found the misaligned loads)
  if (!(out.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) out = out.attr("copy")();
  return out;
}

}  // namespace fastbp
