#include "bindings/convert.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "bindings/spec_parse.h"
#include "core/kernel_set.h"
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
  if (PyDict_GET_SIZE(d.ptr()) == 0) return dflt;  // (the common case: no key string built)
  PyObject* found = PyDict_GetItemString(d.ptr(), key);  // (borrowed; null: absent)
  if (found == nullptr || found == Py_None) return dflt;
  const py::handle v(found);
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

// ---------------------------------------------------------------------------------------
// Engine arguments

namespace {
std::atomic<bool> g_check_finite{true};

void check_labels(const py::array& y0, int64_t n, int64_t k, LossKind kind) {
  const char yk = y0.dtype().kind();
  if (yk != 'i' && yk != 'u')
    throw py::type_error(std::string("y: class labels for ") + loss_name(kind) +
                         " must be integers, got dtype " + std::string(py::str(y0.dtype())) +
                         " (pass probabilities as an (n, classes) array)");
  if (y0.shape(0) != n)
    throw std::invalid_argument("y has " + std::to_string(y0.shape(0)) + " labels but X has " +
                                std::to_string(n) + " rows");
  if (yk == 'u' && y0.dtype().itemsize() == 8) {
    // uint64 labels above 2**63 would wrap to negative numbers in int64: check first.
    py::object mx = y0.attr("max")();
    if (mx.cast<uint64_t>() >= uint64_t(k))
      throw std::invalid_argument("y: label " + std::string(py::str(mx)) +
                                  " is out of range [0, " + std::to_string(k) + ")");
  }
}

template <typename T>
void check_values(CheckedTarget<T>& ct, const py::array& y0, int64_t n, int64_t k) {
  const char yk = y0.dtype().kind();
  if (yk != 'i' && yk != 'u' && yk != 'f')
    throw py::type_error(std::string("y must hold real numbers, got dtype ") +
                         std::string(py::str(y0.dtype())));
  const py::array y = as_array(y0, "y", py::dtype::of<T>(), "iuf");
  const bool ok = (y.ndim() == 2 && y.shape(0) == n && y.shape(1) == k) ||
                  (y.ndim() == 1 && k == 1 && y.shape(0) == n);
  if (!ok)
    throw std::invalid_argument("y must have shape (" + std::to_string(n) + ", " +
                                std::to_string(k) + "), got " + shape_str(y));
  ct.y = y;
  ct.t.values = static_cast<const T*>(y.data());
  // Targets are always checked: a NaN target has no meaning for any loss.
  if (!kernels().slots<T>().all_finite(ct.t.values, n * k))
    throw std::invalid_argument("y contains NaN or Inf");
}

template <typename T>
void check_weights(CheckedTarget<T>& ct, const py::handle& sw, int64_t n) {
  const py::array w = as_array(sw, "sample_weight", py::dtype::of<T>(), "iuf");
  if (w.ndim() != 1 || w.shape(0) != n)
    throw std::invalid_argument("sample_weight must have shape (" + std::to_string(n) +
                                ",), got " + shape_str(w));
  ct.w = w;
  const T* wp = static_cast<const T*>(w.data());
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(wp[i]) || wp[i] < T(0))
      throw std::invalid_argument("sample_weight must be finite and >= 0");
    s += double(wp[i]);
  }
  if (!(s > 0.0)) throw std::invalid_argument("sample_weight must have a positive sum");
  ct.t.weight = wp;
}
}  // namespace

void set_check_finite_default(bool on) { g_check_finite.store(on); }
bool check_finite_default() { return g_check_finite.load(); }
bool resolve_check_finite(const py::object& o) {
  if (o.is_none()) return check_finite_default();
  return o.cast<bool>();
}

template <typename T>
py::array check_x(const py::handle& Xo, int64_t in_dim, const char* name, bool check_finite) {
  py::array X = as_array(Xo, name, py::dtype::of<T>(), "biuf");
  if (X.ndim() != 2 || X.shape(1) != in_dim)
    throw std::invalid_argument(std::string(name) + " must have shape (n, " +
                                std::to_string(in_dim) + "), got " + shape_str(X));
  if (X.shape(0) < 1) throw std::invalid_argument(std::string(name) + " is empty (0 rows)");
  if (check_finite) {
    const T* p = static_cast<const T*>(X.data());
    if (!kernels().slots<T>().all_finite(p, X.shape(0) * X.shape(1)))
      throw std::invalid_argument(std::string(name) +
                                  " contains NaN or Inf (after conversion to " +
                                  dtype_name<T>() +
                                  "); fastbp.set_check_finite(False) skips this check");
  }
  return X;
}

