// The engine's layer abstraction. A layer maps x (n x in_dim) to y (n x out_dim); backward
// takes dy (n x out_dim, which it may overwrite) and writes its parameter gradients
// (overwriting) and, when dx != nullptr, dx (n x in_dim).
// Layers own their workspace (grown in reserve(), never on the hot path) and take pointers
// into the network's flat parameter / gradient / buffer arenas in bind(), in the order and
// sizes of their kind's row of the layer table (nn/layer_table.h), which alone knows shapes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/team.h"
#include "kernels/activations.h"

namespace fastbp {

// A parsed layer spec (docs/ENGINE.md), free of Python.
struct LayerSpec {
  std::string type;        // a layer_kinds() name
  int64_t in = 0, out = 0; // dims (dim-preserving layers have in == out)
  Act act = Act::identity;
  double alpha = 0.0;      // leaky_relu slope / elu alpha
  double rate = 0.0;       // dropout
  double eps = 1e-5, momentum = 0.1;  // norms
  std::vector<LayerSpec> children;    // residual block
};

// One parameter (or buffer) array of the arena layout.
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  bool penalised = false;  // L1/L2 apply (dense weights)
  int64_t size() const {
    int64_t s = 1;
    for (auto d : shape) s *= d;
    return s;
  }
};

// Hands out consecutive slices of the arenas, sized by the layout (layer_shapes()).
template <typename T>
struct ArenaCursor {
  T* params;
  T* grads;
  T* buffers;
  const ParamInfo* pinfo;  // the next parameter's layout entry
  const ParamInfo* binfo;  // the next buffer's layout entry
  // The next parameter; its gradient goes to `grad`.
  T* param(T*& grad) {
    const int64_t n = (pinfo++)->size();
    T* p = params;
    grad = grads;
    params += n;
    grads += n;
    return p;
  }
  T* buffer() {
    const int64_t n = (binfo++)->size();
    T* b = buffers;
    buffers += n;
    return b;
  }
};

// Sparse input rows (CSR, kernels/sparse.h) in the network's dtype; values == nullptr: the
// input is dense. Only the first layer (index 0, a dense layer) reads them, and then x is
// null; that layer computes no dx.
struct CsrRows {
  const int64_t* indptr = nullptr;
  const int64_t* indices = nullptr;
  const void* values = nullptr;
  // The first layer's weight gradient is already all zero (fit_epoch_csr after its first
  // step): its backward adds the products without clearing the whole gradient first.
  bool grad_zero = false;
};

// A thread's part of a step whose team shares the batch by rows (nn/network_rows.cpp): its
// rows [r0, r1) of the forward and of dz / dx, and the parameter gradients whose first
// element lies in [g0, g1) of the gradient arena (grads_part).
struct RowsPart {
  int64_t r0 = 0, r1 = 0;
  const void* g0 = nullptr;
  const void* g1 = nullptr;
};

// The rows [i0, i1) of a rows x cols block at `base` (row-major, in an arena) whose first
// element lies in part's [g0, g1); whether `p` does.
template <typename T>
inline bool owns(const RowsPart& part, const T* p) {
  const void* v = p;
  return v >= part.g0 && v < part.g1;
}
template <typename T>
inline void rows_in_part(const RowsPart& part, const T* base, int64_t rows, int64_t cols,
                         int64_t& i0, int64_t& i1) {
  const auto first_row = [&](const void* g) {
    const int64_t d = static_cast<const T*>(g) - base;  // (elements from base)
    if (d <= 0) return int64_t(0);
    const int64_t r = (d + cols - 1) / cols;
    return r < rows ? r : rows;
  };
  i0 = first_row(part.g0);
  i1 = first_row(part.g1);
}

