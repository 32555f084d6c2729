#include "bindings/spec_parse.h"

#include <stdexcept>

#include "bindings/convert.h"
#include "nn/layer_table.h"
#include "nn/registry.h"

namespace fastbp {

namespace {

constexpr int kMaxDepth = 64;  // residual nesting (recursion in parse, forward, backward)

LayerSpec parse_layer(const py::handle& h, const std::string& where, int depth);

std::vector<LayerSpec> parse_list(const py::handle& layers, const std::string& where,
                                  int depth) {
  std::vector<LayerSpec> out;
  int i = 0;
  for (auto c : layers) out.push_back(parse_layer(c, where + "[" + std::to_string(i++) + "]", depth));
  return out;
}

int64_t required_int(const py::dict& d, const char* key, const LayerSpec& s,
                     const std::string& w) {
  if (!d.contains(key))
    throw std::invalid_argument(w + ": layer '" + s.type + "' needs '" + key + "'");
  return to_pos_int(d[key], w + "['" + key + "']");
}

Act parse_activation(const py::dict& d, const char* key, const std::string& w) {
  if (!d.contains(key) || d[key].is_none()) return Act::identity;
  py::object a = d[key];
  if (!PyUnicode_Check(a.ptr()))
    throw std::invalid_argument(w + "['" + key + "'] must be a string, got " + repr_of(a));
  return act_from_name(a.cast<std::string>());
}

std::vector<LayerSpec> parse_children(const py::dict& d, const char* key, const std::string& w,
                                      int depth) {
  if (!d.contains(key)) throw std::invalid_argument(w + ": residual needs '" + key + "'");
  py::object layers = d[key];
  if (!py::isinstance<py::list>(layers) && !py::isinstance<py::tuple>(layers))
    throw std::invalid_argument(w + "['" + key + "'] must be a list of layer dicts");
  return parse_list(layers, w + "['" + key + "']", depth + 1);
}

void parse_field(const FieldDef& f, const py::dict& d, LayerSpec& s, const std::string& w,
                 int depth) {
  switch (f.type) {
    case FieldType::width: s.*f.width = required_int(d, f.name, s, w); return;
    case FieldType::dim: s.in = s.out = required_int(d, f.name, s, w); return;
    case FieldType::activation: s.act = parse_activation(d, f.name, w); return;
    case FieldType::alpha: {
      const ActInfo& a = act_info(s.act);
      s.*f.real = dget(d, f.name, a.param ? a.param_default : 0.0, w);
      return;
    }
    case FieldType::real: s.*f.real = dget(d, f.name, f.dflt, w); return;
    case FieldType::text: return;
    case FieldType::layers: s.children = parse_children(d, f.name, w, depth); return;
  }
}

LayerSpec parse_layer(const py::handle& h, const std::string& where, int depth) {
  if (depth > kMaxDepth)
    throw std::invalid_argument("spec: residual blocks nested deeper than " +
                                std::to_string(kMaxDepth) + " levels");
  const std::string w = "spec" + where;
  if (!py::isinstance<py::dict>(h)) throw py::type_error(w + " must be a dict, got " + type_name(h));
  py::dict d = py::reinterpret_borrow<py::dict>(h);
  if (!d.contains("type")) throw std::invalid_argument(w + " has no 'type'");
  py::object type = d["type"];
  if (!PyUnicode_Check(type.ptr()))
    throw std::invalid_argument(w + "['type'] must be a string, got " + repr_of(type));
  LayerSpec s;
  s.type = type.cast<std::string>();
  const LayerKind* kind = find_layer_kind(s.type);
  if (!kind)
    throw std::invalid_argument(w + ": unknown layer type '" + s.type + "'; expected one of " +
                                layer_kind_names());
  for (const FieldDef& f : kind->fields) parse_field(f, d, s, w, depth);
  return s;
}

void read_hyper(const py::dict& h, const HyperDef& def, OptConfig& c) {
  const std::string key = std::string("hyper['") + def.name + "']";
  if (def.type == HyperType::flag) {
    c.*def.flag = bget(h, def.name, def.dflt != 0.0, "hyper");
    return;
  }
  const double x = dget(h, def.name, def.dflt, "hyper");
  if (def.type == HyperType::clip && h.contains(def.name) && !h[def.name].is_none() &&
      !(x > 0.0))
    throw std::invalid_argument(key + " must be a positive finite number");
  if (def.type == HyperType::nonneg && !(x >= 0.0))
    throw std::invalid_argument(key + " must be >= 0, got " + std::to_string(x));
  if (def.type == HyperType::unit && !(x >= 0.0 && x < 1.0))
    throw std::invalid_argument(key + " must be in [0, 1), got " + std::to_string(x));
  c.*def.field = x;
}

// The rows of an optimizer's hyper-parameters: its own, then kClipHypers.
template <typename F>
void for_each_hyper(const OptInfo& info, F&& f) {
  for (const HyperDef& d : info.hyper)
    if (d.name) f(d);
  for (const HyperDef& d : kClipHypers) f(d);
}

}  // namespace

std::vector<LayerSpec> parse_spec(const py::handle& spec) {
  if (!py::isinstance<py::list>(spec) && !py::isinstance<py::tuple>(spec))
    throw py::type_error("spec must be a list of layer dicts");
  return parse_list(spec, "", 0);
}

OptConfig parse_opt(const std::string& name, const py::dict& h) {
  OptConfig c;
  c.kind = opt_from_name(name);
  const OptInfo& info = opt_info(c.kind);
  std::string allowed;
  for_each_hyper(info, [&](const HyperDef& d) { allowed += (allowed.empty() ? "" : ", ") + std::string(d.name); });
  for (auto item : h) {
    const std::string k = py::str(item.first);
    bool known = false;
    for_each_hyper(info, [&](const HyperDef& d) { known = known || k == d.name; });
    if (!known)
      throw std::invalid_argument("hyper has an unknown key '" + k + "' for optimizer '" +
                                  name + "'; allowed: " + allowed);
  }
  for_each_hyper(info, [&](const HyperDef& d) { read_hyper(h, d, c); });
  if (c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0))
    throw std::invalid_argument("nesterov momentum requires a momentum and zero dampening");
  return c;
}

LossArgs parse_loss(const std::string& name, const py::dict& p, PenaltyArgs& pen) {
  LossArgs a;
  a.kind = loss_from_name(name);
  for (auto item : p) {
    const std::string k = py::str(item.first);
    bool known = k == "l1" || k == "l2";
    for (const LossInfo& l : kLosses) known = known || (l.param && k == l.param);
    if (!known) {
      std::string allowed;
      for (const LossInfo& l : kLosses)
        if (l.param) allowed += std::string(l.param) + ", ";
      throw std::invalid_argument("loss_params has an unknown key '" + k + "'; allowed: " +
                                  allowed + "l1, l2");
    }
  }
  for (const LossInfo& l : kLosses) {
    if (!l.param) continue;
    const double x = dget(p, l.param, l.param_default, "loss_params");
    if (!(x > 0.0))
      throw std::invalid_argument(std::string("loss_params['") + l.param + "'] must be > 0");
    if (l.kind == a.kind) a.*l.param_field = x;
  }
  pen.l1 = dget(p, "l1", 0.0, "loss_params");
  pen.l2 = dget(p, "l2", 0.0, "loss_params");
  if (pen.l1 < 0.0 || pen.l2 < 0.0) throw std::invalid_argument("l1 and l2 must be >= 0");
  return a;
}

}  // namespace fastbp
