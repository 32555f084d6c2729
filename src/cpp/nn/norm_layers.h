// Normalisation layers: BatchNorm (torch BatchNorm1d) and LayerNorm.
#pragma once
#include <memory>

#include "nn/layer.h"

namespace fastbp {

template <typename T>
std::unique_ptr<Layer<T>> make_batchnorm(const LayerSpec& spec);
template <typename T>
std::unique_ptr<Layer<T>> make_layernorm(const LayerSpec& spec);

}  // namespace fastbp
