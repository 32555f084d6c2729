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

// The sum of f(j) over j < d in double: four interleaved partial sums (lane j % 4, the tail
// into lane 0) added as (s0 + s1) + (s2 + s3) -- a fixed order, and four independent chains
// of adds instead of one (a LayerNorm row's sums were bound by the latency of one).
template <typename F>
inline double row_sum(int64_t d, F&& f) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t j = 0;
  for (; j + 4 <= d; j += 4)
    for (int l = 0; l < 4; ++l) s[l] += f(j + l);
  for (; j < d; ++j) s[0] += f(j);
  return (s[0] + s[1]) + (s[2] + s[3]);
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
    if (ctx.training)
      train_forward(x, y, n, c0, c1, ctx.update_state);
    else
      infer(x, y, n, c0, c1);
    team_meet(ctx);
  }
  void infer(const T* x, T* y, int64_t n, int64_t c0, int64_t c1) {
    const int64_t d = this->in_dim;
    for (int64_t j = c0; j < c1; ++j) invstd_[j] = T(1.0 / std::sqrt(double(rvar_[j]) + eps_));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = c0; j < c1; ++j)
        y[i * d + j] = gamma_[j] * ((x[i * d + j] - rmean_[j]) * invstd_[j]) + beta_[j];
  }
  // The loops themselves are the active ISA's (kernels/norm.h).
  BnColumns<T> columns(int64_t n, int64_t c0, int64_t c1) {
    BnColumns<T> a;
    a.n = n;
    a.d = this->in_dim;
    a.c0 = c0;
    a.c1 = c1;
    a.gamma = gamma_;
    a.beta = beta_;
    a.xhat = xhat_.data();
    a.invstd = invstd_.data();
    a.acc = acc_.data();
    a.acc2 = acc2_.data();
    return a;
  }
  void train_forward(const T* x, T* y, int64_t n, int64_t c0, int64_t c1, bool update_state) {
    kernels().slots<T>().bn_forward(columns(n, c0, c1), x, y, update_state ? rmean_ : nullptr,
                                    update_state ? rvar_ : nullptr, eps_, momentum_);
  }
  void backward(const T*, const T*, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    int64_t c0, c1;
    team_part(ctx, this->in_dim, kTeamColAlign, c0, c1);
    column_backward(dy, dx, n, c0, c1);
    team_meet(ctx);
  }
  void column_backward(const T* dy, T* dx, int64_t n, int64_t c0, int64_t c1) {
    kernels().slots<T>().bn_backward(columns(n, c0, c1), dy, dx, dgamma_, dbeta_);
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
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override {
    const int64_t d = this->in_dim;
    int64_t r0, r1;
    team_part(ctx, n, kTeamRowAlign, r0, r1);
    for (int64_t i = r0; i < r1; ++i) {
      const T* r = x + i * d;
      const double mean = row_sum(d, [&](int64_t j) { return double(r[j]); }) / double(d);
      const double var = row_sum(d, [&](int64_t j) {
                           const double c = double(r[j]) - mean;
                           return c * c;
                         }) / double(d);
      const double inv = 1.0 / std::sqrt(var + eps_);
      invstd_[i] = T(inv);
      for (int64_t j = 0; j < d; ++j) {
        const T xh = T((double(r[j]) - mean) * inv);
        xhat_[i * d + j] = xh;
        y[i * d + j] = gamma_[j] * xh + beta_[j];
      }
    }
    team_meet(ctx);
  }
  void backward(const T*, const T*, T* dy, T* dx, int64_t n, const Ctx& ctx) override {
    const int64_t d = this->in_dim;
    int64_t c0, c1, r0, r1;
    team_part(ctx, d, kTeamColAlign, c0, c1);
    for (int64_t j = c0; j < c1; ++j) dgamma_[j] = dbeta_[j] = T(0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = c0; j < c1; ++j) {
        dbeta_[j] += dy[i * d + j];
        dgamma_[j] += dy[i * d + j] * xhat_[i * d + j];
      }
    if (dx) {
      team_part(ctx, n, kTeamRowAlign, r0, r1);
      input_gradient(dy, dx, r0, r1);
    }
    team_meet(ctx);
  }
  void input_gradient(const T* dy, T* dx, int64_t r0, int64_t r1) const {
    const int64_t d = this->in_dim;
    for (int64_t i = r0; i < r1; ++i) {
      const T* g = dy + i * d;
      const T* xh = xhat_.data() + i * d;
      const double s1 = row_sum(d, [&](int64_t j) { return double(g[j]) * double(gamma_[j]); });
      const double s2 = row_sum(d, [&](int64_t j) {
        return double(g[j]) * double(gamma_[j]) * double(xh[j]);
      });
      for (int64_t j = 0; j < d; ++j) {
        const double dxh = double(dy[i * d + j]) * double(gamma_[j]);
        dx[i * d + j] = T(double(invstd_[i]) / double(d) *
                          (double(d) * dxh - s1 - double(xhat_[i * d + j]) * s2));
      }
    }
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
