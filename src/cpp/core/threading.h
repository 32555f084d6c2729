// Thread-count policy. OpenMP is used only in driver loops (never in micro-kernels).
#pragma once

namespace fastbp {

int get_num_threads();
void set_num_threads(int n);    // n >= 1
bool have_openmp();
const char* openmp_runtime();   // a short description ("OpenMP 201511" or "none")

}  // namespace fastbp
