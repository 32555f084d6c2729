// Arrays that one loop streams together (a network's parameter, gradient and buffer arenas and
// its optimizer-state arrays: the optimizer pass reads p, g and its state and writes p and the
// state, element by element) start at different offsets modulo 4 KiB.
//
// Why: x86 cores compare a load's address with the older stores in flight on its low 12 bits
// first; a load whose low bits match a store to another array at almost the same offset modulo
// 4 KiB waits for that store ("4K aliasing"). Where malloc put the arrays decided it: a
// digits-size Adam pass (9.6k parameters) took 3.0 us in some layouts and 8.1 us in others
// (2-vCPU Zen 4 VM, 12 models built one after the other in one process), and a whole digits fit
// step 20 or 25 us. Each slot of StreamAlloc starts its arrays kStreamStagger bytes after the
// previous slot's modulo 4 KiB: the offsets of the 6 slots differ pairwise by >= 576 bytes,
// more than the stores of one pass are ahead of its loads. Measured staggers: 576 bytes gave
// that pass 3.6 us in every layout, 704 and 1088 bytes 3.0 us.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#ifdef _MSC_VER
#include <malloc.h>
#endif

namespace fastbp {

constexpr std::size_t kStreamPage = 4096;
constexpr std::size_t kStreamStagger = 704;  // 11 cache lines
constexpr int kStreamSlots = 6;  // (params, grads, buffers, up to 3 state arrays)

// The slots of a network's arrays.
enum StreamSlot : int { kParamsSlot = 0, kGradsSlot = 1, kBuffersSlot = 2, kStateSlot0 = 3 };

template <typename T>
struct StreamAlloc {
  using value_type = T;
  int slot = 0;

  StreamAlloc() = default;
  explicit StreamAlloc(int s) : slot(s) {}
  template <typename U>
  StreamAlloc(const StreamAlloc<U>& o) : slot(o.slot) {}  // NOLINT: rebinding keeps the slot

  std::size_t offset() const { return kStreamStagger * std::size_t(slot % kStreamSlots); }

  T* allocate(std::size_t n) {
    if (n > (std::size_t(-1) - 2 * kStreamPage) / sizeof(T)) throw std::bad_alloc();
    const std::size_t bytes =
        (n * sizeof(T) + offset() + kStreamPage - 1) / kStreamPage * kStreamPage;
#ifdef _MSC_VER
    void* base = _aligned_malloc(bytes, kStreamPage);
#else
    void* base = std::aligned_alloc(kStreamPage, bytes);
#endif
    if (base == nullptr) throw std::bad_alloc();
    return reinterpret_cast<T*>(static_cast<char*>(base) + offset());
  }
  void deallocate(T* p, std::size_t) {
    void* base = reinterpret_cast<char*>(p) - offset();
#ifdef _MSC_VER
    _aligned_free(base);
#else
    std::free(base);
#endif
  }
  template <typename U>
  bool operator==(const StreamAlloc<U>& o) const { return slot == o.slot; }
  template <typename U>
  bool operator!=(const StreamAlloc<U>& o) const { return slot != o.slot; }
};

template <typename T>
using StreamVector = std::vector<T, StreamAlloc<T>>;

}  // namespace fastbp
