// Parsing of the dict-shaped arguments of the engine, driven by the registries: the layer
// spec (nn/layer_table.h), optimizer hyper-parameters (kOptimizers) and loss parameters
// (kLosses). Raise TypeError / ValueError naming the offending key; touch no network.
#pragma once
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "nn/layer.h"
#include "nn/network.h"

namespace fastbp {

namespace py = pybind11;

// A list of layer dicts (docs/ENGINE.md) -> LayerSpecs, fields read per the layer table.
std::vector<LayerSpec> parse_spec(const py::handle& spec);
// Optimizer `name` with hyper-parameters `hyper` (registry names; absent or None: default;
// unknown keys rejected).
OptConfig parse_opt(const std::string& name, const py::dict& hyper);
// Loss `name` (or alias) with its parameters and the penalties l1 / l2 from `params`.
LossArgs parse_loss(const std::string& name, const py::dict& params, PenaltyArgs& pen);

}  // namespace fastbp
