// Network methods for sparse (CSR) input rows: the first dense layer multiplies over the
// non-zeros (kernels/sparse.h), every other layer runs as for dense input. Memory is
// proportional to the non-zeros of a mini-batch (rows are gathered in CSR form, never
// densified).
#include <algorithm>
#include <stdexcept>

#include "nn/network.h"

namespace fastbp {

namespace {

void require_dense_first(bool ok) {
  if (!ok)
    throw std::invalid_argument("sparse input needs a network whose first layer is dense");
}

// Rows [r, r + m) of x: the row pointers are absolute offsets into indices / values.
CsrRows row_slice(const CsrRows& x, int64_t r) {
  CsrRows s = x;
  s.indptr = x.indptr + r;
  return s;
}

}  // namespace

template <typename T>
void Network<T>::predict_csr(const CsrRows& x, T* out, int64_t n) {
  BusyMark busy(busy_pid_);
  require_dense_first(first_dense_);
  const int64_t chunk = std::max(reserved_, predict_budget_rows());
  reserve(std::min(n, chunk));
  Ctx ctx;
  ctx.training = false;
  for (int64_t r = 0; r < n; r += chunk) {
    const int64_t m = std::min(chunk, n - r);
    ctx.csr = row_slice(x, r);
    body_.forward(nullptr, out + r * out_dim(), m, ctx);
  }
}

template <typename T>
double Network<T>::loss_and_gradients_csr(const CsrRows& x, const Target<T>& t, int64_t n,
                                          const LossArgs& loss, const PenaltyArgs& pen) {
  BusyMark busy(busy_pid_);
  require_dense_first(first_dense_);
  return forward_backward(nullptr, t, n, loss, pen, x);
}

// A fit_epoch_csr step clears only the rows of the first layer's weight gradient that its
// non-zeros touched, when nothing else wrote the whole gradient (an unfolded penalty pass, a
// coupled weight decay): the next step's backward then adds its products to a gradient that
// is already zero, instead of clearing all in_dim x out rows first (5000 x 64 on a TF-IDF-like
// net: a fifth of its step). Only within one fit_epoch_csr call: its first step clears all.
template <typename T>
double Network<T>::fit_epoch_csr(const CsrRows& x, const Target<T>& t, int64_t N,
                                 int64_t batch_size, bool shuffle, const double* lrs,
                                 const LossArgs& loss, const PenaltyArgs& pen) {
  BusyMark busy(busy_pid_);
  require_dense_first(first_dense_);
  if (batch_size < 1) throw std::invalid_argument("batch_size must be >= 1");
  batch_size = std::min(batch_size, N);
  if (has_batchnorm_ && (batch_size < 2 || N % batch_size == 1))
    throw std::invalid_argument(
        "batchnorm: the last mini-batch would hold 1 sample; choose another batch_size");
  const int64_t k = out_dim();
  // Allocate everything first (a std::bad_alloc leaves the network as it was): the gather
  // buffers hold as many non-zeros as any batch_size rows can have.
  int64_t max_row = 0;
  for (int64_t i = 0; i < N; ++i) max_row = std::max(max_row, x.indptr[i + 1] - x.indptr[i]);
  const int64_t max_nnz = std::max<int64_t>(1, std::min(x.indptr[N], batch_size * max_row));
  perm_.resize(size_t(N));
  csr_ptr_.resize(size_t(batch_size + 1));
  csr_idx_.resize(size_t(max_nnz));
  csr_val_.resize(size_t(max_nnz));
  if (t.values) yb_.resize(size_t(batch_size * k));
  if (t.labels) lb_.resize(size_t(batch_size));
  if (t.weight) wb_.resize(size_t(batch_size));
  reserve(batch_size);
  epoch_order(N, shuffle);
  const double saved_lr = opt_.lr;
  double total = 0.0;
  bool grad_zero = false;  // (see above)
  int64_t step = 0;
  for (int64_t start = 0; start < N; start += batch_size, ++step) {
    const int64_t nb = std::min(batch_size, N - start);
    const Target<T> tb = gather_csr(x, t, start, nb);
    if (lrs) opt_.lr = lrs[step];
    total += csr_step(tb, nb, loss, pen, grad_zero) * double(nb);
  }
  if (lrs) opt_.lr = saved_lr;
  return total / double(N);
}

template <typename T>
Target<T> Network<T>::gather_csr(const CsrRows& x, const Target<T>& t, int64_t start,
                                 int64_t nb) {
  const int64_t k = out_dim();
  const T* xv = static_cast<const T*>(x.values);
  csr_ptr_[0] = 0;
  for (int64_t r = 0; r < nb; ++r) {
    const int64_t src = perm_[size_t(start + r)];
    const int64_t b = x.indptr[src], e = x.indptr[src + 1], at = csr_ptr_[size_t(r)];
    std::copy(x.indices + b, x.indices + e, csr_idx_.data() + at);
    std::copy(xv + b, xv + e, csr_val_.data() + at);
    csr_ptr_[size_t(r + 1)] = at + (e - b);
    if (t.values) std::copy(t.values + src * k, t.values + (src + 1) * k, yb_.data() + r * k);
    if (t.labels) lb_[size_t(r)] = t.labels[src];
    if (t.weight) wb_[size_t(r)] = t.weight[src];
  }
  Target<T> tb;
  tb.values = t.values ? yb_.data() : nullptr;
  tb.labels = t.labels ? lb_.data() : nullptr;
  tb.weight = t.weight ? wb_.data() : nullptr;
  return tb;
}

// One step on the gathered batch; grad_zero: in, the first layer's weight gradient is all
// zero; out, it is again (its touched rows cleared after the update), or unknown (false).
template <typename T>
double Network<T>::csr_step(const Target<T>& tb, int64_t nb, const LossArgs& loss,
                            const PenaltyArgs& pen, bool& grad_zero) {
  const CsrRows xb{csr_ptr_.data(), csr_idx_.data(), csr_val_.data(), grad_zero};
  const double value = backward_and_update(pen, kSoloTeam, true, [&](const PenaltyArgs& p) {
    return forward_backward(nullptr, tb, nb, loss, p, xb);
  });
  grad_zero = !gradient_written_whole(pen);
  if (grad_zero) {  // (the first layer's W is the arena's first parameter: in x out)
    const int64_t out = pinfo_.front().shape.back();
    T* dW = grads_.data();
    for (int64_t q = 0; q < csr_ptr_[size_t(nb)]; ++q)
      std::fill(dW + csr_idx_[size_t(q)] * out, dW + (csr_idx_[size_t(q)] + 1) * out, T(0));
  }
  return value;
}

#define FASTBP_INST(T)                                                                       \
  template void Network<T>::predict_csr(const CsrRows&, T*, int64_t);                        \
  template double Network<T>::loss_and_gradients_csr(const CsrRows&, const Target<T>&,       \
                                                     int64_t, const LossArgs&,               \
                                                     const PenaltyArgs&);                    \
  template double Network<T>::fit_epoch_csr(const CsrRows&, const Target<T>&, int64_t,       \
                                            int64_t, bool, const double*, const LossArgs&,   \
                                            const PenaltyArgs&);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
