// CPU feature detection and the instruction-set choice for the kernels.
#pragma once

namespace fastbp {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

bool cpu_supports(Isa isa);      // can this CPU (and this build) run kernels for `isa`?
Isa best_isa();                  // the fastest supported one
Isa active_isa();                // the one in use
void set_active_isa(Isa isa);    // throws std::invalid_argument if unsupported
const char* isa_name(Isa isa);   // "generic" | "avx2" | "avx512"
// Reads FASTBP_ISA (generic|avx2|avx512) once at import; throws std::invalid_argument with a
// clear message if the value is unknown or the CPU lacks the instruction set.
void init_isa_from_env();

}  // namespace fastbp
