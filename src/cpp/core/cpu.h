// CPU feature detection and the instruction-set choice for the kernels.
#pragma once
#include <string>

namespace fastbp {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

// The ISA registry, one row per Isa in enum order (fastbp._core.registry()["isas"]).
struct IsaInfo {
  Isa isa;
  const char* name;
};
inline constexpr IsaInfo kIsas[] = {
    {Isa::generic, "generic"}, {Isa::avx2, "avx2"}, {Isa::avx512, "avx512"}};

bool cpu_supports(Isa isa);      // can this CPU (and this build) run kernels for `isa`?
Isa best_isa();                  // the fastest supported one
Isa active_isa();                // the one in use
void set_active_isa(Isa isa);    // throws std::invalid_argument if unsupported
const char* isa_name(Isa isa);   // kIsas[isa].name
// The one parser of ISA names; std::invalid_argument naming `what` and the known names.
Isa isa_from_name(const std::string& name, const std::string& what);
// Reads FASTBP_ISA (a kIsas name) once at import; throws std::invalid_argument with a
// clear message if the value is unknown or the CPU lacks the instruction set.
void init_isa_from_env();

}  // namespace fastbp
