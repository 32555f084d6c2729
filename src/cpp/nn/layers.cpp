// Layers of the engine: Sequential, Dense, Activation, Dropout, Residual.
// Shapes: x (n, in_dim), y (n, out_dim), row-major.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "core/platform.h"
#include "core/rng.h"
#include "kernels/activations.h"
#include "kernels/gemm/gemm.h"
#include "kernels/sparse.h"
#include "nn/fused_update.h"
#include "nn/layers.h"

namespace fastbp {

namespace {

template <typename T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// f(r0, r1) on this thread's rows of n (all of them off a team), then the team meets: an
// elementwise sweep of a layer that a team runs (every element is computed whole by one
// thread, so the split never changes a bit).
template <typename F>
void team_rows(const Ctx& ctx, int64_t n, F&& f) {
  int64_t r0, r1;
  team_part(ctx, n, kTeamRowAlign, r0, r1);
  if (r1 > r0) f(r0, r1);
  team_meet(ctx);
}

// ---------------------------------------------------------------------------------------
// Dense: y = f(x W + b);  W (in, out), b (out).
//   backward: dz = dy * f'(z);  dW = x^T dz;  db = sum_rows dz;  dx = dz W^T
template <typename T>
class Dense : public Layer<T> {
 public:
  explicit Dense(const LayerSpec& s) : act_(s.act), alpha_(T(s.alpha)) {
    this->in_dim = s.in;
    this->out_dim = s.out;
  }
  void bind(ArenaCursor<T>& a) override {
    W_ = a.param(dW_);
    b_ = a.param(db_);
  }
  void reserve(int64_t n) override {
    if (act_needs_z(act_)) grow(z_, size_t(n * this->out_dim));
    if (fused_wide(this->out_dim)) grow(part_, size_t(own_units(this->in_dim) * this->out_dim));
    // (part_: the partial products of the row units not the first thread's)
  }
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override {
    const int64_t in = this->in_dim, out = this->out_dim;
    if (row_units(ctx, n)) {  // (nn/fused_update.h)
      forward_row_units(x, y, ctx);
      return;
    }
    if (ctx.rows) {  // (this thread's rows of a step shared by rows: nn/network_rows.cpp)
      forward_rows(x, y, *ctx.rows);
      return;
    }
    if (const T* v = sparse_input(ctx))
      csr_matmul<T>(y, ctx.csr.indptr, ctx.csr.indices, v, n, W_, out);
    else
      gemm<T>(Trans::N, Trans::N, n, out, in, T(1), x, in, W_, out, T(0), y, out);
    T* z = (ctx.training && act_needs_z(act_)) ? z_.data() : nullptr;
    team_rows(ctx, n, [&](int64_t r0, int64_t r1) {  // (elementwise: this thread's rows)
      bias_act_forward<T>(y + r0 * out, z ? z + r0 * out : nullptr, b_, r1 - r0, out, out, act_,
                          alpha_);
    });
  }
  bool team_capable() const override { return true; }
  bool chain_layer(ChainLayer<T>& c) override {
    c.W = W_;
    c.b = b_;
    c.dW = dW_;
    c.db = db_;
    c.z = act_needs_z(act_) ? z_.data() : nullptr;
    c.in = this->in_dim;
    c.out = this->out_dim;
    c.act = act_;
    c.alpha = alpha_;
    return true;
  }
  // With the fused update (ctx.fused, nn/fused_update.h), dx comes first (it reads the old W)
  // and W and b are updated block by block instead of their gradients being written.
  void backward(const T* x, const T* y, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    if (ctx.rows) {  // (this thread's rows of dz and dx; grads_part forms dW and db)
      backward_rows(y, dy, dx, *ctx.rows);
      return;
    }
    const int64_t in = this->in_dim, out = this->out_dim;
    // dz = dy * f'(z) and db = column sums of dz, in one sweep (in a team: by its first
    // thread, the sums keep their one order; the products below split themselves). Sharing
    // it by blocks of 64 columns kept the bits but was slower (digits 64-128-10 on the Zen 4
    // VM, 2 threads: 73 -> 82 us per step at a batch of 200 rows, 29.2 -> 30.3 at 64): dy, z
    // and y were written by rows, so half of each thread's lines came from the other core.
    // A costly derivative (exp / erf per element) on a layer of more than one 64-column block
    // is shared instead: team_backward_bias.
    const T* z = act_needs_z(act_) ? z_.data() : nullptr;
    if (ctx.team && act_info(act_).costly_backward && out > kTeamColAlign) {
      team_backward_bias(dy, z, y, n, *ctx.team);
    } else {
      if (ctx.team == nullptr || ctx.team->lead())
        act_backward_bias<T>(dy, db_, z, y, n, out, act_, alpha_);
      if (ctx.team) ctx.team->sync();
    }
    if (const T* v = sparse_input(ctx)) {  // dW = Xᵀ dz; the first layer has no dx
      csr_t_matmul<T>(dW_, ctx.csr.indptr, ctx.csr.indices, v, n, in, dy, out,
                      ctx.csr.grad_zero);
      return;
    }
    if (dx && row_units(ctx, n))
      dx_by_rows(dy, dx, ctx);
    else if (dx)
      gemm<T>(Trans::N, Trans::T, n, in, out, T(1), dy, out, W_, out, T(0), dx, in);
    if (const auto* fu = static_cast<const FusedUpdate<T>*>(ctx.fused)) {
      const Team& team = ctx.team ? *ctx.team : kSoloTeam;
      fu->weights(W_, in, out, x, dy, team);
      if (team.lead()) fu->vector(b_, db_, 0, out);
      return;
    }
    gemm<T>(Trans::T, Trans::N, in, out, n, T(1), x, in, dy, out, T(0), dW_, out);
  }
  // A step shared by batch rows: this thread's rows of y = f(x W + b) (and z), and of
  // dz = dy * f'(z) and dx = dz W^T.
  FASTBP_NOINLINE void forward_rows(const T* x, T* y, const RowsPart& part) {
    const int64_t in = this->in_dim, out = this->out_dim, r0 = part.r0, m = part.r1 - r0;
    gemm<T>(Trans::N, Trans::N, m, out, in, T(1), x + r0 * in, in, W_, out, T(0), y + r0 * out,
            out);
    T* z = act_needs_z(act_) ? z_.data() + r0 * out : nullptr;
    bias_act_forward<T>(y + r0 * out, z, b_, m, out, out, act_, alpha_);
  }
  FASTBP_NOINLINE void backward_rows(const T* y, T* dy, T* dx, const RowsPart& part) {
    const int64_t in = this->in_dim, out = this->out_dim, r0 = part.r0, m = part.r1 - r0;
    const T* z = act_needs_z(act_) ? z_.data() + r0 * out : nullptr;
    act_backward<T>(dy + r0 * out, z, y + r0 * out, m * out, act_, alpha_);
    if (dx)
      gemm<T>(Trans::N, Trans::T, m, in, out, T(1), dy + r0 * out, out, W_, out, T(0),
              dx + r0 * in, in);
  }
  // dW's rows and db, those whose first element lies in ctx.rows' part of the gradient arena:
  // the rows of the whole product dW = x^T dz (each row of it is formed alone: the caller
  // checked that the part takes the whole product's path, nn/network_rows.cpp) and the column
  // sums act_backward_bias would have formed.
  void grads_part(const T* x, const T* dy, int64_t n, const Ctx& ctx) override {
    const int64_t in = this->in_dim, out = this->out_dim;
    int64_t i0, i1;
    rows_in_part(*ctx.rows, dW_, in, out, i0, i1);
    if (i1 > i0)
      gemm<T>(Trans::T, Trans::N, i1 - i0, out, n, T(1), x + i0, in, dy, out, T(0),
              dW_ + i0 * out, out);
    if (owns(*ctx.rows, db_)) bias_grad<T>(db_, dy, n, out, act_, alpha_);
  }

