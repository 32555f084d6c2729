#include "nn/layer_table.h"

#include <stdexcept>

#include "core/platform.h"
#include "nn/layers.h"

namespace fastbp {

namespace {

std::vector<LayerKind> build_layer_kinds() {
  using F = FieldType;
  const FieldDef dim{"dim", F::dim};
  const FieldDef activation{"activation", F::activation};
  const FieldDef alpha{"alpha", F::alpha, 0.0, nullptr, &LayerSpec::alpha};
  const FieldDef eps{"eps", F::real, 1e-5, nullptr, &LayerSpec::eps};
  const ArrayDef gamma{"gamma", {Extent::in}}, beta{"beta", {Extent::in}};
  const ArrayDef running_mean{"running_mean", {Extent::in}};
  const ArrayDef running_var{"running_var", {Extent::in}};
  std::vector<LayerKind> k;
  k.push_back({"dense",
               {{"in", F::width, 0.0, &LayerSpec::in}, {"out", F::width, 0.0, &LayerSpec::out},
                activation, alpha, {"init", F::text}},
               {{"W", {Extent::in, Extent::out}, true}, {"b", {Extent::out}}},
               {}, false, &make_dense<float>, &make_dense<double>});
  k.push_back({"activation", {dim, activation, alpha}, {}, {}, false,
               &make_activation<float>, &make_activation<double>});
  k.push_back({"dropout", {dim, {"rate", F::real, 0.0, nullptr, &LayerSpec::rate}}, {}, {},
               false, &make_dropout<float>, &make_dropout<double>});
  k.push_back({"batchnorm",
               {dim, eps, {"momentum", F::real, 0.1, nullptr, &LayerSpec::momentum}},
               {gamma, beta}, {running_mean, running_var}, true, &make_batchnorm<float>,
               &make_batchnorm<double>});
  k.push_back({"layernorm", {dim, eps}, {gamma, beta}, {}, false, &make_layernorm<float>,
               &make_layernorm<double>});
  k.push_back({"residual", {dim, {"layers", F::layers}}, {}, {}, false, &make_residual<float>,
               &make_residual<double>});
  return k;
}

const LayerKind& kind_of(const LayerSpec& s) {
  const LayerKind* k = find_layer_kind(s.type);
  if (!k)
    throw std::invalid_argument("unknown layer type '" + s.type + "'; expected one of " +
                                layer_kind_names());
  return *k;
}

std::vector<int64_t> shape_of(const ArrayDef& a, const LayerSpec& s) {
  std::vector<int64_t> shape;
  for (Extent e : a.shape) shape.push_back(e == Extent::in ? s.in : s.out);
  return shape;
}

void shapes_into(const std::vector<LayerSpec>& spec, std::vector<ParamInfo>& params,
                 std::vector<ParamInfo>& buffers) {
  for (const LayerSpec& s : spec) {
    const LayerKind& k = kind_of(s);
    for (const ArrayDef& a : k.params) params.push_back({a.name, shape_of(a, s), a.penalised});
    for (const ArrayDef& a : k.buffers) buffers.push_back({a.name, shape_of(a, s), false});
    shapes_into(s.children, params, buffers);
  }
}

int64_t checked_size(const std::vector<int64_t>& shape, const std::string& where) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (mul_overflow(n, d, &n))
      throw std::invalid_argument(where + ": size overflows 64-bit integers");
  return n;
}

void add_to(int64_t& total, int64_t n, const std::string& where) {
  if (add_overflow(total, n, &total))
    throw std::invalid_argument(where + ": size overflows 64-bit integers");
}

void totals_into(const std::vector<LayerSpec>& spec, const std::string& where, SpecTotals& t) {
  for (size_t i = 0; i < spec.size(); ++i) {
    const LayerSpec& s = spec[i];
    const std::string w = where + "[" + std::to_string(i) + "]";
    const LayerKind& k = kind_of(s);
    for (const ArrayDef& a : k.params) add_to(t.params, checked_size(shape_of(a, s), w), w);
    for (const ArrayDef& a : k.buffers) add_to(t.buffers, checked_size(shape_of(a, s), w), w);
    int64_t width = 0, row = 0;
    add_to(width, s.in, w);
    add_to(width, s.out, w);
    if (mul_overflow(3, width, &row))
      throw std::invalid_argument(w + ": size overflows 64-bit integers");
    add_to(t.row, row, w);
    totals_into(s.children, w + "['layers']", t);
  }
}

}  // namespace

const std::vector<LayerKind>& layer_kinds() {
  static const std::vector<LayerKind> kinds = build_layer_kinds();
  return kinds;
}

const LayerKind* find_layer_kind(const std::string& name) {
  for (const LayerKind& k : layer_kinds())
    if (name == k.name) return &k;
  return nullptr;
}

std::string layer_kind_names() {
  std::string s;
  for (const LayerKind& k : layer_kinds()) s += (s.empty() ? "" : ", ") + std::string(k.name);
  return s;
}

void layer_shapes(const std::vector<LayerSpec>& spec, std::vector<ParamInfo>& params,
                  std::vector<ParamInfo>& buffers) {
  params.clear();
  buffers.clear();
  shapes_into(spec, params, buffers);
}

SpecTotals spec_totals(const std::vector<LayerSpec>& spec, const std::string& where) {
  SpecTotals t;
  totals_into(spec, where, t);
  return t;
}

bool spec_has_batch_statistics(const std::vector<LayerSpec>& spec) {
  for (const LayerSpec& s : spec)
    if (kind_of(s).batch_statistics || spec_has_batch_statistics(s.children)) return true;
  return false;
}

template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& s, int& counter) {
  if (s.in <= 0 || s.out <= 0)
    throw std::invalid_argument("layer '" + s.type + "' has a non-positive width");
  const LayerKind& k = kind_of(s);
  const int my_index = counter++;
  std::unique_ptr<Layer<T>> l;
  if constexpr (sizeof(T) == sizeof(float)) l = k.make_f32(s, counter);
  else l = k.make_f64(s, counter);
  l->index = my_index;
  return l;
}

template std::unique_ptr<Layer<float>> make_layer<float>(const LayerSpec&, int&);
template std::unique_ptr<Layer<double>> make_layer<double>(const LayerSpec&, int&);

}  // namespace fastbp
