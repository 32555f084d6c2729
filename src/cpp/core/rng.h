// Counter-based random numbers, identical to fastbp/reference/rng.py (docs/ENGINE.md).
#pragma once
#include <cstdint>

namespace fastbp {

inline uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline uint64_t rng_mix(uint64_t a, uint64_t b) { return splitmix64(a ^ splitmix64(b)); }
inline double rng_uniform(uint64_t u) { return double(u >> 11) * 0x1.0p-53; }
// Uniform integer in [0, bound) by the 128-bit multiply-high.
inline uint64_t rng_bounded(uint64_t u, uint64_t bound) {
#if defined(__SIZEOF_INT128__) && !defined(FASTBP_NO_INT128)
  return uint64_t((static_cast<unsigned __int128>(u) * bound) >> 64);
#else
  // No 128-bit integers (MSVC): the same high word from 32-bit halves, exactly.
  const uint64_t ul = u & 0xFFFFFFFFu, uh = u >> 32, bl = bound & 0xFFFFFFFFu, bh = bound >> 32;
  const uint64_t ll = ul * bl, lh = ul * bh, hl = uh * bl, hh = uh * bh;
  const uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
  return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

// The permutation of one shuffled epoch (docs/ENGINE.md "Random numbers"): perm = 0..n-1,
// then for i = n-1 down to 1 swap perm[i] with perm[j], j = bounded(splitmix64(base + i), i+1),
// base = mix(mix(seed, 2), epoch).
inline void shuffle_permutation(uint64_t seed, uint64_t epoch, int64_t n, int64_t* perm) {
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  const uint64_t base = rng_mix(rng_mix(seed, 2), epoch);
  for (int64_t i = n - 1; i >= 1; --i) {
    const int64_t j = int64_t(rng_bounded(splitmix64(base + uint64_t(i)), uint64_t(i + 1)));
    const int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

}  // namespace fastbp
