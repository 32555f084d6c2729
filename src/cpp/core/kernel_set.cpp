#include "core/kernel_set.h"

#include <array>

namespace fastbp {

namespace {

// One init function per ISA (BLIS's bli_cntx_init_<arch>): the generic kernels, then the
// slots the ISA implements.
KernelSet init_generic() {
  KernelSet set;
  set.isa = Isa::generic;
  generic::register_optimizer_kernels(set);
  generic::register_norm_kernels(set);
  generic::register_finite_kernels(set);
  return set;
}

#if defined(FASTBP_HAVE_X86_KERNELS)
KernelSet init_avx2() {
  KernelSet set = init_generic();
  set.isa = Isa::avx2;
  avx2::register_optimizer_kernels(set);
  avx2::register_norm_kernels(set);
  avx2::register_finite_kernels(set);
  return set;
}

KernelSet init_avx512() {
  KernelSet set = init_generic();
  set.isa = Isa::avx512;
  avx512::register_optimizer_kernels(set);
  avx512::register_norm_kernels(set);
  avx512::register_finite_kernels(set);
  return set;
}
#endif

constexpr size_t kNumIsas = sizeof(kIsas) / sizeof(kIsas[0]);

// Sets of ISAs this build lacks stay generic (cpu_supports() never selects them).
std::array<KernelSet, kNumIsas> build_sets() {
  std::array<KernelSet, kNumIsas> sets;
  for (size_t i = 0; i < kNumIsas; ++i) sets[i] = init_generic();
#if defined(FASTBP_HAVE_X86_KERNELS)
  // An ISA's registration function is compiled with that ISA's flags (the compiler may use
  // its instructions even to fill the table): call it only on a CPU that has the ISA.
  if (cpu_supports(Isa::avx2)) sets[static_cast<int>(Isa::avx2)] = init_avx2();
  if (cpu_supports(Isa::avx512)) sets[static_cast<int>(Isa::avx512)] = init_avx512();
#endif
  return sets;
}

}  // namespace

const KernelSet& kernel_set(Isa isa) {
  static const std::array<KernelSet, kNumIsas> sets = build_sets();
  return sets[static_cast<int>(isa)];
}

}  // namespace fastbp