template <typename T>
CheckedTarget<T> check_target(const py::handle& yo, const py::handle& sw, int64_t n, int64_t k,
                              LossKind kind) {
  CheckedTarget<T> ct;
  py::array y0 = to_ndarray(yo, "y");  // dtype decided below
  if (loss_info(kind).labels && y0.ndim() == 1) {
    check_labels(y0, n, k, kind);
    const py::array labels = as_array(y0, "y", py::dtype::of<int64_t>(), "iu");
    ct.y = labels;
    const int64_t* l = static_cast<const int64_t*>(labels.data());
    for (int64_t i = 0; i < n; ++i)
      if (l[i] < 0 || l[i] >= k)
        throw std::invalid_argument("y: label " + std::to_string(l[i]) + " at row " +
                                    std::to_string(i) + " is out of range [0, " +
                                    std::to_string(k) + ")");
    ct.t.labels = l;
  } else {
    check_values(ct, y0, n, k);
  }
  if (!sw.is_none()) check_weights(ct, sw, n);
  return ct;
}

template <typename T>
CheckedBatch<T> check_batch(int64_t in_dim, int64_t out_dim, const py::object& Xo,
                            const py::object& yo, const std::string& loss,
                            const py::object& loss_params, const py::object& sample_weight,
                            const py::object& cf) {
  CheckedBatch<T> b;
  b.la = parse_loss(loss, as_dict(loss_params, "loss_params"), b.pen);
  const py::array X = check_x<T>(Xo, in_dim, "X", resolve_check_finite(cf));
  b.X = X;
  b.rows = X.shape(0);
  b.ct = check_target<T>(yo, sample_weight, b.rows, out_dim, b.la.kind);
  b.x = static_cast<const T*>(X.data());
  return b;
}

void check_batch_memory(int64_t rows, int64_t row_elems, size_t elem_size) {
  const double bytes = double(rows) * double(row_elems) * double(elem_size);
  if (bytes < 1e9) return;  // (the common case, without building the message)
  check_memory(bytes, "a batch of " + std::to_string(rows) + " rows");
}

template <typename T>
py::array_t<T> view(T* data, int64_t offset, const std::vector<int64_t>& shape,
                    py::handle base) {
  std::vector<py::ssize_t> sh(shape.begin(), shape.end());
  std::vector<py::ssize_t> st(shape.size());
  py::ssize_t stride = sizeof(T);
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = stride;
    stride *= shape[i];
  }
  return py::array_t<T>(sh, st, data + offset, base);
}

template <typename T>
py::list views(T* arena, const std::vector<ParamInfo>& info, py::handle base) {
  py::list out;
  int64_t off = 0;
  for (const auto& p : info) {
    out.append(view(arena, off, p.shape, base));
    off += p.size();
  }
  return out;
}

template <typename T>
py::list new_arrays(const std::vector<ParamInfo>& info, std::vector<T*>& data) {
  py::list out;
  data.clear();
  for (const auto& p : info) {
    py::array_t<T> a(std::vector<py::ssize_t>(p.shape.begin(), p.shape.end()));
    data.push_back(a.mutable_data());
    out.append(a);
  }
  return out;
}

#define FASTBP_INST(T)                                                                       \
  template py::array check_x<T>(const py::handle&, int64_t, const char*, bool);              \
  template CheckedTarget<T> check_target<T>(const py::handle&, const py::handle&, int64_t,   \
                                            int64_t, LossKind);                              \
  template CheckedBatch<T> check_batch<T>(int64_t, int64_t, const py::object&,               \
                                          const py::object&, const std::string&,             \
                                          const py::object&, const py::object&,              \
                                          const py::object&);                                \
  template py::array_t<T> view<T>(T*, int64_t, const std::vector<int64_t>&,                  \
                                  py::handle);                                               \
  template py::list views<T>(T*, const std::vector<ParamInfo>&, py::handle);                 \
  template py::list new_arrays<T>(const std::vector<ParamInfo>&, std::vector<T*>&);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
