// Cache sizes from the OS, the blocking derived from them, and the per-ISA kernel lookup
// (contracts: gemm_kernels.h).
#include <cstdint>

#include "core/cpu.h"
#include "kernels/gemm/gemm_kernels.h"

#if defined(_WIN32)
#include <windows.h>
#include <vector>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#elif defined(__linux__)
#include <unistd.h>

#include <cstdio>
#endif

namespace fastbp {
namespace gemm_detail {
namespace {

#if defined(__linux__)
// /sys/devices/system/cpu/cpu0/cache/index<i>/{level,type,size}: size like "32K" or "1024K".
int64_t sysfs_cache(int want_level, bool want_data) {
  for (int i = 0; i < 8; ++i) {
    char path[96];
    int level = 0;
    char type[32] = {0};
    std::snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) break;
    const bool ok_level = std::fscanf(f, "%d", &level) == 1;
    std::fclose(f);
    std::snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    f = std::fopen(path, "r");
    if (f == nullptr) continue;
    const bool ok_type = std::fscanf(f, "%31s", type) == 1;
    std::fclose(f);
    if (!ok_level || !ok_type || level != want_level) continue;
    const bool is_data = type[0] == 'D' || type[0] == 'U';  // "Data" or "Unified"
    if (want_data && !is_data) continue;
    std::snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    f = std::fopen(path, "r");
    if (f == nullptr) continue;
    long long v = 0;
    char unit = 0;
    const int got = std::fscanf(f, "%lld%c", &v, &unit);
    std::fclose(f);
    if (got < 1 || v <= 0) continue;
    if (got == 2 && (unit == 'K' || unit == 'k')) v *= 1024;
    if (got == 2 && (unit == 'M' || unit == 'm')) v *= 1024 * 1024;
    return int64_t(v);
  }
  return 0;
}

// sysfs first: glibc's sysconf derives L3 from CPUID, which hypervisors report inconsistently
// (a 32 MiB L3 read as 320 MiB on a cloud Zen 4 guest).
int64_t os_cache(int level) {
  const int64_t from_sysfs = sysfs_cache(level, true);
  if (from_sysfs > 0) return from_sysfs;
  long v = 0;
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  if (level == 1) v = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  if (level == 2) v = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (level == 3) v = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  return v > 0 ? int64_t(v) : 0;
}
#elif defined(__APPLE__)
int64_t os_cache(int level) {
  const char* name = level == 1 ? "hw.l1dcachesize" : level == 2 ? "hw.l2cachesize"
                                                                  : "hw.l3cachesize";
  int64_t v = 0;
  size_t len = sizeof(v);
  if (sysctlbyname(name, &v, &len, nullptr, 0) != 0) return 0;
  return v > 0 ? v : 0;
}
#elif defined(_WIN32)
int64_t os_cache(int level) {
  DWORD bytes = 0;
  GetLogicalProcessorInformation(nullptr, &bytes);
  if (bytes == 0) return 0;
  std::vector<SYSTEM_LOGICAL_PROCESSOR_INFORMATION> info(bytes / sizeof(info[0]));
  if (!GetLogicalProcessorInformation(info.data(), &bytes)) return 0;
  for (const auto& e : info)
    if (e.Relationship == RelationCache && e.Cache.Level == level &&
        (e.Cache.Type == CacheData || e.Cache.Type == CacheUnified))
      return int64_t(e.Cache.Size);
  return 0;
}
#else
int64_t os_cache(int) { return 0; }
#endif

CacheSizes read_cache_sizes() {
  const int64_t l1 = os_cache(1), l2 = os_cache(2), l3 = os_cache(3);
  CacheSizes c = kFallbackCaches;
  c.from_os = l1 > 0 || l2 > 0 || l3 > 0;
  if (l1 > 0) c.l1d = l1;
  if (l2 > 0) c.l2 = l2;
  if (l3 > 0) c.l3 = l3;
  if (c.l3 < c.l2) c.l3 = c.l2;  // no L3: the B block is bounded by L2 instead
  return c;
}

int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// The largest K measured on the narrow small path.
constexpr int64_t kNarrowMaxK = 2048;

template <typename T>
const GemmConfig<T>* config_for(Isa isa);
template <>
const GemmConfig<float>* config_for<float>(Isa isa) {
#if defined(FASTBP_HAVE_X86_KERNELS)
  if (isa == Isa::avx512) return config_avx512_f32();
  if (isa == Isa::avx2) return config_avx2_f32();
#endif
  (void)isa;
  return config_generic_f32();
}
template <>
const GemmConfig<double>* config_for<double>(Isa isa) {
#if defined(FASTBP_HAVE_X86_KERNELS)
  if (isa == Isa::avx512) return config_avx512_f64();
  if (isa == Isa::avx2) return config_avx2_f64();
#endif
  (void)isa;
  return config_generic_f64();
}

template <typename T>
GemmKernel<T> make_kernel(Isa isa) {
  GemmKernel<T> k;
  static_cast<GemmConfig<T>&>(k) = *config_for<T>(isa);
  k.blk = derive_blocking(k.cache, k.mr, k.nr, int64_t(sizeof(T)), cache_sizes());
  return k;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes c = read_cache_sizes();
  return c;
}

GemmBlocking derive_blocking(const GemmCacheModel& model, int64_t mr, int64_t nr,
                             int64_t elem_bytes, const CacheSizes& caches) {
  const CacheSizes& fb = kFallbackCaches;
  const double l1 = double(caches.l1d > 0 ? caches.l1d : fb.l1d);
  const double l2 = double(caches.l2 > 0 ? caches.l2 : fb.l2);
  const double l3 = double(caches.l3 > 0 ? caches.l3 : fb.l3);
  const double s = double(elem_bytes);
  GemmBlocking b;
  const double kc_cache = model.kc_level == 1 ? l1 : l2;
  b.kc = int64_t(kc_cache * model.kc_share / (double(nr) * s)) / 8 * 8;
  b.kc = clamp64(b.kc, model.kc_min, model.kc_max);
  b.mc = int64_t(l2 * model.mc_share / (double(b.kc) * s)) / mr * mr;
  if (b.mc < mr) b.mc = mr;
  b.nc = int64_t(l3 * model.nc_share / (double(b.kc) * s)) / nr * nr;
  b.nc = clamp64(b.nc, nr, model.nc_max / nr * nr > nr ? model.nc_max / nr * nr : nr);
  b.narrow_max_k = clamp64(int64_t(l2 / 2.0 / (double(nr) * s)), 1, kNarrowMaxK);
  return b;
}

template <typename T>
const GemmKernel<T>& gemm_kernel_for(Isa isa) {
  static const GemmKernel<T> table[3] = {make_kernel<T>(Isa::generic), make_kernel<T>(Isa::avx2),
                                         make_kernel<T>(Isa::avx512)};
  const int i = int(isa);
  return table[(i >= 0 && i < 3) ? i : 0];
}

template const GemmKernel<float>& gemm_kernel_for<float>(Isa);
template const GemmKernel<double>& gemm_kernel_for<double>(Isa);

}  // namespace gemm_detail
}  // namespace fastbp
