// Products of a CSR sparse matrix with dense matrices, for a first dense layer fed sparse
// rows (docs/ENGINE.md, "Sparse input"). A is n x m in CSR form: row i holds the non-zeros
// values[indptr[i] .. indptr[i+1]) in the columns indices[...] (0 <= column < m); the
// dense matrices are row-major.
//   csr_matmul:   C (n x p)  = A · B,   B (m x p)
//   csr_t_matmul: C (m x p)  = Aᵀ · D,  D (n x p)
// csr_t_matmul with c_zero: C is already all zero (the products are added to it, and the
// m x p clearing is skipped). Work and memory are proportional to the non-zeros times p. Every element of C is summed
// in the order of A's non-zeros, whatever the thread count (rows of C are split across
// threads for A·B, column blocks of C for Aᵀ·D), so results are bitwise reproducible.
#pragma once
#include <cstdint>

namespace fastbp {

template <typename T>
void csr_matmul(T* C, const int64_t* indptr, const int64_t* indices, const T* values,
                int64_t n, const T* B, int64_t p);

template <typename T>
void csr_t_matmul(T* C, const int64_t* indptr, const int64_t* indices, const T* values,
                  int64_t n, int64_t m, const T* D, int64_t p, bool c_zero = false);

}  // namespace fastbp
