// Factories of the layer kinds (rows of the layer table, nn/layer_table.cpp). Each checks the
// values its kind's fields allow (dropout rate, norm eps and momentum); `counter` numbers
// the layers of a residual block (pre-order, see Layer::index).
#pragma once
#include <memory>

#include "nn/layer.h"

namespace fastbp {

template <typename T>
std::unique_ptr<Layer<T>> make_dense(const LayerSpec& spec, int& counter);
template <typename T>
std::unique_ptr<Layer<T>> make_activation(const LayerSpec& spec, int& counter);
template <typename T>
std::unique_ptr<Layer<T>> make_dropout(const LayerSpec& spec, int& counter);
template <typename T>
std::unique_ptr<Layer<T>> make_residual(const LayerSpec& spec, int& counter);
template <typename T>
std::unique_ptr<Layer<T>> make_batchnorm(const LayerSpec& spec, int& counter);
template <typename T>
std::unique_ptr<Layer<T>> make_layernorm(const LayerSpec& spec, int& counter);

}  // namespace fastbp
