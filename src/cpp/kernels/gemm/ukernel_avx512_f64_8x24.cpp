// avx512 GEMM kernels for f64: 8x24 register tile (8 rows x 3 vectors of 8), cache blocking
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

const GemmKernel<double> k_table = {
    "avx512_f64_8x24", 8, 24, 144, 512, 2048,
    &ukernel_simd<Avx512F64, 8, 3>, 8,
    {&ukernel_simd<Avx512F64, 8, 1, 3>, &ukernel_simd<Avx512F64, 8, 2, 3>,
     &ukernel_simd<Avx512F64, 8, 3, 3>},
    &pack_a_tmpl<double, 8>, &pack_b_avx512_f64<24>,
    &small_simd<Avx512F64, 6, 4>, 2097152};

}  // namespace

const GemmKernel<double>* kernel_avx512_f64() { return &k_table; }

}  // namespace gemm_detail
}  // namespace fastbp