struct Ctx {
  bool training = false;
  uint64_t seed = 0;
  uint64_t step = 0;  // training forward number (dropout stream)
  bool update_state = true;  // training: BatchNorm updates its running statistics
  CsrRows csr;        // sparse input of the first layer
  // The thread team running this step (core/team.h), or null (one thread). Only layers whose
  // team_capable() is true are ever run by a team.
  const Team* team = nullptr;
  // The fused update of this step (nn/fused_update.h FusedUpdate<T> of the network's dtype),
  // or null: then backward writes the gradients and the optimizer runs after it. Only set for
  // networks of dense layers (on a team, every thread updates its own blocks).
  const void* fused = nullptr;
  // A batch of one row of a network that computes its wide dense weights by row units in
  // training (nn/fused_update.h), whether or not the update is fused.
  bool row_units = false;
  // A step shared by batch rows (nn/network_rows.cpp), or null. Set only for networks of
  // dense layers, with team null: forward computes this thread's rows, backward its rows of
  // dz = dy * f' and of dx but no parameter gradient (grads_part forms them afterwards).
  const RowsPart* rows = nullptr;
};

// How a team splits a layer's sweeps: rows on blocks of kTeamRowAlign, the columns of a row
// on blocks of kTeamColAlign (whole cache lines).
inline constexpr int64_t kTeamRowAlign = 4;
inline constexpr int64_t kTeamColAlign = 64;

// This thread's part [b, e) of n rows (align kTeamRowAlign) or columns (kTeamColAlign) in
// ctx's team; all of them off a team.
inline void team_part(const Ctx& ctx, int64_t n, int64_t align, int64_t& b, int64_t& e) {
  b = 0;
  e = n;
  if (ctx.team) ctx.team->rows(n, align, b, e);
}
// The team meets (after a sweep whose results another thread reads); nothing off a team.
inline void team_meet(const Ctx& ctx) {
  if (ctx.team) ctx.team->sync();
}

// A dense layer as a chain step sees it (nn/network_chain.cpp): y = f(x W + b) with its
// parameters, their gradients, the pre-activations z it keeps (null when its activation's
// backward does not read them), and the output y and its gradient dy the chain gives it.
template <typename T>
struct ChainLayer {
  const T* W = nullptr;
  const T* b = nullptr;
  T *dW = nullptr, *db = nullptr, *z = nullptr, *y = nullptr, *dy = nullptr;
  int64_t in = 0, out = 0;
  Act act = Act::identity;
  T alpha = T(0);
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  int64_t in_dim = 0, out_dim = 0;
  int index = 0;  // position in a pre-order walk of the spec
  // Take this layer's slices of the arenas (its parameters, then its buffers).
  virtual void bind(ArenaCursor<T>& arenas) {}
  virtual void reserve(int64_t n) {}
  // Whether every thread of a team may call forward/backward (ctx.team set), splitting the
  // work as core/team.h says.
  virtual bool team_capable() const { return false; }
  virtual void forward(const T* x, T* y, int64_t n, const Ctx& ctx) = 0;
  virtual void backward(const T* x, const T* y, T* dy, T* dx, int64_t n, const Ctx& ctx) = 0;
  // After a backward by rows (ctx.rows) of all n rows by the team: the parameter gradients
  // that ctx.rows->[g0, g1) holds, from x and the whole dz (dy). Only dense layers (and
  // chains of them) have them: only networks of dense layers share steps by rows.
  virtual void grads_part(const T* x, const T* dy, int64_t n, const Ctx& ctx) {}
  // A dense layer fills c (all but y and dy) and says true; every other layer false.
  virtual bool chain_layer(ChainLayer<T>& c) { return false; }
};

template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, int& counter);

// A chain of layers (the network body, and the block inside a Residual).
template <typename T>
class Sequential : public Layer<T> {
 public:
  Sequential(const std::vector<LayerSpec>& specs, int& counter);
  void bind(ArenaCursor<T>& arenas) override;
  void reserve(int64_t n) override;
  bool team_capable() const override;  // every layer is
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override;
  void backward(const T* x, const T* y, T* dy, T* dx, int64_t n, const Ctx& ctx) override;
  void grads_part(const T* x, const T* dy, int64_t n, const Ctx& ctx) override;
  // The layers as a chain of dense layers (out[0 .. count)), y and dy the last one's output
  // and its gradient, the others' those of outs_ and douts_ (reserved for the rows to run);
  // 0 when a layer is not dense or there are more than max.
  int chain(ChainLayer<T>* out, int max, T* y, T* dy);

 private:
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<std::vector<T>> outs_, douts_;  // intermediate outputs and their gradients
};

}  // namespace fastbp
