// The engine's layer abstraction. A layer maps x (n x in_dim) to y (n x out_dim); backward
// takes dy (n x out_dim, which it may overwrite) and writes its parameter gradients
// (overwriting) and, when dx != nullptr, dx (n x in_dim).
// Layers own their workspace (grown in reserve(), never on the hot path) and get pointers into
// the network's flat parameter / gradient / buffer arenas in bind().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/activations.h"

namespace fastbp {

// A parsed layer spec (docs/ENGINE.md), free of Python.
struct LayerSpec {
  std::string type;        // dense | activation | dropout | batchnorm | layernorm | residual
  int64_t in = 0, out = 0; // dims (dim-preserving layers have in == out)
  Act act = Act::identity;
  double alpha = 0.0;      // leaky_relu slope / elu alpha
  double rate = 0.0;       // dropout
  double eps = 1e-5, momentum = 0.1;  // norms
  std::vector<LayerSpec> children;    // residual block
};

struct ParamInfo {
  std::vector<int64_t> shape;
  bool penalised = false;  // L1/L2 apply (dense weights)
  int64_t size() const {
    int64_t s = 1;
    for (auto d : shape) s *= d;
    return s;
  }
};

struct Ctx {
  bool training = false;
  uint64_t seed = 0;
  uint64_t step = 0;  // training forward number (dropout stream)
  bool update_state = true;  // training: BatchNorm updates its running statistics
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  int64_t in_dim = 0, out_dim = 0;
  int index = 0;  // position in a pre-order walk of the spec
  virtual void collect_params(std::vector<ParamInfo>& out) const {}
  virtual void collect_buffers(std::vector<ParamInfo>& out) const {}
  // Take this layer's slices of the arenas, advancing the pointers.
  virtual void bind(T*& params, T*& grads, T*& buffers) {}
  virtual void reserve(int64_t n) {}
  virtual void forward(const T* x, T* y, int64_t n, const Ctx& ctx) = 0;
  virtual void backward(const T* x, const T* y, T* dy, T* dx, int64_t n, const Ctx& ctx) = 0;
};

template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, int& counter);

// A chain of layers (the network body, and the block inside a Residual).
template <typename T>
class Sequential : public Layer<T> {
 public:
  Sequential(const std::vector<LayerSpec>& specs, int& counter);
  void collect_params(std::vector<ParamInfo>& out) const override;
  void collect_buffers(std::vector<ParamInfo>& out) const override;
  void bind(T*& params, T*& grads, T*& buffers) override;
  void reserve(int64_t n) override;
  void forward(const T* x, T* y, int64_t n, const Ctx& ctx) override;
  void backward(const T* x, const T* y, T* dy, T* dx, int64_t n, const Ctx& ctx) override;

 private:
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<std::vector<T>> outs_, douts_;  // intermediate outputs and their gradients
};

}  // namespace fastbp
