// Bindings of the registries: registry() exports every table (nn/registry.h lists them) as
// plain Python data; layer_shapes(spec) the arena layout of a spec from the layer table.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/spec_parse.h"
#include "core/cpu.h"
#include "nn/layer_table.h"
#include "nn/registry.h"

namespace py = pybind11;

namespace fastbp {

namespace {

template <size_t N>
py::dict aliases(const NameAlias (&table)[N]) {
  py::dict d;
  for (const NameAlias& a : table) d[a.alias] = a.name;
  return d;
}

py::dict activations() {
  py::dict out;
  for (const ActInfo& a : kActivations) {
    py::dict params;
    if (a.param) params[a.param] = a.param_default;
    out[a.name] = py::dict(py::arg("params") = params, py::arg("needs_z") = a.needs_z);
  }
  return out;
}

py::dict losses() {
  py::dict out;
  for (const LossInfo& l : kLosses) {
    py::dict params;
    if (l.param) params[l.param] = l.param_default;
    out[l.name] = py::dict(py::arg("params") = params, py::arg("labels") = l.labels);
  }
  return out;
}

py::object hyper_default(const HyperDef& d) {
  if (d.type == HyperType::flag) return py::bool_(d.dflt != 0.0);
  if (d.type == HyperType::clip) return py::none();
  return py::float_(d.dflt);
}

py::dict optimizers() {
  py::dict out;
  for (const OptInfo& o : kOptimizers) {
    py::dict hyper;
    for (const HyperDef& d : o.hyper)
      if (d.name) hyper[d.name] = hyper_default(d);
    for (const HyperDef& d : kClipHypers) hyper[d.name] = hyper_default(d);
    py::list state;
    for (const StateDef& s : o.state)
      if (s.kept) state.append(kStateSlotNames[static_cast<int>(s.slot)]);
    out[o.name] = py::dict(py::arg("hyper") = hyper, py::arg("state") = state);
  }
  return out;
}

py::object field_default(const FieldDef& f) {
  switch (f.type) {
    case FieldType::activation: return py::str(act_name(Act::identity));
    case FieldType::real: return py::float_(f.dflt);
    default: return py::none();  // required, or a default that depends on other fields
  }
}

py::dict layers() {
  py::dict out;
  for (const LayerKind& k : layer_kinds()) {
    py::dict fields;
    for (const FieldDef& f : k.fields) fields[f.name] = field_default(f);
    py::list params, buffers;
    for (const ArrayDef& a : k.params) {
      py::list pair;
      pair.append(a.name);
      pair.append(a.penalised);
      params.append(pair);
    }
    for (const ArrayDef& a : k.buffers) buffers.append(a.name);
    out[k.name] = py::dict(py::arg("fields") = fields, py::arg("params") = params,
                           py::arg("buffers") = buffers);
  }
  return out;
}

py::list isas() {
  py::list out;
  for (const IsaInfo& i : kIsas) out.append(i.name);
  return out;
}

py::tuple shape_tuple(const ParamInfo& p) {
  py::tuple t(p.shape.size());
  for (size_t i = 0; i < p.shape.size(); ++i) t[i] = p.shape[i];
  return t;
}

}  // namespace

void bind_registry(py::module_& m) {
  m.def("registry", []() {
    py::dict r;
    r["activations"] = activations();
    r["activation_aliases"] = aliases(kActivationAliases);
    r["losses"] = losses();
    r["loss_aliases"] = aliases(kLossAliases);
    r["optimizers"] = optimizers();
    r["layers"] = layers();
    r["isas"] = isas();
    return r;
  }, "The registries: names, aliases, defaults and layouts, as plain Python data.");
  m.def("layer_shapes", [](const py::object& spec) {
    const std::vector<LayerSpec> parsed = parse_spec(spec);
    spec_totals(parsed);  // refuses sizes that overflow int64
    std::vector<ParamInfo> params, buffers;
    layer_shapes(parsed, params, buffers);
    py::list p, b;
    for (const ParamInfo& i : params) p.append(py::make_tuple(i.name, shape_tuple(i), i.penalised));
    for (const ParamInfo& i : buffers) b.append(py::make_tuple(i.name, shape_tuple(i)));
    return py::dict(py::arg("params") = p, py::arg("buffers") = b);
  }, py::arg("spec"), "The parameters (name, shape, penalised) and buffers (name, shape) of a "
     "layer spec, in arena order.");
}

}  // namespace fastbp
