// BatchNorm and LayerNorm.  x, y: (n, d).
//   BatchNorm (torch BatchNorm1d): training normalises with the batch mean and biased
//   variance per feature and updates running_mean / running_var (unbiased) with `momentum`;
//   inference uses the running statistics.  y = gamma * xhat + beta.
//   LayerNorm: per sample over its d features (biased variance), y = gamma * xhat + beta.
//   backward (both): dxhat = dy*gamma; dgamma = sum dy*xhat; dbeta = sum dy;
//     dx = invstd/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat)), sums over the m values
//     that share a mean (batch rows for BatchNorm, features for LayerNorm).
#include "nn/layers.h"

#include "core/kernel_set.h"

#include <cmath>
#include <stdexcept>

namespace fastbp {

namespace {

// On a team (nn/layer.h team_part): BatchNorm splits its columns, LayerNorm its rows, and its
// parameters' gradient sums by columns.

// A norm layer's loop arguments (kernels/norm.h): its rows or columns [b, e) of an n x d
// batch, its parameters and its buffers.
template <typename T>
NormSpan<T> norm_span(int64_t n, int64_t d, int64_t b, int64_t e, const T* gamma,
                       const T* beta, std::vector<T>& xhat, std::vector<T>& invstd) {
  NormSpan<T> a;
  a.n = n;
  a.d = d;
  a.c0 = b;
  a.c1 = e;
  a.gamma = gamma;
  a.beta = beta;
  a.xhat = xhat.data();
  a.invstd = invstd.data();
  return a;
}

template <typename T>
class BatchNorm : public Layer<T> {
 public:
  explicit BatchNorm(const LayerSpec& s) : eps_(s.eps), momentum_(s.momentum) {
    this->in_dim = this->out_dim = s.in;
  }
  void bind(ArenaCursor<T>& a) override {
    gamma_ = a.param(dgamma_);
    beta_ = a.param(dbeta_);
    rmean_ = a.buffer();
    rvar_ = a.buffer();
  }
  void reserve(int64_t n) override {
    if (xhat_.size() < size_t(n * this->in_dim)) xhat_.resize(size_t(n * this->in_dim));
    invstd_.resize(size_t(this->in_dim));
    acc_.resize(size_t(this->in_dim));
    acc2_.resize(size_t(this->in_dim));
  }
  // Every column is computed alone, its sums in row order: a team splits the columns.
  bool team_capable() const override { return true; }
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override {
    int64_t c0, c1;
    team_part(ctx, this->in_dim, kTeamColAlign, c0, c1);
    const KernelSlots<T>& k = kernels().slots<T>();  // (the loops: kernels/norm.h)
    if (!ctx.training)
      k.bn_infer(columns(n, c0, c1), x, y, rmean_, rvar_, eps_);
    else
      k.bn_forward(columns(n, c0, c1), x, y, ctx.update_state ? rmean_ : nullptr,
                   ctx.update_state ? rvar_ : nullptr, eps_, momentum_);
    team_meet(ctx);
  }
  void backward(const T*, const T*, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    int64_t c0, c1;
    team_part(ctx, this->in_dim, kTeamColAlign, c0, c1);
    kernels().slots<T>().bn_backward(columns(n, c0, c1), dy, dx, dgamma_, dbeta_);
    team_meet(ctx);
  }
  NormSpan<T> columns(int64_t n, int64_t c0, int64_t c1) {
    NormSpan<T> a = norm_span(n, this->in_dim, c0, c1, gamma_, beta_, xhat_, invstd_);
    a.acc = acc_.data();
    a.acc2 = acc2_.data();
    return a;
  }

 private:
  double eps_, momentum_;
  T *gamma_ = nullptr, *beta_ = nullptr, *dgamma_ = nullptr, *dbeta_ = nullptr;
  T *rmean_ = nullptr, *rvar_ = nullptr;
  std::vector<T> xhat_, invstd_;
  std::vector<double> acc_, acc2_;
};

template <typename T>
class LayerNorm : public Layer<T> {
 public:
  explicit LayerNorm(const LayerSpec& s) : eps_(s.eps) { this->in_dim = this->out_dim = s.in; }
  void bind(ArenaCursor<T>& a) override {
    gamma_ = a.param(dgamma_);
    beta_ = a.param(dbeta_);
  }
  void reserve(int64_t n) override {
    if (xhat_.size() < size_t(n * this->in_dim)) xhat_.resize(size_t(n * this->in_dim));
    if (invstd_.size() < size_t(n)) invstd_.resize(size_t(n));
  }
  // Rows are normalised alone (a team splits them); the parameters' gradient sums run over
  // all rows in row order, by column blocks.
  bool team_capable() const override { return true; }
  // (the loops are the active ISA's: kernels/norm.h)
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override {
    int64_t r0, r1;
    team_part(ctx, n, kTeamRowAlign, r0, r1);
    kernels().slots<T>().ln_forward(span(n, r0, r1), x, y, eps_);
    team_meet(ctx);
  }
  void backward(const T*, const T*, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    const KernelSlots<T>& k = kernels().slots<T>();
    int64_t c0, c1, r0, r1;
    team_part(ctx, this->in_dim, kTeamColAlign, c0, c1);
    k.ln_param_grads(span(n, c0, c1), dy, dgamma_, dbeta_);
    if (dx) {
      team_part(ctx, n, kTeamRowAlign, r0, r1);
      k.ln_input_grad(span(n, r0, r1), dy, dx);
    }
    team_meet(ctx);
  }
  NormSpan<T> span(int64_t n, int64_t b, int64_t e) {
    return norm_span(n, this->in_dim, b, e, gamma_, beta_, xhat_, invstd_);
  }

 private:
  double eps_;
  T *gamma_ = nullptr, *beta_ = nullptr, *dgamma_ = nullptr, *dbeta_ = nullptr;
  std::vector<T> xhat_, invstd_;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_batchnorm(const LayerSpec& s, int&) {
  if (!(s.eps > 0.0)) throw std::invalid_argument("batchnorm eps must be > 0");
  if (!(s.momentum >= 0.0 && s.momentum <= 1.0))
    throw std::invalid_argument("batchnorm momentum must be in [0, 1]");
  return std::make_unique<BatchNorm<T>>(s);
}
template <typename T>
std::unique_ptr<Layer<T>> make_layernorm(const LayerSpec& s, int&) {
  if (!(s.eps > 0.0)) throw std::invalid_argument("layernorm eps must be > 0");
  return std::make_unique<LayerNorm<T>>(s);
}

template std::unique_ptr<Layer<float>> make_batchnorm<float>(const LayerSpec&, int&);
template std::unique_ptr<Layer<double>> make_batchnorm<double>(const LayerSpec&, int&);
template std::unique_ptr<Layer<float>> make_layernorm<float>(const LayerSpec&, int&);
template std::unique_ptr<Layer<double>> make_layernorm<double>(const LayerSpec&, int&);

}  // namespace fastbp
