// Conversion and checking of sparse (CSR) input rows for the bindings: the three arrays of
// a CSR matrix (scipy.sparse's data, indices, indptr) for n rows of `cols` columns.
// Failures raise TypeError / ValueError naming the argument; nothing here touches a network.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "nn/layer.h"

namespace fastbp {

namespace py = pybind11;

// The converted arrays, kept alive for the duration of the call, and their view.
struct CheckedCsr {
  py::array data, indices, indptr;
  int64_t rows = 0;
  CsrRows view;
};

// data: 1-D reals (converted to T, finite when `check_finite`); indices: 1-D integers in
// [0, cols); indptr: 1-D integers, n + 1 >= 2 of them, from 0, non-decreasing, ending at the
// number of non-zeros. Indices are converted to int64.
template <typename T>
CheckedCsr check_csr(const py::handle& data, const py::handle& indices,
                     const py::handle& indptr, int64_t cols, bool check_finite);

}  // namespace fastbp
