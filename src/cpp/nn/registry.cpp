#include "nn/registry.h"

#include <stdexcept>

namespace fastbp {

namespace {

// Each registry lists its rows in enum order: row i is the kind with value i.
template <typename Row, size_t N, typename Field>
constexpr bool in_enum_order(const Row (&table)[N], Field Row::*kind) {
  for (size_t i = 0; i < N; ++i)
    if (static_cast<size_t>(table[i].*kind) != i) return false;
  return true;
}
static_assert(in_enum_order(kActivations, &ActInfo::act), "kActivations out of enum order");
static_assert(in_enum_order(kLosses, &LossInfo::kind), "kLosses out of enum order");
static_assert(in_enum_order(kOptimizers, &OptInfo::kind), "kOptimizers out of enum order");

// Row of `name` (already alias-resolved as `resolved`); std::invalid_argument if none.
template <typename Row, size_t N>
int lookup(const std::string& resolved, const std::string& name, const Row (&table)[N],
           const char* what) {
  const int i = find_name(resolved, table);
  if (i < 0)
    throw std::invalid_argument("unknown " + std::string(what) + " '" + name +
                                "'; expected one of " + joined_names(table));
  return i;
}

}  // namespace

Act act_from_name(const std::string& name) {
  return kActivations[lookup(resolve_alias(name, kActivationAliases), name, kActivations,
                             "activation")].act;
}

LossKind loss_from_name(const std::string& name) {
  return kLosses[lookup(resolve_alias(name, kLossAliases), name, kLosses, "loss")].kind;
}

OptKind opt_from_name(const std::string& name) {
  return kOptimizers[lookup(name, name, kOptimizers, "optimizer")].kind;
}

}  // namespace fastbp
