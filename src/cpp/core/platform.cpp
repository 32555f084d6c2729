#include "core/platform.h"

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#elif defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace fastbp {

namespace {
double read_physical_memory() {
#if defined(_WIN32)
  MEMORYSTATUSEX st;
  st.dwLength = sizeof(st);
  return GlobalMemoryStatusEx(&st) ? double(st.ullTotalPhys) : 0.0;
#elif defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return (pages > 0 && page > 0) ? double(pages) * double(page) : 0.0;
#else
  return 0.0;
#endif
}
}  // namespace

double physical_memory_bytes() {
  static const double bytes = read_physical_memory();
  return bytes;
}

}  // namespace fastbp
