#include "bindings/convert_sparse.h"

#include <stdexcept>
#include <string>

#include "bindings/convert.h"
#include "core/kernel_set.h"

namespace fastbp {

namespace {

py::array vector_of(const py::handle& o, const char* name, const py::dtype& dt,
                    const char* kinds) {
  py::array a = as_array(o, name, dt, kinds);
  if (a.ndim() != 1)
    throw std::invalid_argument(std::string(name) + " must be 1-D, got shape " + shape_str(a));
  return a;
}

}  // namespace

template <typename T>
CheckedCsr check_csr(const py::handle& data, const py::handle& indices,
                     const py::handle& indptr, int64_t cols, bool check_finite) {
  CheckedCsr c;
  c.data = vector_of(data, "X.data", py::dtype::of<T>(), "biuf");
  c.indices = vector_of(indices, "X.indices", py::dtype::of<int64_t>(), "iu");
  c.indptr = vector_of(indptr, "X.indptr", py::dtype::of<int64_t>(), "iu");
  const int64_t nnz = c.data.shape(0);
  c.rows = c.indptr.shape(0) - 1;
  if (c.rows < 1) throw std::invalid_argument("X is empty (0 rows)");
  if (c.indices.shape(0) != nnz)
    throw std::invalid_argument("X.indices and X.data must have the same length");
  const int64_t* p = static_cast<const int64_t*>(c.indptr.data());
  const int64_t* j = static_cast<const int64_t*>(c.indices.data());
  if (p[0] != 0 || p[c.rows] != nnz)
    throw std::invalid_argument("X.indptr must start at 0 and end at the number of non-zeros");
  for (int64_t i = 0; i < c.rows; ++i)
    if (p[i + 1] < p[i]) throw std::invalid_argument("X.indptr must be non-decreasing");
  for (int64_t q = 0; q < nnz; ++q)
    if (j[q] < 0 || j[q] >= cols)
      throw std::invalid_argument("X.indices: column " + std::to_string(j[q]) +
                                  " is out of range [0, " + std::to_string(cols) + ")");
  const T* v = static_cast<const T*>(c.data.data());
  if (check_finite && !kernels().slots<T>().all_finite(v, nnz))
    throw std::invalid_argument("X contains NaN or Inf; fastbp.set_check_finite(False) skips "
                                "this check");
  c.view = CsrRows{p, j, v};
  return c;
}

template CheckedCsr check_csr<float>(const py::handle&, const py::handle&, const py::handle&,
                                     int64_t, bool);
template CheckedCsr check_csr<double>(const py::handle&, const py::handle&, const py::handle&,
                                      int64_t, bool);

}  // namespace fastbp
