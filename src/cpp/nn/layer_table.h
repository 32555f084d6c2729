// The layer-kind registry: one row per kind with its spec fields (and their defaults), its
// parameters and buffers (names, shapes, arena order) and its factory. The spec parser
// (bindings/spec_parse.cpp), the Network's arena layout, make_layer() and
// fastbp._core.registry() / layer_shapes() read it; no other place knows a layer's shapes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/layer.h"

namespace fastbp {

// How a spec field is read (bindings/spec_parse.cpp):
//   width: a positive integer (required), into `width`;
//   dim: a positive integer (required), the input and output width;
//   activation: a kActivations name or alias, None or absent: identity;
//   alpha: a finite real; absent or None: the activation's parameter default (0 if none);
//   real: a finite real; absent or None: `dflt`;
//   text: a string or None, not read by the engine (dense "init": Python's initialisation);
//   layers: a non-empty list of layer specs (required).
// Fields are read in table order (activation before alpha).
enum class FieldType : int { width, dim, activation, alpha, real, text, layers };
struct FieldDef {
  const char* name;
  FieldType type;
  double dflt = 0.0;                       // real
  int64_t LayerSpec::*width = nullptr;     // width
  double LayerSpec::*real = nullptr;       // alpha, real
};

// A parameter or buffer: its shape is (in), (out) or (in, out) of the layer's widths.
enum class Extent : int { in, out };
struct ArrayDef {
  const char* name;
  std::vector<Extent> shape;
  bool penalised = false;  // parameters only: L1/L2 apply
};

struct LayerKind {
  const char* name;
  std::vector<FieldDef> fields;
  std::vector<ArrayDef> params;   // in arena order
  std::vector<ArrayDef> buffers;  // in buffer-arena order
  bool batch_statistics = false;  // training needs batches of 2 or more samples
  std::unique_ptr<Layer<float>> (*make_f32)(const LayerSpec&, int& counter);
  std::unique_ptr<Layer<double>> (*make_f64)(const LayerSpec&, int& counter);
};

const std::vector<LayerKind>& layer_kinds();
const LayerKind* find_layer_kind(const std::string& name);  // nullptr if unknown
std::string layer_kind_names();                              // "dense, activation, ..."

// The arena layout of a spec: parameters and buffers in arena order (a pre-order walk, the
// layers of a residual block inline).
void layer_shapes(const std::vector<LayerSpec>& spec, std::vector<ParamInfo>& params,
                  std::vector<ParamInfo>& buffers);

// Sizes of a spec, each checked against int64 overflow (std::invalid_argument naming
// `where`): parameter and buffer elements, and an upper bound of the workspace elements one
// batch row needs (outputs, their gradients, pre-activations, masks, ...).
struct SpecTotals {
  int64_t params = 0, buffers = 0, row = 0;
};
SpecTotals spec_totals(const std::vector<LayerSpec>& spec, const std::string& where = "spec");

// Does any layer of the spec (residual blocks included) train on batch statistics?
bool spec_has_batch_statistics(const std::vector<LayerSpec>& spec);

}  // namespace fastbp