 private:
  // A wide layer at a batch of one row of a network that asks for it is computed by row units
  // of W (nn/fused_update.h): on a team each thread forms (and, fused, updates) its own units.
  bool row_units(const Ctx& ctx, int64_t n) const {
    return ctx.row_units && n == 1 && fused_wide(this->out_dim);
  }
  // y = f(x W + b) as one partial product per row unit of W, added in unit order, then the
  // bias and activation (the columns split over the team). The units of the thread that has
  // the first one are added up in y as they are formed (a product with beta = 1 adds its sum
  // to C: round(c + p), the order of the running sum); the other threads' partials wait in
  // part_ and are added after them. (With fewer units than threads the first threads get
  // none: Team::share gives the blocks to the last ones.) The partials do not depend on the
  // thread count, so neither do the bits.
  FASTBP_NOINLINE void forward_row_units(const T* x, T* y, const Ctx& ctx) {
    const int64_t in = this->in_dim, out = this->out_dim, units = own_units(in);
    const Team& team = ctx.team ? *ctx.team : kSoloTeam;
    int64_t r0, r1;
    own_rows(team, in, r0, r1);
    if (r1 > r0) {
      const TeamScope alone(nullptr);  // (these products are this thread's alone)
      const bool running = r0 == 0;  // (the thread with the first unit)
      for (int64_t i0 = r0; i0 < r1; i0 += kOwnRows) {
        gemm<T>(Trans::N, Trans::N, 1, out, std::min(kOwnRows, r1 - i0), T(1), x + i0, in,
                W_ + i0 * out, out, T(running && i0 > 0 ? 1 : 0),
                running ? y : part_.data() + i0 / kOwnRows * out, out);
      }
    }
    team.sync();
    int64_t first = 0, c0, c1;  // the units added up in y: those of the first thread with any
    for (int t = 0; t < team.nt && first == 0; ++t) Team{t, team.nt}.share(units, c0, first);
    team.rows(out, kTeamColAlign, c0, c1);
    if (first < units)
      for (int64_t j = c0; j < c1; ++j) {
        T s = y[j];
        for (int64_t u = first; u < units; ++u) s += part_[size_t(u * out + j)];
        y[j] = s;
      }
    if (c1 > c0) {
      T* z = (ctx.training && act_needs_z(act_)) ? z_.data() + c0 : nullptr;
      bias_act_forward<T>(y + c0, z, b_ + c0, 1, c1 - c0, out, act_, alpha_);
    }
    team.sync();
  }
  // dx = dz W^T of one row by rows of W, this thread's row units (the same bits as one
  // product: every dx[i] is its own dot product), then the team meets.
  FASTBP_NOINLINE void dx_by_rows(const T* dy, T* dx, const Ctx& ctx) {
    const int64_t in = this->in_dim, out = this->out_dim;
    const Team& team = ctx.team ? *ctx.team : kSoloTeam;
    int64_t r0, r1;
    own_rows(team, in, r0, r1);
    if (r1 > r0) {
      const TeamScope alone(nullptr);
      gemm<T>(Trans::N, Trans::T, 1, r1 - r0, out, T(1), dy, out, W_ + r0 * out, out, T(0),
              dx + r0, in);
    }
    team.sync();
  }
  // dz = dy * f'(z) on a team: each thread its rows (those it formed in forward), then the
  // bias gradient's column sums over all rows in row order, by blocks of 64 columns -- the bits
  // of act_backward_bias's one sweep (not its flat form: > 64 columns), which forms the same dz
  // and adds its rows in the same order. Measured on the Zen 4 VM, 2
  // threads, fit per step: gelu 16-256x3-4 at batch 128 739 -> 686 us, silu 100-512-256-2 at
  // 256 1398 -> 1374 us; on relu (digits 64-128-10 at 200 rows) it was 3% slower.
  FASTBP_NOINLINE void team_backward_bias(T* dy, const T* z, const T* y, int64_t n,
                                          const Team& team) {
    const int64_t out = this->out_dim;
    int64_t r0, r1;
    team.rows(n, kTeamRowAlign, r0, r1);
    if (r1 > r0)
      act_backward<T>(dy + r0 * out, z ? z + r0 * out : nullptr, y + r0 * out, (r1 - r0) * out,
                      act_, alpha_);
    team.sync();
    int64_t c0, c1;
    team.rows(out, kTeamColAlign, c0, c1);
    for (int64_t j = c0; j < c1; ++j) db_[j] = T(0);
    for (int64_t i = 0; i < n; ++i) {
      const T* g = dy + i * out;
      for (int64_t j = c0; j < c1; ++j) db_[j] += g[j];
    }
    team.sync();
  }
  // The CSR values when this layer is fed the network's sparse input, else null.
  const T* sparse_input(const Ctx& ctx) const {
    return this->index == 0 ? static_cast<const T*>(ctx.csr.values) : nullptr;
  }
  Act act_;
  T alpha_;
  T *W_ = nullptr, *b_ = nullptr, *dW_ = nullptr, *db_ = nullptr;
  std::vector<T> z_;
  std::vector<T> part_;  // partial products of the row units (forward_row_units)
};

// ---------------------------------------------------------------------------------------
// Activation: y = f(x);  dx = dy * f'(x).
template <typename T>
class Activation : public Layer<T> {
 public:
  explicit Activation(const LayerSpec& s) : act_(s.act), alpha_(T(s.alpha)) {
    this->in_dim = this->out_dim = s.in;
  }
  bool team_capable() const override { return true; }
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override {
    const int64_t w = this->in_dim;
    team_rows(ctx, n, [&](int64_t r0, int64_t r1) {
      act_forward<T>(y + r0 * w, x + r0 * w, (r1 - r0) * w, act_, alpha_);
    });
  }
  void backward(const T* x, const T* y, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    if (!dx) return;
    const int64_t w = this->in_dim;
    team_rows(ctx, n, [&](int64_t r0, int64_t r1) {
      std::memcpy(dx + r0 * w, dy + r0 * w, sizeof(T) * size_t((r1 - r0) * w));
      act_backward<T>(dx + r0 * w, x + r0 * w, y + r0 * w, (r1 - r0) * w, act_, alpha_);
    });
  }

