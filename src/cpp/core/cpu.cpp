#include "core/cpu.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core/names.h"
#include "core/platform.h"

namespace fastbp {

namespace {
Isa g_active = Isa::generic;
}

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::generic:
      return true;
#if defined(FASTBP_HAVE_X86_KERNELS)
    case Isa::avx2: {
      const CpuFeatures& f = cpu_features();
      return f.avx2 && f.fma;
    }
    case Isa::avx512: {
      const CpuFeatures& f = cpu_features();
      return f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.fma;
    }
#endif
    default:
      return false;
  }
}

Isa best_isa() {
  if (cpu_supports(Isa::avx512)) return Isa::avx512;
  if (cpu_supports(Isa::avx2)) return Isa::avx2;
  return Isa::generic;
}

Isa active_isa() { return g_active; }

const char* isa_name(Isa isa) { return kIsas[static_cast<int>(isa)].name; }

Isa isa_from_name(const std::string& name, const std::string& what) {
  const int i = find_name(name, kIsas);
  if (i < 0)
    throw std::invalid_argument(what + "='" + name + "' is not one of " + joined_names(kIsas));
  return kIsas[i].isa;
}

void set_active_isa(Isa isa) {
  if (!cpu_supports(isa))
    throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) +
                                "' is not supported by this CPU or this build");
  g_active = isa;
}

void init_isa_from_env() {
  const char* env = std::getenv("FASTBP_ISA");
  if (env == nullptr || *env == '\0') {
    g_active = best_isa();
    return;
  }
  const std::string v(env);
  const Isa want = isa_from_name(v, "FASTBP_ISA");
  if (!cpu_supports(want))
    throw std::invalid_argument("FASTBP_ISA=" + v +
                                " was requested but this CPU (or this build) lacks it");
  g_active = want;
}

}  // namespace fastbp
