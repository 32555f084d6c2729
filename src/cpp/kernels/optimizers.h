// Optimizers: one flat pass over the whole parameter arena (torch.optim update rules).
//   param, grad: (count);  state arrays: (count) each, named as torch names them.
// The grad array may be modified (weight decay is folded into it, as torch does).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/stream_vector.h"

namespace fastbp {

enum class OptKind : int { sgd = 0, adam, adamw, rmsprop, adagrad };

struct OptConfig {
  OptKind kind = OptKind::sgd;
  double lr = 1e-3;
  double momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
  double alpha = 0.99;  // rmsprop smoothing
  bool centered = false;
  double lr_decay = 0.0, initial_accumulator_value = 0.0;  // adagrad
  double clip_value = 0.0;  // > 0: clamp every gradient to [-v, v]
  double clip_norm = 0.0;   // > 0: rescale the gradient to this global L2 norm at most
};

// Whether an update writes into the gradient beyond scaling it: the coupled weight decay of
// SGD, RMSprop and Adagrad adds wd * p to it in place (Adam and AdamW form theirs in
// registers; clipping only scales, so a zero stays zero).
inline bool opt_writes_gradient(const OptConfig& c) {
  return c.weight_decay != 0.0 && c.kind != OptKind::adam && c.kind != OptKind::adamw;
}

// Every state array an optimizer may keep (torch's names, kStateSlotNames).
enum class StateSlot : int {
  momentum_buffer = 0, exp_avg, exp_avg_sq, max_exp_avg_sq, square_avg, grad_avg, sum
};
inline constexpr int kNumStateSlots = 7;
inline constexpr const char* kStateSlotNames[kNumStateSlots] = {
    "momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "grad_avg",
    "sum"};

// How a hyper-parameter is read and checked:
//   nonneg: a finite real >= 0;  real: any finite real;  unit: a finite real in [0, 1);
//   flag: a bool;  clip: None/absent (off) or a finite real > 0.
enum class HyperType : int { nonneg, real, unit, flag, clip };
struct HyperDef {
  const char* name;  // nullptr ends a row's list
  HyperType type;
  double dflt;                 // flag: 0 or 1; clip: 0 (off)
  double OptConfig::*field;    // real-valued types
  bool OptConfig::*flag;       // HyperType::flag
};
// A state array and when it is kept (its initial value: `init`, or 0 when null).
struct StateDef {
  StateSlot slot;
  bool (*kept)(const OptConfig&);  // nullptr ends a row's list
  double OptConfig::*init;
};
inline bool opt_always(const OptConfig&) { return true; }
inline bool opt_with_momentum(const OptConfig& c) { return c.momentum != 0.0; }
inline bool opt_with_amsgrad(const OptConfig& c) { return c.amsgrad; }
inline bool opt_with_centered(const OptConfig& c) { return c.centered; }

// The optimizer registry, one row per OptKind in enum order (nn/registry.cpp parses names and
// hyper-parameters with it, fastbp._core.registry() exports it): the name, the
// hyper-parameters in torch's argument order with torch's defaults, and the state arrays.
// kClipHypers follow every optimizer's own hyper-parameters.
struct OptInfo {
  OptKind kind;
  const char* name;
  HyperDef hyper[7];
  StateDef state[4];
};
namespace opt_table {
using HT = HyperType;
using OC = OptConfig;
inline constexpr OptInfo kOptimizers[] = {
    {OptKind::sgd, "sgd",
     {{"lr", HT::nonneg, 1e-3, &OC::lr, nullptr},
      {"momentum", HT::nonneg, 0.0, &OC::momentum, nullptr},
      {"dampening", HT::real, 0.0, &OC::dampening, nullptr},
      {"weight_decay", HT::nonneg, 0.0, &OC::weight_decay, nullptr},
      {"nesterov", HT::flag, 0.0, nullptr, &OC::nesterov}},
     {{StateSlot::momentum_buffer, &opt_with_momentum, nullptr}}},
    {OptKind::adam, "adam",
     {{"lr", HT::nonneg, 1e-3, &OC::lr, nullptr},
      {"beta1", HT::unit, 0.9, &OC::beta1, nullptr},
      {"beta2", HT::unit, 0.999, &OC::beta2, nullptr},
      {"eps", HT::nonneg, 1e-8, &OC::eps, nullptr},
      {"weight_decay", HT::nonneg, 0.0, &OC::weight_decay, nullptr},
      {"amsgrad", HT::flag, 0.0, nullptr, &OC::amsgrad}},
     {{StateSlot::exp_avg, &opt_always, nullptr},
      {StateSlot::exp_avg_sq, &opt_always, nullptr},
      {StateSlot::max_exp_avg_sq, &opt_with_amsgrad, nullptr}}},
    {OptKind::adamw, "adamw",
     {{"lr", HT::nonneg, 1e-3, &OC::lr, nullptr},
      {"beta1", HT::unit, 0.9, &OC::beta1, nullptr},
      {"beta2", HT::unit, 0.999, &OC::beta2, nullptr},
      {"eps", HT::nonneg, 1e-8, &OC::eps, nullptr},
      {"weight_decay", HT::nonneg, 1e-2, &OC::weight_decay, nullptr},
      {"amsgrad", HT::flag, 0.0, nullptr, &OC::amsgrad}},
     {{StateSlot::exp_avg, &opt_always, nullptr},
      {StateSlot::exp_avg_sq, &opt_always, nullptr},
      {StateSlot::max_exp_avg_sq, &opt_with_amsgrad, nullptr}}},
    {OptKind::rmsprop, "rmsprop",
     {{"lr", HT::nonneg, 1e-2, &OC::lr, nullptr},
      {"alpha", HT::nonneg, 0.99, &OC::alpha, nullptr},
      {"eps", HT::nonneg, 1e-8, &OC::eps, nullptr},
      {"weight_decay", HT::nonneg, 0.0, &OC::weight_decay, nullptr},
      {"momentum", HT::nonneg, 0.0, &OC::momentum, nullptr},
      {"centered", HT::flag, 0.0, nullptr, &OC::centered}},
     {{StateSlot::square_avg, &opt_always, nullptr},
      {StateSlot::momentum_buffer, &opt_with_momentum, nullptr},
      {StateSlot::grad_avg, &opt_with_centered, nullptr}}},
    {OptKind::adagrad, "adagrad",
     {{"lr", HT::nonneg, 1e-2, &OC::lr, nullptr},
      {"lr_decay", HT::nonneg, 0.0, &OC::lr_decay, nullptr},
      {"weight_decay", HT::nonneg, 0.0, &OC::weight_decay, nullptr},
      {"initial_accumulator_value", HT::nonneg, 0.0, &OC::initial_accumulator_value, nullptr},
      {"eps", HT::nonneg, 1e-10, &OC::eps, nullptr}},
     {{StateSlot::sum, &opt_always, &OC::initial_accumulator_value}}},
};
inline constexpr HyperDef kClipHypers[] = {
    {"clip_norm", HT::clip, 0.0, &OC::clip_norm, nullptr},
    {"clip_value", HT::clip, 0.0, &OC::clip_value, nullptr}};
}  // namespace opt_table
using opt_table::kClipHypers;
using opt_table::kOptimizers;
inline constexpr int kNumOptKinds = int(sizeof(kOptimizers) / sizeof(kOptimizers[0]));

inline const OptInfo& opt_info(OptKind kind) { return kOptimizers[static_cast<int>(kind)]; }

// Typed pointers to the state arrays of one range of the arena, indexed by slot (nullptr: the
// configuration keeps no such array). Built once per step; the update loops read only these.
template <typename T>
struct OptSlots {
  T* p[kNumStateSlots] = {};
  T* operator[](StateSlot s) const { return p[static_cast<int>(s)]; }
  OptSlots offset(int64_t k) const {
    OptSlots o;
    for (int i = 0; i < kNumStateSlots; ++i) o.p[i] = p[i] ? p[i] + k : nullptr;
    return o;
  }
};

// The state of an optimizer: the arrays its configuration keeps, in registry order.
template <typename T>
struct OptState {
  int64_t step = 0;
  std::vector<StateSlot> slots;        // which array each entry of `arrays` is
  std::vector<StreamVector<T>> arrays;  // one per slot, each `count` long (staggered starts)
  std::vector<std::string> names() const;
  OptSlots<T> pointers();
};

// The state arrays a configuration keeps (registry order), with their initial values.
std::vector<std::pair<StateSlot, double>> opt_state_layout(const OptConfig& cfg);

// Clip by value, then by global norm; returns the global norm before norm-clipping.
template <typename T>
double clip_gradients(T* grad, int64_t count, const OptConfig& cfg);

// Below this many parameters a parallel region costs more than it saves (opt_step).
inline constexpr int64_t kOptRegionMinParams = int64_t(1) << 16;

// The threads of the region an update of n parameters opens for itself off any team: 1 (none)
// below kOptRegionMinParams, inside another region, or unless may_open_region.
int opt_region_threads(int64_t n, bool may_open_region);

// In a team (core/team.h) every thread updates its share; otherwise an arena of >=
// kOptRegionMinParams parameters is split over the threads of a region of its own unless
// !may_open_region.
// vector_tail: the arena's last elements too are updated by the loop's vector body
// (opt_range, core/kernel_set.h), as the fused update does.
// shared: (a team) every thread of it read all the parameters since their last update (a
// step shared by batch rows, nn/network_rows.cpp): the update's stores go around the caches
// where the kernel set has such a form (KernelSlots::opt_step_shared); the same bits.
template <typename T>
void opt_step(T* param, T* grad, int64_t count, const OptConfig& cfg, OptState<T>& state,
              bool may_open_region = true, bool vector_tail = false, bool shared = false);

}  // namespace fastbp