 private:
  Act act_;
  T alpha_;
};

// ---------------------------------------------------------------------------------------
// Dropout (inverted): in training y = x * keep / (1 - rate), keep drawn from the counter-based
// stream of docs/ENGINE.md; identity in inference.
template <typename T>
class Dropout : public Layer<T> {
 public:
  explicit Dropout(const LayerSpec& s) : rate_(s.rate) { this->in_dim = this->out_dim = s.in; }
  void reserve(int64_t n) override { grow(mask_, size_t(n * this->in_dim)); }
  bool team_capable() const override { return true; }
  // (element i's draw depends on i alone: a team's threads draw their rows' elements)
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override {
    const int64_t w = this->in_dim;
    const T scale = rate_ >= 1.0 ? T(0) : T(1.0 / (1.0 - rate_));
    const uint64_t base = rng_mix(rng_mix(rng_mix(ctx.seed, 1), ctx.step), uint64_t(this->index));
    const bool identity = !ctx.training || rate_ == 0.0;
    team_rows(ctx, n, [&](int64_t r0, int64_t r1) {
      const int64_t i0 = r0 * w, i1 = r1 * w;
      if (identity) {
        if (y != x) std::memcpy(y + i0, x + i0, sizeof(T) * size_t(i1 - i0));
        if (ctx.training) std::fill(mask_.begin() + i0, mask_.begin() + i1, T(1));
        return;
      }
      for (int64_t i = i0; i < i1; ++i) {
        const bool keep = rng_uniform(splitmix64(base + uint64_t(i))) >= rate_;
        mask_[i] = keep ? scale : T(0);
        y[i] = x[i] * mask_[i];
      }
    });
  }
  void backward(const T*, const T*, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    if (!dx) return;
    const int64_t w = this->in_dim;
    team_rows(ctx, n, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * w; i < r1 * w; ++i) dx[i] = dy[i] * mask_[i];
    });
  }

