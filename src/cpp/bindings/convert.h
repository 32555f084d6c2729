// Conversion and checking of Python values for the bindings: every user-facing value is
// checked here (or in spec_parse.cpp), once, before any native work. Failures raise
// TypeError / ValueError (std::invalid_argument) / MemoryError with a message naming the
// argument; nothing here touches a network.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace fastbp {

namespace py = pybind11;

// Raise a Python exception of a given type (GIL held).
[[noreturn]] void raise_py(PyObject* type, const std::string& msg);

std::string shape_str(const py::array& a);  // "(3, 4)", "(5,)"
std::string repr_of(const py::handle& h);
std::string type_name(const py::handle& h);

// MemoryError when `bytes` exceed this machine's physical memory (or 9e18).
void check_memory(double bytes, const std::string& what);

// A real number (int, float, NumPy scalar); else std::invalid_argument naming `what`.
double to_double(const py::handle& v, const std::string& what);
// d[key] as a finite real, `dflt` when absent or None; errors name where['key'].
double dget(const py::dict& d, const char* key, double dflt, const std::string& where);
// d[key] as a bool, `dflt` when absent or None; an ambiguous truth value is an error.
bool bget(const py::dict& d, const char* key, bool dflt, const std::string& where);
// A positive integer (int or NumPy integer, not bool) that fits in int64.
int64_t to_pos_int(const py::handle& v, const std::string& what);
// An int (not bool) in [0, 2**64); TypeError for non-integers.
uint64_t to_u64(const py::handle& v, const char* what);
// None -> {}; a dict as it is; anything else is a TypeError.
py::dict as_dict(const py::object& o, const char* what);

// Converts user data to an ndarray (no copy for an ndarray); TypeError if impossible.
py::array to_ndarray(const py::handle& obj, const char* name);
// An aligned, C-contiguous array of dtype `dt` (a copy only when needed: other real dtypes,
// strides, Fortran order, misalignment, byte order). kinds: the accepted dtype kinds
// ("biuf" or "iuf"); anything else is a TypeError.
py::array as_array(const py::handle& obj, const char* name, const py::dtype& dt,
                   const char* kinds);

}  // namespace fastbp
