// Name lookups of the registries. Each registry is one table, defined next to its enum:
//   activations  kActivations, kActivationAliases   kernels/activations.h
//   losses       kLosses, kLossAliases               kernels/losses.h
//   optimizers   kOptimizers, kClipHypers            kernels/optimizers.h
//   ISAs         kIsaNames                           core/cpu.h
//   layer kinds  layer_kinds()                       nn/layer_table.h
// Every parser of a name reads these tables, and fastbp._core.registry() exports them
// (bindings/bind_registry.cpp): nothing else spells a registered name or default.
#pragma once
#include <string>

#include "kernels/activations.h"
#include "kernels/losses.h"
#include "kernels/optimizers.h"

namespace fastbp {

// Name (or alias) -> kind; std::invalid_argument listing the registered names otherwise.
Act act_from_name(const std::string& name);
LossKind loss_from_name(const std::string& name);
OptKind opt_from_name(const std::string& name);

inline const char* act_name(Act act) { return act_info(act).name; }
inline const char* loss_name(LossKind kind) { return loss_info(kind).name; }
inline const char* opt_name(OptKind kind) { return opt_info(kind).name; }

}  // namespace fastbp