 private:
  double rate_;
  std::vector<T> mask_;
};

// ---------------------------------------------------------------------------------------
// Residual: y = x + block(x);  dx = dy + block'(dy).
template <typename T>
class Residual : public Layer<T> {
 public:
  Residual(const LayerSpec& s, int& counter) : block_(s.children, counter) {
    this->in_dim = this->out_dim = s.in;
    if (block_.in_dim != s.in || block_.out_dim != s.in)
      throw std::invalid_argument("residual: the block must map width " + std::to_string(s.in) +
                                  " to the same width");
  }
  void bind(ArenaCursor<T>& a) override { block_.bind(a); }
  void reserve(int64_t n) override {
    block_.reserve(n);
    grow(yblock_, size_t(n * this->in_dim));
    grow(dskip_, size_t(n * this->in_dim));
  }
  bool team_capable() const override { return block_.team_capable(); }
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override {
    block_.forward(x, yblock_.data(), n, ctx);
    const int64_t w = this->in_dim;
    team_rows(ctx, n, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * w; i < r1 * w; ++i) y[i] = yblock_[i] + x[i];
    });
  }
  void backward(const T* x, const T*, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    const int64_t w = this->in_dim;
    // The block may overwrite dy: keep the skip path's copy first (on a team, all of it
    // before any thread goes on).
    if (dx)
      team_rows(ctx, n, [&](int64_t r0, int64_t r1) {
        std::memcpy(dskip_.data() + r0 * w, dy + r0 * w, sizeof(T) * size_t((r1 - r0) * w));
      });
    block_.backward(x, yblock_.data(), dy, dx, n, ctx);
    if (dx)
      team_rows(ctx, n, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0 * w; i < r1 * w; ++i) dx[i] += dskip_[i];
      });
  }

 private:
  Sequential<T> block_;
  std::vector<T> yblock_, dskip_;
};

}  // namespace

