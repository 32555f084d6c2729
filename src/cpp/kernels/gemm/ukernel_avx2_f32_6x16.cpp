// avx2 GEMM kernels for f32: 6x16 register tile (6 rows x 2 vectors of 8), cache blocking
// MC=144 KC=256 NC=4096 (Zen 4: 32 KiB L1d, 1 MiB L2 per core, shared L3), packing routines
// and the small direct path (blocks of up to 6 rows x 2 vectors), all built with this
// file's ISA flags. Shapes and packed layouts: see gemm_kernels.h.
#include "kernels/gemm/gemm_kernels.h"
#include "kernels/gemm/gemm_pack.h"
#include "kernels/gemm/gemm_simd_impl.h"

#include "kernels/gemm/simd_avx2.h"

namespace fastbp {
namespace gemm_detail {
namespace {

const GemmKernel<float> k_table = {
    "avx2_f32_6x16", 6, 16, 144, 256, 4096,
    &ukernel_simd<Avx2F32, 6, 2>, 8,
    {&ukernel_simd<Avx2F32, 6, 1, 2>, &ukernel_simd<Avx2F32, 6, 2, 2>},
    &pack_a_tmpl<float, 6>, &pack_b_tmpl<float, 16>,
    &small_simd<Avx2F32, 6, 2>, 1048576};

}  // namespace

const GemmKernel<float>* kernel_avx2_f32() { return &k_table; }

}  // namespace gemm_detail
}  // namespace fastbp
