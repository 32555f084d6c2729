#include "nn/ensemble.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <new>

namespace fastbp {

namespace {

// One thread's gather buffers, sized for the largest subset.
template <typename T>
struct Gather {
  std::vector<T> x, y, w;
  std::vector<int64_t> labels;
};

template <typename T>
void gather(Gather<T>& g, const SharedData<T>& data, const int64_t* rows, int64_t n) {
  const int64_t d = data.d, k = data.k;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t src = rows[r];
    std::copy(data.X + src * d, data.X + (src + 1) * d, g.x.data() + r * d);
    if (data.t.values)
      std::copy(data.t.values + src * k, data.t.values + (src + 1) * k, g.y.data() + r * k);
    if (data.t.labels) g.labels[size_t(r)] = data.t.labels[src];
    if (data.t.weight) g.w[size_t(r)] = data.t.weight[src];
  }
}

template <typename T>
void run_member(MemberEpoch<T>& m, Gather<T>& g) {
  try {
    const SharedData<T>& data = *m.data;
    if (!m.rows) {
      m.value = m.net->fit_epoch(data.X, data.t, data.N, m.batch_size, m.shuffle, m.lrs, m.loss,
                                 m.pen);
      return;
    }
    gather(g, data, m.rows, m.n_rows);
    Target<T> t;
    t.values = data.t.values ? g.y.data() : nullptr;
    t.labels = data.t.labels ? g.labels.data() : nullptr;
    t.weight = data.t.weight ? g.w.data() : nullptr;
    m.value = m.net->fit_epoch(g.x.data(), t, m.n_rows, m.batch_size, m.shuffle, m.lrs, m.loss,
                               m.pen);
  } catch (const std::bad_alloc&) {
    m.error = "out of memory";
  } catch (const std::exception& e) {
    m.error = e.what();
  }
}

}  // namespace

template <typename T>
void ensemble_fit_epoch(std::vector<MemberEpoch<T>>& members, int nthreads) {
  const int64_t K = int64_t(members.size());
  if (K == 0) return;
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(nthreads, K)));
  int64_t x = 0, y = 0, n = 0;  // the largest gather of any member (elements)
  for (const auto& m : members) {
    if (!m.rows) continue;
    x = std::max(x, m.n_rows * m.data->d);
    if (m.data->t.values) y = std::max(y, m.n_rows * m.data->k);
    n = std::max(n, m.n_rows);
  }
  std::vector<Gather<T>> bufs(static_cast<size_t>(threads));
  for (auto& g : bufs) {
    g.x.resize(size_t(x));
    g.y.resize(size_t(y));
    g.labels.resize(size_t(n));
    g.w.resize(size_t(n));
  }
  if (threads == 1) {
    for (auto& m : members) run_member(m, bufs[0]);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t i = 0; i < K; ++i)
    run_member(members[size_t(i)], bufs[size_t(omp_get_thread_num())]);
}

template void ensemble_fit_epoch<float>(std::vector<MemberEpoch<float>>&, int);
template void ensemble_fit_epoch<double>(std::vector<MemberEpoch<double>>&, int);

}  // namespace fastbp