// ---------------------------------------------------------------------------------------
template <typename T>
Sequential<T>::Sequential(const std::vector<LayerSpec>& specs, int& counter) {
  if (specs.empty()) throw std::invalid_argument("a network (or residual block) needs at least one layer");
  for (const auto& s : specs) {
    if (!layers_.empty() && s.in != layers_.back()->out_dim)
      throw std::invalid_argument("layer '" + s.type + "' expects input width " +
                                  std::to_string(s.in) + " but the previous layer gives " +
                                  std::to_string(layers_.back()->out_dim));
    layers_.push_back(make_layer<T>(s, counter));
  }
  this->in_dim = layers_.front()->in_dim;
  this->out_dim = layers_.back()->out_dim;
  outs_.resize(layers_.size() - 1);
  douts_.resize(layers_.size() - 1);
}

template <typename T>
void Sequential<T>::bind(ArenaCursor<T>& a) {
  for (auto& l : layers_) l->bind(a);
}
template <typename T>
bool Sequential<T>::team_capable() const {
  for (const auto& l : layers_)
    if (!l->team_capable()) return false;
  return true;
}
template <typename T>
void Sequential<T>::reserve(int64_t n) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->reserve(n);
    if (i + 1 < layers_.size()) {
      grow(outs_[i], size_t(n * layers_[i]->out_dim));
      grow(douts_[i], size_t(n * layers_[i]->out_dim));
    }
  }
}
template <typename T>
void Sequential<T>::forward(const T* x, T* y, int64_t n, const Ctx& ctx) {
  const size_t L = layers_.size();
  for (size_t i = 0; i < L; ++i) {
    const T* in = i == 0 ? x : outs_[i - 1].data();
    T* out = i + 1 == L ? y : outs_[i].data();
    layers_[i]->forward(in, out, n, ctx);
  }
}
template <typename T>
void Sequential<T>::grads_part(const T* x, const T* dy, int64_t n, const Ctx& ctx) {
  const size_t L = layers_.size();
  for (size_t k = 0; k < L; ++k) {
    const T* in = k == 0 ? x : outs_[k - 1].data();
    const T* dout = k + 1 == L ? dy : douts_[k].data();
    layers_[k]->grads_part(in, dout, n, ctx);
  }
}
template <typename T>
void Sequential<T>::backward(const T* x, const T* y, T* dy, T* dx, int64_t n, const Ctx& ctx) {
  const size_t L = layers_.size();
  for (size_t k = L; k-- > 0;) {
    const T* in = k == 0 ? x : outs_[k - 1].data();
    const T* out = k + 1 == L ? y : outs_[k].data();
    T* dout = k + 1 == L ? dy : douts_[k].data();
    T* din = k == 0 ? dx : douts_[k - 1].data();
    layers_[k]->backward(in, out, dout, din, n, ctx);
  }
}

template <typename T>
int Sequential<T>::chain(ChainLayer<T>* out, int max, T* y, T* dy) {
  const size_t L = layers_.size();
  if (L > size_t(max)) return 0;
  for (size_t i = 0; i < L; ++i) {
    if (!layers_[i]->chain_layer(out[i])) return 0;
    out[i].y = i + 1 == L ? y : outs_[i].data();
    out[i].dy = i + 1 == L ? dy : douts_[i].data();
  }
  return int(L);
}

template <typename T>
std::unique_ptr<Layer<T>> make_dense(const LayerSpec& s, int&) {
  return std::make_unique<Dense<T>>(s);
}
template <typename T>
std::unique_ptr<Layer<T>> make_activation(const LayerSpec& s, int&) {
  return std::make_unique<Activation<T>>(s);
}
template <typename T>
std::unique_ptr<Layer<T>> make_dropout(const LayerSpec& s, int&) {
  if (!(s.rate >= 0.0 && s.rate < 1.0))
    throw std::invalid_argument("dropout rate must be in [0, 1), got " + std::to_string(s.rate));
  return std::make_unique<Dropout<T>>(s);
}
template <typename T>
std::unique_ptr<Layer<T>> make_residual(const LayerSpec& s, int& counter) {
  return std::make_unique<Residual<T>>(s, counter);
}

template class Sequential<float>;
template class Sequential<double>;
#define FASTBP_INST(T)                                                        \
  template std::unique_ptr<Layer<T>> make_dense<T>(const LayerSpec&, int&);      \
  template std::unique_ptr<Layer<T>> make_activation<T>(const LayerSpec&, int&); \
  template std::unique_ptr<Layer<T>> make_dropout<T>(const LayerSpec&, int&);    \
  template std::unique_ptr<Layer<T>> make_residual<T>(const LayerSpec&, int&);
FASTBP_INST(float)
FASTBP_INST(double)
#undef FASTBP_INST

}  // namespace fastbp
