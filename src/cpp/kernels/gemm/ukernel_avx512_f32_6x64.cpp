// avx512 GEMM kernels for f32: 6x64 register tile (6 rows x 4 vectors of 16), cache blocking
// MC=144 KC=512 NC=2048 (Zen 4: 32 KiB L1d, 1 MiB L2 per core, shared L3), packing routines
// and the small direct path (blocks of up to 6 rows x 4 vectors), all built with this
// file's ISA flags. Shapes and packed layouts: see gemm_kernels.h.
#include "kernels/gemm/gemm_kernels.h"
#include "kernels/gemm/gemm_pack.h"
#include "kernels/gemm/gemm_simd_impl.h"
#include "kernels/gemm/pack_avx512.h"
#include "kernels/gemm/simd_avx512.h"

namespace fastbp {
namespace gemm_detail {
namespace {

const GemmKernel<float> k_table = {
    "avx512_f32_6x64", 6, 64, 144, 512, 2048,
    &ukernel_simd<Avx512F32, 6, 4>, 16,
    {&ukernel_simd<Avx512F32, 6, 1, 4>, &ukernel_simd<Avx512F32, 6, 2, 4>,
     &ukernel_simd<Avx512F32, 6, 3, 4>, &ukernel_simd<Avx512F32, 6, 4, 4>},
    &pack_a_tmpl<float, 6>, &pack_b_avx512_f32<64>,
    &small_simd<Avx512F32, 6, 4>, 2097152};

}  // namespace

const GemmKernel<float>* kernel_avx512_f32() { return &k_table; }

}  // namespace gemm_detail
}  // namespace fastbp
