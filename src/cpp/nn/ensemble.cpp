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
void run_member(MemberEpoch<T>& m, Gather<T>& g, const SharedData<T>& data, int64_t batch_size,
                bool shuffle) {
  try {
    gather(g, data, m.rows, m.n_rows);
    Target<T> t;
    t.values = data.t.values ? g.y.data() : nullptr;
    t.labels = data.t.labels ? g.labels.data() : nullptr;
    t.weight = data.t.weight ? g.w.data() : nullptr;
    m.value = m.net->fit_epoch(g.x.data(), t, m.n_rows, batch_size, shuffle, m.lrs, m.loss,
                               m.pen);
  } catch (const std::bad_alloc&) {
    m.error = "out of memory";
  } catch (const std::exception& e) {
    m.error = e.what();
  }
}

}  // namespace

template <typename T>
void ensemble_fit_epoch(std::vector<MemberEpoch<T>>& members, const SharedData<T>& data,
                        int64_t batch_size, bool shuffle, int nthreads) {
  const int64_t K = int64_t(members.size());
  if (K == 0) return;
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(nthreads, K)));
  int64_t most = 0;
  for (const auto& m : members) most = std::max(most, m.n_rows);
  std::vector<Gather<T>> bufs(static_cast<size_t>(threads));
  for (auto& g : bufs) {
    g.x.resize(size_t(most * data.d));
    if (data.t.values) g.y.resize(size_t(most * data.k));
    if (data.t.labels) g.labels.resize(size_t(most));
    if (data.t.weight) g.w.resize(size_t(most));
  }
  if (threads == 1) {
    for (auto& m : members) run_member(m, bufs[0], data, batch_size, shuffle);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t i = 0; i < K; ++i)
    run_member(members[size_t(i)], bufs[size_t(omp_get_thread_num())], data, batch_size,
               shuffle);
}

template void ensemble_fit_epoch<float>(std::vector<MemberEpoch<float>>&,
                                        const SharedData<float>&, int64_t, bool, int);
template void ensemble_fit_epoch<double>(std::vector<MemberEpoch<double>>&,
                                         const SharedData<double>&, int64_t, bool, int);

}  // namespace fastbp
