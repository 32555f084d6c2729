// avx512 GEMM config for f64: 8x24 register tile (8 rows x 3 vectors of 8), its
// cache model, packing routines and the small direct path (blocks of up to 6 rows x 4 vectors),
// all built with this file's ISA flags. Shapes, packed layouts and the cache model: gemm_kernels.h.
// Cache shares tuned on Zen 4 (32 KiB L1d, 1 MiB L2 per core, 32 MiB L3), where they give
// KC = 512, MC = 144, NC = 2040.
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
static_assert(has_transpose<Avx512F64>::value);

// Evaluated at compile time: no code built with this file's ISA flags runs at load time.
constexpr GemmConfig<double> make_config() {
  GemmConfig<double> c{};
  c.name = "avx512_f64_8x24";
  c.mr = 8;
  c.nr = 24;
  c.nr_step = 8;
  c.cache.kc_level = 2;  // the B micro-panel (KC x NR) lives in L2
  c.cache.kc_share = 0.09375;
  c.cache.kc_min = 128;
  c.cache.kc_max = 1024;
  c.cache.mc_share = 0.5625;
  c.cache.nc_share = 0.25;
  c.cache.nc_max = 8192;
  c.macro[0] = &macro_kernel<double, 8, &ukernel_simd<Avx512F64, 8, 1, 3>>;
  c.macro[1] = &macro_kernel<double, 8, &ukernel_simd<Avx512F64, 8, 2, 3>>;
  c.macro[2] = &macro_kernel<double, 8, &ukernel_simd<Avx512F64, 8, 3, 3>>;
  c.pack_a = &pack_a_tmpl<double, 8>;
  c.pack_b = &pack_b_avx512_f64<24>;
  c.small = &small_simd<Avx512F64, 6, 4>;
  c.tiny = &tiny_simd<Avx512F64>;
  c.small_mr = 6;
  c.small_max_work = 2097152;
  c.gemv = &gemv_simd<Avx512F64, 8>;
  // (24 accumulators, as the f32 config: 128x256x4 f64 unchanged, 256x256x3 4% faster, Zen 4)
  c.narrow = &narrow_simd<Avx512F64, 24, 4, 16>;
  c.narrow_max_n = narrow_dot_max_n<Avx512F64>();
  c.narrow_max_n_t = 16;
  c.peak = &fma_peak_simd<Avx512F64>;
  return c;
}

constexpr GemmConfig<double> k_config = make_config();

}  // namespace

const GemmConfig<double>* config_avx512_f64() { return &k_config; }

}  // namespace gemm_detail
}  // namespace fastbp
