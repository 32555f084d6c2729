// avx2 GEMM kernels for f64: 6x8 register tile (6 rows x 2 vectors of 4), cache blocking
// MC=144 KC=256 NC=2048 (Zen 4: 32 KiB L1d, 1 MiB L2 per core, shared L3), packing routines
// and the small direct path (blocks of up to 6 rows x 2 vectors), all built with this
// file's ISA flags. Shapes and packed layouts: see gemm_kernels.h.
#include "kernels/gemm/gemm_kernels.h"
#include "kernels/gemm/gemm_pack.h"
#include "kernels/gemm/gemm_simd_impl.h"

#include "kernels/gemm/simd_avx2.h"

namespace fastbp {
namespace gemm_detail {
namespace {

const GemmKernel<double> k_table = {
    "avx2_f64_6x8", 6, 8, 144, 256, 2048,
    &ukernel_simd<Avx2F64, 6, 2>, 4,
    {&ukernel_simd<Avx2F64, 6, 1, 2>, &ukernel_simd<Avx2F64, 6, 2, 2>},
    &pack_a_tmpl<double, 6>, &pack_b_tmpl<double, 8>,
    &small_simd<Avx2F64, 6, 2>, 1048576};

}  // namespace

const GemmKernel<double>* kernel_avx2_f64() { return &k_table; }

}  // namespace gemm_detail
}  // namespace fastbp
