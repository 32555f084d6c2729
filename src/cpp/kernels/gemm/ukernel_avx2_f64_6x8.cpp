// avx2 GEMM config for f64: 6x8 register tile (6 rows x 2 vectors of 4), its
// cache model, packing routines and the small direct path (blocks of up to 6 rows x 2 vectors),
// all built with this file's ISA flags. Shapes, packed layouts and the cache model: gemm_kernels.h.
// Cache shares tuned on Zen 4 (32 KiB L1d, 1 MiB L2 per core, 32 MiB L3), where they give
// KC = 256, MC = 144, NC = 2048.
#include "kernels/gemm/gemm_kernels.h"
#include "kernels/gemm/gemm_macro.h"
#include "kernels/gemm/gemm_pack.h"
#include "kernels/gemm/gemm_simd_impl.h"

#include "kernels/gemm/simd_avx2.h"

namespace fastbp {
namespace gemm_detail {
namespace {

// (the small path's transposed B is copied in register tiles, not one element at a time)
static_assert(has_transpose<Avx2F64>::value);

// Evaluated at compile time: no code built with this file's ISA flags runs at load time.
constexpr GemmConfig<double> make_config() {
  GemmConfig<double> c{};
  c.name = "avx2_f64_6x8";
  c.mr = 6;
  c.nr = 8;
  c.nr_step = 4;
  c.cache.kc_level = 1;  // the B micro-panel (KC x NR) lives in L1
  c.cache.kc_share = 0.5;
  c.cache.kc_min = 128;
  c.cache.kc_max = 1024;
  c.cache.mc_share = 0.28125;
  c.cache.nc_share = 0.125;
  c.cache.nc_max = 8192;
  c.macro[0] = &macro_kernel<double, 6, &ukernel_simd<Avx2F64, 6, 1, 2>>;
  c.macro[1] = &macro_kernel<double, 6, &ukernel_simd<Avx2F64, 6, 2, 2>>;
  c.pack_a = &pack_a_tmpl<double, 6>;
  c.pack_b = &pack_b_tmpl<double, 8>;
  c.small = &small_simd<Avx2F64, 6, 2>;
  c.tiny = &tiny_simd<Avx2F64>;
  c.small_mr = 6;
  c.small_max_work = 1048576;
  c.gemv = &gemv_simd<Avx2F64, 8>;
  c.narrow = &narrow_simd<Avx2F64, 8, 2, 8>;
  c.narrow_max_n = narrow_dot_max_n<Avx2F64>();
  c.narrow_max_n_t = 8;
  c.peak = &fma_peak_simd<Avx2F64>;
  return c;
}

constexpr GemmConfig<double> k_config = make_config();

}  // namespace

const GemmConfig<double>* config_avx2_f64() { return &k_config; }

}  // namespace gemm_detail
}  // namespace fastbp
