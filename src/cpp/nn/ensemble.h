// Ensemble training: one epoch of K independent member networks in one call.
//
// Member k trains on its data (or on the rows `rows` of it) exactly as
// members[k]->fit_epoch(X[rows], y[rows], w[rows], ...) would on its own (its own seed,
// shuffle stream, optimizer, loss parameters, batch size and learning rates): selected rows
// are gathered into a per-thread buffer and handed to Network::fit_epoch. With several members and several
// threads the members run in parallel, one member per thread (the kernels then stay
// single-threaded); otherwise they run one after the other with threaded kernels. Results are
// bitwise identical either way, since every kernel is bitwise identical for any thread count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/network.h"

namespace fastbp {

// A data set: X (N x d), and the targets as in Target<T> (values N x k, or labels N;
// optional weights N).
template <typename T>
struct SharedData {
  const T* X = nullptr;
  Target<T> t;
  int64_t N = 0, d = 0, k = 0;
};

template <typename T>
struct MemberEpoch {
  Network<T>* net = nullptr;
  const SharedData<T>* data = nullptr;  // d and k match the network's widths
  const int64_t* rows = nullptr;  // null: every row of data, in order; else indices in [0, N)
  int64_t n_rows = 0;             // >= 1 (data->N when rows is null)
  int64_t batch_size = 1;         // >= 1
  bool shuffle = true;
  LossArgs loss;
  PenaltyArgs pen;
  const double* lrs = nullptr;    // null, or one learning rate per step of this member
  double value = 0.0;             // out: the member's epoch loss
  std::string error;              // out: why the member could not train (empty: trained)
};

// Runs one epoch of every member. A member whose epoch throws records the message in its
// `error` (the others still train). Allocates the gather buffers before any training; a
// std::bad_alloc there leaves every member untouched.
template <typename T>
void ensemble_fit_epoch(std::vector<MemberEpoch<T>>& members, int nthreads);

}  // namespace fastbp
