// Ensemble training: one epoch of K independent member networks in one call.
//
// Member k trains on the rows subset_k of a shared data set exactly as
// members[k]->fit_epoch(X[subset_k], y[subset_k], w[subset_k], ...) would on its own (its own
// seed, shuffle stream, optimizer, loss parameters and learning rates): the rows are gathered
// into a per-thread buffer and handed to Network::fit_epoch. With several members and several
// threads the members run in parallel, one member per thread (the kernels then stay
// single-threaded); otherwise they run one after the other with threaded kernels. Results are
// bitwise identical either way, since every kernel is bitwise identical for any thread count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/network.h"

namespace fastbp {

template <typename T>
struct MemberEpoch {
  Network<T>* net = nullptr;
  const int64_t* rows = nullptr;  // indices into the shared data, each in [0, N)
  int64_t n_rows = 0;             // >= 1
  LossArgs loss;
  PenaltyArgs pen;
  const double* lrs = nullptr;    // null, or one learning rate per step of this member
  double value = 0.0;             // out: the member's epoch loss
  std::string error;              // out: why the member could not train (empty: trained)
};

// The shared data: X (N x d), and the targets as in Target<T> (values N x k, or labels N;
// optional weights N).
template <typename T>
struct SharedData {
  const T* X = nullptr;
  Target<T> t;
  int64_t N = 0, d = 0, k = 0;
};

// Runs one epoch of every member. A member whose epoch throws records the message in its
// `error` (the others still train). Allocates the gather buffers before any training; a
// std::bad_alloc there leaves every member untouched.
template <typename T>
void ensemble_fit_epoch(std::vector<MemberEpoch<T>>& members, const SharedData<T>& data,
                        int64_t batch_size, bool shuffle, int nthreads);

}  // namespace fastbp
