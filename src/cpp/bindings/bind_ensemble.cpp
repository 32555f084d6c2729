// Binding of ensemble training, one epoch of K member networks in one call with the GIL
// released: _core.ensemble_fit_epoch (rows of one shared data set per member) and
// _core.ensemble_fit_each (a data set per member). fastbp.ensemble converts and validates the user's data
// (dtype, finiteness, duplicate rows, per-model lengths); the checks here keep direct calls
// from crashing the process: exact dtypes and shapes, labels and row indices in range.
//
// Locking: every member's mutex is taken, in address order (two concurrent calls over
// overlapping members cannot deadlock), after the GIL is released (see the locking rule in
// network_calls.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/convert.h"
#include "core/threading.h"
#include "nn/ensemble.h"
#include "nn/registry.h"

namespace py = pybind11;

namespace fastbp {

namespace {

// A C-contiguous, aligned array of exactly dtype D and `ndim` dimensions (no conversion).
template <typename D>
py::array exact(const py::handle& h, const std::string& name, py::ssize_t ndim) {
  if (!py::isinstance<py::array>(h))
    throw py::type_error(name + " must be a NumPy array");
  py::array a = py::reinterpret_borrow<py::array>(h);
  const auto need = py::array::c_style | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if (!a.dtype().is(py::dtype::of<D>()) || (a.flags() & need) != need)
    throw py::type_error(name + " must be an aligned C-contiguous array of dtype " +
                         std::string(py::str(py::dtype::of<D>())));
  if (a.ndim() != ndim)
    throw std::invalid_argument(name + " must have " + std::to_string(ndim) + " dimension(s)");
  return a;
}

template <typename T>
SharedData<T> shared_data(const py::handle& Xo, const py::handle& yo, const py::handle& wo,
                          int64_t d, int64_t k, LossKind kind, std::vector<py::array>& keep,
                          const std::string& at = "") {
  SharedData<T> s;
  py::array X = exact<T>(Xo, "X" + at, 2);
  s.N = X.shape(0);
  s.d = d;
  s.k = k;
  if (X.shape(1) != d || s.N < 1)
    throw std::invalid_argument("X must have shape (n >= 1, " + std::to_string(d) + ")");
  s.X = static_cast<const T*>(X.data());
  keep.push_back(X);
  if (loss_info(kind).labels && py::isinstance<py::array>(yo) &&
      py::array(py::reinterpret_borrow<py::array>(yo)).ndim() == 1) {
    py::array y = exact<int64_t>(yo, "y" + at, 1);
    if (y.shape(0) != s.N) throw std::invalid_argument("y must have one label per row of X");
    const int64_t* l = static_cast<const int64_t*>(y.data());
    for (int64_t i = 0; i < s.N; ++i)
      if (l[i] < 0 || l[i] >= k)
        throw std::invalid_argument("y: label " + std::to_string(l[i]) + " out of range");
    s.t.labels = l;
    keep.push_back(y);
  } else {
    py::array y = exact<T>(yo, "y" + at, 2);
    if (y.shape(0) != s.N || y.shape(1) != k)
      throw std::invalid_argument("y must have shape (n, " + std::to_string(k) + ")");
    s.t.values = static_cast<const T*>(y.data());
    keep.push_back(y);
  }
  if (!wo.is_none()) {
    py::array w = exact<T>(wo, "sample_weight" + at, 1);
    if (w.shape(0) != s.N)
      throw std::invalid_argument("sample_weight must have one weight per row of X");
    s.t.weight = static_cast<const T*>(w.data());
    keep.push_back(w);
  }
  return s;
}

// The member networks, all of dtype T and distinct; `order` gets them in address order.
template <typename T>
std::vector<MemberEpoch<T>> member_list(const py::list& nets, std::vector<Network<T>*>& order) {
  std::vector<MemberEpoch<T>> members(nets.size());
  for (size_t i = 0; i < nets.size(); ++i) {
    if (!py::isinstance<Network<T>>(nets[i]))
      throw py::type_error("nets must all be networks of the same dtype");
    members[i].net = nets[i].cast<Network<T>*>();
    order.push_back(members[i].net);
  }
  std::sort(order.begin(), order.end(), std::less<Network<T>*>());
  if (std::adjacent_find(order.begin(), order.end()) != order.end())
    throw std::invalid_argument("the member networks must be distinct objects");
  return members;
}

// Trains the members with the GIL released and every member's mutex held; returns the
// epoch losses, or raises with every member's failure.
template <typename T>
py::array_t<double> run_members(std::vector<MemberEpoch<T>>& members,
                                const std::vector<Network<T>*>& order) {
  const int nthreads = get_num_threads();
  std::string oom;
  {
    py::gil_scoped_release release;
    std::vector<std::unique_lock<std::mutex>> locks;
    for (Network<T>* n : order) locks.emplace_back(n->mutex());
    try {
      ensemble_fit_epoch(members, nthreads);
    } catch (const std::bad_alloc&) {
      oom = "out of memory for the ensemble's gather buffers";
    }
  }
  if (!oom.empty()) raise_py(PyExc_MemoryError, oom);
  std::string errors;
  py::array_t<double> out(static_cast<py::ssize_t>(members.size()));
  double* o = out.mutable_data();
  for (size_t i = 0; i < members.size(); ++i) {
    o[i] = members[i].value;
    if (!members[i].error.empty())
      errors += "member " + std::to_string(i) + ": " + members[i].error + "; ";
  }
  if (!errors.empty()) throw std::runtime_error("ensemble training failed: " + errors);
  return out;
}

// l1 / l2: float64 arrays with one value per member, finite and >= 0.
template <typename T>
void penalties(std::vector<MemberEpoch<T>>& members, const py::handle& l1, const py::handle& l2) {
  py::array p1 = exact<double>(l1, "l1", 1), p2 = exact<double>(l2, "l2", 1);
  if (size_t(p1.shape(0)) != members.size() || size_t(p2.shape(0)) != members.size())
    throw std::invalid_argument("l1 and l2 need one value per member network");
  const double* a1 = static_cast<const double*>(p1.data());
  const double* a2 = static_cast<const double*>(p2.data());
  for (size_t i = 0; i < members.size(); ++i) {
    if (!(a1[i] >= 0.0 && a2[i] >= 0.0 && std::isfinite(a1[i]) && std::isfinite(a2[i])))
      throw std::invalid_argument("l1 and l2 must be finite and >= 0");
    members[i].pen.l1 = a1[i];
    members[i].pen.l2 = a2[i];
  }
}

// Fills members[i].rows / n_rows / lrs from subsets[i] and lrs[i] (checked).
template <typename T>
void member_rows(MemberEpoch<T>& m, const py::handle& sub, const py::handle& lr, int64_t N,
                 int64_t batch_size, size_t i, std::vector<py::array>& keep) {
  const std::string where = "[" + std::to_string(i) + "]";
  py::array s = exact<int64_t>(sub, "subsets" + where, 1);
  m.n_rows = s.shape(0);
  if (m.n_rows < 1) throw std::invalid_argument("subsets" + where + " is empty");
  m.rows = static_cast<const int64_t*>(s.data());
  bool every_row = m.n_rows == N;  // 0, 1, ..., N-1: the data itself, not a gathered copy
  for (int64_t r = 0; r < m.n_rows; ++r) {
    if (m.rows[r] < 0 || m.rows[r] >= N)
      throw std::invalid_argument("subsets" + where + " holds an index out of range [0, " +
                                  std::to_string(N) + ")");
    every_row = every_row && m.rows[r] == r;
  }
  if (every_row) m.rows = nullptr;
  keep.push_back(s);
  if (lr.is_none()) return;
  py::array a = exact<double>(lr, "lrs" + where, 1);
  const int64_t bs = std::min(batch_size, m.n_rows);
  if (a.shape(0) != (m.n_rows + bs - 1) / bs)
    throw std::invalid_argument("lrs" + where + " must hold one learning rate per step");
  m.lrs = static_cast<const double*>(a.data());
  for (int64_t j = 0; j < a.shape(0); ++j)
    if (!(m.lrs[j] >= 0.0) || !std::isfinite(m.lrs[j]))
      throw std::invalid_argument("lrs" + where + " must be finite and >= 0");
  keep.push_back(a);
}

template <typename T>
py::array_t<double> fit_epoch_impl(const py::list& nets, const py::handle& X, const py::handle& y,
                                   const std::string& loss, double delta, const py::handle& l1,
                                   const py::handle& l2, const py::handle& w,
                                   const py::list& subsets, int64_t batch_size, bool shuffle,
                                   const py::list& lrs) {
  const size_t K = nets.size();
  if (subsets.size() != K || lrs.size() != K)
    throw std::invalid_argument("subsets and lrs need one entry per member network");
  if (batch_size < 1) throw std::invalid_argument("batch_size must be >= 1");
  if (!(delta > 0.0) || !std::isfinite(delta)) throw std::invalid_argument("delta must be > 0");
  std::vector<Network<T>*> order;
  std::vector<MemberEpoch<T>> members = member_list<T>(nets, order);
  const int64_t d = members[0].net->in_dim(), k = members[0].net->out_dim();
  for (auto& m : members)
    if (m.net->in_dim() != d || m.net->out_dim() != k)
      throw std::invalid_argument("the member networks must share their input and output widths");
  LossArgs la;
  la.kind = loss_from_name(loss);
  la.delta = delta;
  std::vector<py::array> keep;
  const SharedData<T> data = shared_data<T>(X, y, w, d, k, la.kind, keep);
  penalties(members, l1, l2);
  for (size_t i = 0; i < K; ++i) {
    members[i].data = &data;
    members[i].loss = la;
    members[i].batch_size = batch_size;
    members[i].shuffle = shuffle;
    member_rows(members[i], subsets[i], lrs[i], data.N, batch_size, i, keep);
  }
  return run_members(members, order);
}

// Every member on its own data set (no row selection, no per-step rates).
template <typename T>
py::array_t<double> fit_each_impl(const py::list& nets, const py::list& Xs, const py::list& ys,
                                  const py::list& ws, const py::list& losses,
                                  const py::handle& deltas, const py::handle& l1,
                                  const py::handle& l2, const py::list& batch_sizes,
                                  const py::list& shuffles) {
  const size_t K = nets.size();
  for (const py::list* l : {&Xs, &ys, &ws, &losses, &batch_sizes, &shuffles})
    if (l->size() != K) throw std::invalid_argument("every list needs one entry per member");
  std::vector<Network<T>*> order;
  std::vector<MemberEpoch<T>> members = member_list<T>(nets, order);
  penalties(members, l1, l2);
  py::array dl = exact<double>(deltas, "deltas", 1);
  if (size_t(dl.shape(0)) != K) throw std::invalid_argument("deltas needs one value per member");
  const double* dp = static_cast<const double*>(dl.data());
  std::vector<py::array> keep;
  std::vector<SharedData<T>> data(K);
  for (size_t i = 0; i < K; ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    MemberEpoch<T>& m = members[i];
    m.loss.kind = loss_from_name(losses[i].cast<std::string>());
    m.loss.delta = dp[i];
    if (!(dp[i] > 0.0) || !std::isfinite(dp[i])) throw std::invalid_argument("delta must be > 0");
    data[i] = shared_data<T>(Xs[i], ys[i], ws[i], m.net->in_dim(), m.net->out_dim(),
                             m.loss.kind, keep, at);
    m.data = &data[i];
    m.n_rows = data[i].N;
    m.batch_size = to_pos_int(batch_sizes[i], "batch_sizes" + at);
    m.shuffle = shuffles[i].cast<bool>();
  }
  return run_members(members, order);
}

}  // namespace

void bind_ensemble(py::module_& m) {
  m.def(
      "ensemble_fit_epoch",
      [](const py::list& nets, const py::handle& X, const py::handle& y, const std::string& loss,
         double delta, const py::handle& l1, const py::handle& l2, const py::handle& w,
         const py::list& subsets, int64_t batch_size, bool shuffle, const py::list& lrs) {
        if (nets.size() == 0) throw std::invalid_argument("nets is empty");
        if (py::isinstance<Network<float>>(nets[0]))
          return fit_epoch_impl<float>(nets, X, y, loss, delta, l1, l2, w, subsets, batch_size,
                                       shuffle, lrs);
        if (py::isinstance<Network<double>>(nets[0]))
          return fit_epoch_impl<double>(nets, X, y, loss, delta, l1, l2, w, subsets, batch_size,
                                        shuffle, lrs);
        throw py::type_error("nets must hold Network32 or Network64 objects");
      },
      py::arg("nets"), py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("delta"),
      py::arg("l1"), py::arg("l2"), py::arg("sample_weight"), py::arg("subsets"),
      py::arg("batch_size"), py::arg("shuffle"), py::arg("lrs"),
      "One epoch of every member network on its rows of (X, y); returns the K epoch losses. "
      "Member i trains as nets[i].fit_epoch(X[subsets[i]], ...) would alone.");
  m.def(
      "ensemble_fit_each",
      [](const py::list& nets, const py::list& Xs, const py::list& ys, const py::list& ws,
         const py::list& losses, const py::handle& deltas, const py::handle& l1,
         const py::handle& l2, const py::list& batch_sizes, const py::list& shuffles) {
        if (nets.size() == 0) throw std::invalid_argument("nets is empty");
        if (py::isinstance<Network<float>>(nets[0]))
          return fit_each_impl<float>(nets, Xs, ys, ws, losses, deltas, l1, l2, batch_sizes,
                                      shuffles);
        if (py::isinstance<Network<double>>(nets[0]))
          return fit_each_impl<double>(nets, Xs, ys, ws, losses, deltas, l1, l2, batch_sizes,
                                       shuffles);
        throw py::type_error("nets must hold Network32 or Network64 objects");
      },
      py::arg("nets"), py::arg("Xs"), py::arg("ys"), py::arg("sample_weights"),
      py::arg("losses"), py::arg("deltas"), py::arg("l1"), py::arg("l2"),
      py::arg("batch_sizes"), py::arg("shuffles"),
      "One epoch of every member network on its own data set; returns the K epoch losses. "
      "Member i trains as nets[i].fit_epoch(Xs[i], ys[i], ...) would alone.");
}

}  // namespace fastbp
