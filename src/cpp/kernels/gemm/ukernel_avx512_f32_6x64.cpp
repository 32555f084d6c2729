// avx512 GEMM config for f32: 6x64 register tile (6 rows x 4 vectors of 16), its
// cache model, packing routines and the small direct path (blocks of up to 6 rows x 4 vectors),
// all built with this file's ISA flags. Shapes, packed layouts and the cache model: gemm_kernels.h.
// Cache shares tuned on Zen 4 (32 KiB L1d, 1 MiB L2 per core, 32 MiB L3), where they give
// KC = 512, MC = 144, NC = 2048.
#include "kernels/gemm/gemm_kernels.h"
#include "kernels/gemm/gemm_macro.h"
#include "kernels/gemm/gemm_pack.h"
#include "kernels/gemm/gemm_simd_impl.h"
#include "kernels/gemm/pack_avx512.h"
#include "kernels/gemm/simd_avx512.h"

namespace fastbp {
namespace gemm_detail {
namespace {

// (the small path's transposed B is copied in register tiles, not one element at a time)
static_assert(has_transpose<Avx512F32>::value);

// Evaluated at compile time: no code built with this file's ISA flags runs at load time.
constexpr GemmConfig<float> make_config() {
  GemmConfig<float> c{};
  c.name = "avx512_f32_6x64";
  c.mr = 6;
  c.nr = 64;
  c.nr_step = 16;
  c.cache.kc_level = 2;  // the B micro-panel (KC x NR) lives in L2
  c.cache.kc_share = 0.125;
  c.cache.kc_min = 128;
  c.cache.kc_max = 1024;
  c.cache.mc_share = 0.28125;
  c.cache.nc_share = 0.125;
  c.cache.nc_max = 8192;
  c.macro[0] = &macro_kernel<float, 6, &ukernel_simd<Avx512F32, 6, 1, 4>>;
  c.macro[1] = &macro_kernel<float, 6, &ukernel_simd<Avx512F32, 6, 2, 4>>;
  c.macro[2] = &macro_kernel<float, 6, &ukernel_simd<Avx512F32, 6, 3, 4>>;
  c.macro[3] = &macro_kernel<float, 6, &ukernel_simd<Avx512F32, 6, 4, 4>>;
  c.pack_a = &pack_a_tmpl<float, 6>;
  c.pack_b = &pack_b_avx512_f32<64>;
  c.small = &small_simd<Avx512F32, 6, 4>;
  c.tiny = &tiny_simd<Avx512F32>;
  c.small_mr = 6;
  c.small_max_work = 2097152;
  c.gemv = &gemv_simd<Avx512F32, 8>;
  // (24 accumulators of the 32 registers: 16 took 128x256x5 in 5.7 us, 24 in 4.6, numpy.matmul
  // 5.1; 128x256x4 and 256x256x3 4-10% faster, Zen 4)
  c.narrow = &narrow_simd<Avx512F32, 24, 4, 16>;
  c.narrow_max_n = narrow_dot_max_n<Avx512F32>();
  c.narrow_max_n_t = 16;
  c.peak = &fma_peak_simd<Avx512F32>;
  return c;
}

constexpr GemmConfig<float> k_config = make_config();

}  // namespace

const GemmConfig<float>* config_avx512_f32() { return &k_config; }

}  // namespace gemm_detail
}  // namespace fastbp
