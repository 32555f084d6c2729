// Conversion and checking of Python values for the bindings: every user-facing value is
// checked here (or in spec_parse.cpp), once, before any native work. Failures raise
// TypeError / ValueError (std::invalid_argument) / MemoryError with a message naming the
// argument; nothing here touches a network.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nn/network.h"

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

// ------------------------------------------------------------------ check_finite default
// The process-wide default of every check_finite=None argument (fastbp.set_check_finite):
// stored here only; Python reads it with _core.get_check_finite().
void set_check_finite_default(bool on);
bool check_finite_default();
bool resolve_check_finite(const py::object& o);  // None -> check_finite_default()

// ------------------------------------------------------------------ engine arguments
template <typename T>
constexpr const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// X: (n, in_dim), n >= 1, converted to T; NaN/Inf refused when `check_finite`.
template <typename T>
py::array check_x(const py::handle& X, int64_t in_dim, const char* name, bool check_finite);

// y and sample_weight, converted and checked against n rows and k outputs: integer class
// labels (n,) for a loss whose registry row accepts labels, else finite values (n, k) (or
// (n,) when k == 1); weights finite, >= 0, with a positive sum. The arrays are kept alive in
// the struct for the duration of the call.
template <typename T>
struct CheckedTarget {
  // (py::object, not py::array: a default-constructed py::array allocates an empty NumPy
  // array, three of them per checked batch)
  py::object y, w;  // keep the converted arrays alive
  Target<T> t;
};
template <typename T>
CheckedTarget<T> check_target(const py::handle& y, const py::handle& sample_weight, int64_t n,
                              int64_t k, LossKind kind);

// One checked batch (X, y, sample_weight, loss and its parameters) for a network of widths
// in_dim -> out_dim; the arrays stay alive with the struct.
template <typename T>
struct CheckedBatch {
  PenaltyArgs pen;
  LossArgs la;
  py::object X;  // keeps the converted X alive (see CheckedTarget)
  CheckedTarget<T> ct;
  int64_t rows = 0;
  const T* x = nullptr;
};
template <typename T>
CheckedBatch<T> check_batch(int64_t in_dim, int64_t out_dim, const py::object& X,
                            const py::object& y, const std::string& loss,
                            const py::object& loss_params, const py::object& sample_weight,
                            const py::object& check_finite);

// MemoryError for a batch whose workspace cannot exist, before any allocation.
void check_batch_memory(int64_t rows, int64_t row_elems, size_t elem_size);

// ------------------------------------------------------------------ arena views
// A live, writable view of data[offset:] shaped `shape` (C order), keeping `base` alive.
template <typename T>
py::array_t<T> view(T* data, int64_t offset, const std::vector<int64_t>& shape,
                    py::handle base);
// Live views of consecutive arrays of an arena, one per layout entry.
template <typename T>
py::list views(T* arena, const std::vector<ParamInfo>& info, py::handle base);
// New (uninitialised) arrays shaped like the layout entries, and their data pointers.
template <typename T>
py::list new_arrays(const std::vector<ParamInfo>& info, std::vector<T*>& data);

}  // namespace fastbp
