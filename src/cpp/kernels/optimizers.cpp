#include "kernels/optimizers.h"

#include "core/kernel_set.h"
#include "core/team.h"
#include "core/threading.h"

#ifdef FASTBP_HAVE_OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace fastbp {

template <typename T>
std::vector<std::string> OptState<T>::names() const {
  std::vector<std::string> out;
  for (StateSlot s : slots) out.emplace_back(kStateSlotNames[static_cast<int>(s)]);
  return out;
}

template <typename T>
OptSlots<T> OptState<T>::pointers() {
  OptSlots<T> out;
  for (size_t i = 0; i < slots.size(); ++i) out.p[static_cast<int>(slots[i])] = arrays[i].data();
  return out;
}

std::vector<std::pair<StateSlot, double>> opt_state_layout(const OptConfig& c) {
  std::vector<std::pair<StateSlot, double>> out;
  for (const StateDef& d : opt_info(c.kind).state) {
    if (d.kept == nullptr) break;
    if (d.kept(c)) out.emplace_back(d.slot, d.init ? c.*d.init : 0.0);
  }
  return out;
}

template <typename T>
double clip_gradients(T* g, int64_t count, const OptConfig& c) {
  if (c.clip_value > 0.0) {
    const T v = T(c.clip_value);
    for (int64_t i = 0; i < count; ++i) g[i] = std::min(std::max(g[i], -v), v);
  }
  double norm = 0.0;
  if (c.clip_norm > 0.0) {
    double ss = 0.0;
    for (int64_t i = 0; i < count; ++i) ss += double(g[i]) * double(g[i]);
    norm = std::sqrt(ss);
    const double coef = c.clip_norm / (norm + 1e-6);
    if (coef < 1.0) {
      const T s = T(coef);
      for (int64_t i = 0; i < count; ++i) g[i] *= s;
    }
  }
  return norm;
}

template <typename T>
void opt_range(OptStepFn<T> kernel, T* p, T* g, int64_t n, const OptConfig& c,
               const OptSlots<T>& st, int64_t step) {
  const int64_t body = n / kOptTail * kOptTail, rest = n - body;
  if (body > 0) kernel(p, g, body, c, st, step);
  if (rest == 0) return;
  // (zeros in the padding: every update rule maps them to finite values; no alignas: ASan's
  // fake stack aligns to 32 bytes only)
  T tp[kOptTail] = {}, tg[kOptTail] = {}, ts[kNumStateSlots][kOptTail] = {};
  const OptSlots<T> at = st.offset(body);
  OptSlots<T> tmp;
  std::copy(p + body, p + n, tp);
  std::copy(g + body, g + n, tg);
  for (int s = 0; s < kNumStateSlots; ++s)
    if (at.p[s]) {
      std::copy(at.p[s], at.p[s] + rest, ts[s]);
      tmp.p[s] = ts[s];
    }
  kernel(tp, tg, kOptTail, c, tmp, step);
  std::copy(tp, tp + rest, p + body);
  std::copy(tg, tg + rest, g + body);
  for (int s = 0; s < kNumStateSlots; ++s)
    if (at.p[s]) std::copy(ts[s], ts[s] + rest, at.p[s]);
}

int opt_region_threads(int64_t n, bool may_open_region) {
#ifdef FASTBP_HAVE_OPENMP
  return (may_open_region && n >= kOptRegionMinParams && !omp_in_parallel()) ? get_num_threads()
                                                                             : 1;
#else
  (void)n;
  (void)may_open_region;
  return 1;
#endif
}

// One flat pass over the arena, with the widest vectors the active ISA allows; large arenas
// are split into contiguous ranges over the threads, and in a team (core/team.h) every arena
// is (elementwise: the result is the same for any thread count).
template <typename T>
void opt_step(T* p, T* g, int64_t n, const OptConfig& c, OptState<T>& st, bool may_open_region,
              bool vector_tail, bool shared) {
  const KernelSlots<T>& k = kernels().slots<T>();
  const int kind = static_cast<int>(c.kind);
  // (a team's shared parameters: the streaming form where the kernel set has one)
  const OptStepFn<T> kernel = shared && current_team() && k.opt_step_shared[kind]
                                  ? k.opt_step_shared[kind]
                                  : k.opt_step[kind];
  const int64_t step = st.step + 1;
  const OptSlots<T> slots = st.pointers();
  // this thread's contiguous range, on 64-element (cache-line) boundaries
  const auto part = [&](const Team& share) {
    int64_t b, e;
    share.rows(n, 64, b, e);
    if (e <= b) return;
    if (vector_tail)
      opt_range(kernel, p + b, g + b, e - b, c, slots.offset(b), step);
    else
      kernel(p + b, g + b, e - b, c, slots.offset(b), step);
  };
  if (const Team* team = current_team()) {
    part(*team);
    team->sync();  // (every thread has read st.step)
    if (team->lead()) st.step = step;
    return;
  }
  st.step = step;
#ifdef FASTBP_HAVE_OPENMP
  const int nthreads = opt_region_threads(n, may_open_region);
  if (nthreads > 1) {
#pragma omp parallel num_threads(nthreads)
    part(Team{omp_get_thread_num(), omp_get_num_threads()});
    return;
  }
#endif
  if (vector_tail)
    opt_range(kernel, p, g, n, c, slots, step);
  else
    kernel(p, g, n, c, slots, step);
}

#define FASTBP_INST(T)                                                                 \
  template struct OptState<T>;                                                         \
  template double clip_gradients<T>(T*, int64_t, const OptConfig&);                    \
  template void opt_step<T>(T*, T*, int64_t, const OptConfig&, OptState<T>&, bool, bool, bool); \
  template void opt_range<T>(OptStepFn<T>, T*, T*, int64_t, const OptConfig&,               \
                             const OptSlots<T>&, int64_t);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
