// Shared shape of the name tables (the registries in kernels/activations.h, kernels/losses.h,
// kernels/optimizers.h, core/cpu.h and nn/layer_table.h).
#pragma once
#include <string>

namespace fastbp {

// An accepted alternative spelling of a registered name.
struct NameAlias {
  const char* alias;
  const char* name;
};

// The registered name `name` stands for after resolving aliases (itself when it is no alias).
template <size_t N>
std::string resolve_alias(const std::string& name, const NameAlias (&aliases)[N]) {
  for (const auto& a : aliases)
    if (name == a.alias) return a.name;
  return name;
}

// Index of the row whose .name equals `name` in a registry table, or -1.
template <typename Row, size_t N>
int find_name(const std::string& name, const Row (&table)[N]) {
  for (size_t i = 0; i < N; ++i)
    if (name == table[i].name) return int(i);
  return -1;
}

// "a, b, c": the names of a registry table, for error messages.
template <typename Row, size_t N>
std::string joined_names(const Row (&table)[N]) {
  std::string s;
  for (size_t i = 0; i < N; ++i) s += (i ? ", " : "") + std::string(table[i].name);
  return s;
}

}  // namespace fastbp
