// Bindings for the stateless kernels (used by tests and benchmarks).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "kernels/activations.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_kernels.h"
#include "kernels/vecmath.h"
#include "nn/registry.h"

namespace py = pybind11;

namespace fastbp {

namespace {

template <typename T>
using Arr = py::array_t<T, py::array::c_style>;

template <typename T>
void bind_gemm_dtype(py::module_& m, const char* name, const char* naive_name) {
  auto check = [](const Arr<T>& A, const Arr<T>& B, Arr<T>& C, bool ta, bool tb) {
    if (A.ndim() != 2 || B.ndim() != 2 || C.ndim() != 2)
      throw std::invalid_argument("gemm: A, B and C must be 2-D");
    const int64_t M = ta ? A.shape(1) : A.shape(0);
    const int64_t K = ta ? A.shape(0) : A.shape(1);
    const int64_t Kb = tb ? B.shape(1) : B.shape(0);
    const int64_t N = tb ? B.shape(0) : B.shape(1);
    if (K != Kb)
      throw std::invalid_argument("gemm: inner dimensions differ: op(A) is " + std::to_string(M) +
                                  "x" + std::to_string(K) + ", op(B) is " + std::to_string(Kb) +
                                  "x" + std::to_string(N));
    if (C.shape(0) != M || C.shape(1) != N)
      throw std::invalid_argument("gemm: C must be " + std::to_string(M) + "x" +
                                  std::to_string(N));
    return std::array<int64_t, 3>{M, N, K};
  };
  m.def(
      name,
      [check](const Arr<T>& A, const Arr<T>& B, Arr<T> C, bool transa, bool transb, T alpha,
              T beta) {
        auto d = check(A, B, C, transa, transb);
        const T* a = A.data();
        const T* b = B.data();
        T* c = C.mutable_data();
        const Trans ta = transa ? Trans::T : Trans::N, tb = transb ? Trans::T : Trans::N;
        // Releasing the GIL costs ~0.1 us: not worth it for products that take less than ~1 us.
        if (double(d[0]) * double(d[1]) * double(d[2]) < 32768.0) {
          gemm<T>(ta, tb, d[0], d[1], d[2], alpha, a, A.shape(1), b, B.shape(1), beta, c,
                  C.shape(1));
        } else {
          py::gil_scoped_release release;
          gemm<T>(ta, tb, d[0], d[1], d[2], alpha, a, A.shape(1), b, B.shape(1), beta, c,
                  C.shape(1));
        }
      },
      py::arg("A"), py::arg("B"), py::arg("C").noconvert(), py::arg("transa") = false,
      py::arg("transb") = false, py::arg("alpha") = T(1), py::arg("beta") = T(0),
      "C = alpha*op(A)@op(B) + beta*C, in place on C (C-contiguous, exact dtype).");
  m.def(
      naive_name,
      [check](const Arr<T>& A, const Arr<T>& B, Arr<T> C, bool transa, bool transb, T alpha,
              T beta) {
        auto d = check(A, B, C, transa, transb);
        py::gil_scoped_release release;
        gemm_naive<T>(transa ? Trans::T : Trans::N, transb ? Trans::T : Trans::N, d[0], d[1],
                      d[2], alpha, A.data(), A.shape(1), B.data(), B.shape(1), beta,
                      C.mutable_data(), C.shape(1));
      },
      py::arg("A"), py::arg("B"), py::arg("C").noconvert(), py::arg("transa") = false,
      py::arg("transb") = false, py::arg("alpha") = T(1), py::arg("beta") = T(0));
}

template <typename T>
py::array_t<T> vecmath_call(VecFn fn, const Arr<T>& x, Isa isa) {
  py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  vecmath_apply<T>(isa, fn, y.mutable_data(), x.data(), x.size());
  return y;
}

// a = f(z) and dz = da * f'(z) with the activation kernels of the active ISA.
template <typename T>
py::tuple activation_call(Act act, const Arr<T>& z, const Arr<T>& da, double alpha) {
  if (z.size() != da.size()) throw std::invalid_argument("activation: z and da differ in size");
  std::vector<py::ssize_t> shape(z.shape(), z.shape() + z.ndim());
  py::array_t<T> a(shape), dz(shape);
  act_forward<T>(a.mutable_data(), z.data(), z.size(), act, T(alpha));
  std::copy(da.data(), da.data() + da.size(), dz.mutable_data());
  act_backward<T>(dz.mutable_data(), z.data(), a.data(), z.size(), act, T(alpha));
  return py::make_tuple(a, dz);
}

// An ISA by name, which this CPU must support.
Isa supported_isa(const std::string& name) {
  const Isa isa = isa_from_name(name, "isa");
  if (!cpu_supports(isa))
    throw std::invalid_argument("instruction set '" + name +
                                "' is not supported by this CPU or this build");
  return isa;
}

template <typename T>
py::dict gemm_kernel_dict(Isa isa) {
  const auto& k = gemm_detail::gemm_kernel_for<T>(isa);
  py::dict d;
  d["name"] = k.name;
  d["mr"] = k.mr;
  d["nr"] = k.nr;
  d["mc"] = k.blk.mc;
  d["kc"] = k.blk.kc;
  d["nc"] = k.blk.nc;
  d["narrow_max_k"] = k.blk.narrow_max_k;
  d["small_max_work"] = k.small_max_work;
  return d;
}

void bind_gemm_info(py::module_& m) {
  m.def(
      "gemm_info",
      [](const std::string& isa_arg) {
        const Isa isa = isa_arg.empty() ? active_isa() : isa_from_name(isa_arg, "isa");
        const auto& c = gemm_detail::cache_sizes();
        py::dict caches;
        caches["l1d"] = c.l1d;
        caches["l2"] = c.l2;
        caches["l3"] = c.l3;
        caches["from_os"] = c.from_os;
        py::dict d;
        d["isa"] = isa_name(isa);
        d["caches"] = caches;
        d["f32"] = gemm_kernel_dict<float>(isa);
        d["f64"] = gemm_kernel_dict<double>(isa);
        return d;
      },
      py::arg("isa") = "",
      "GEMM kernel of an ISA (default: the active one): tile, blocking, cache sizes used.");
  m.def(
      "gemm_blocking",
      [](const std::string& isa_arg, const std::string& dtype, int64_t l1d, int64_t l2,
         int64_t l3) {
        const Isa isa = isa_from_name(isa_arg, "isa");
        if (dtype != "f32" && dtype != "f64")
          throw std::invalid_argument("dtype must be 'f32' or 'f64'");
        const gemm_detail::CacheSizes caches{l1d, l2, l3, true};
        gemm_detail::GemmBlocking b;
        if (dtype == "f32") {
          const auto& k = gemm_detail::gemm_kernel_for<float>(isa);
          b = gemm_detail::derive_blocking(k.cache, k.mr, k.nr, 4, caches);
        } else {
          const auto& k = gemm_detail::gemm_kernel_for<double>(isa);
          b = gemm_detail::derive_blocking(k.cache, k.mr, k.nr, 8, caches);
        }
        return py::dict(py::arg("mc") = b.mc, py::arg("kc") = b.kc, py::arg("nc") = b.nc,
                        py::arg("narrow_max_k") = b.narrow_max_k);
      },
      py::arg("isa"), py::arg("dtype"), py::arg("l1d"), py::arg("l2"), py::arg("l3"),
      "The blocking an ISA's GEMM would derive for the given cache sizes in bytes (0: unknown).");
}

void bind_fma_peak(py::module_& m) {
  m.def(
      "fma_peak",
      [](const std::string& dtype, int64_t iters) {
        if (iters < 1) throw std::invalid_argument("iters must be >= 1");
        const Isa isa = active_isa();
        py::gil_scoped_release release;
        if (dtype == "f32") {
          float sink = 0.0f;
          return gemm_detail::gemm_kernel_for<float>(isa).peak(iters, &sink);
        }
        if (dtype == "f64") {
          double sink = 0.0;
          return gemm_detail::gemm_kernel_for<double>(isa).peak(iters, &sink);
        }
        throw std::invalid_argument("dtype must be 'f32' or 'f64'");
      },
      py::arg("dtype"), py::arg("iters"),
      "Run the active ISA's FMA peak probe (independent FMA chains on its widest vectors) on "
      "the calling thread; returns the floating-point operations done. Time it to get the "
      "core's peak FLOP/s.");
}

}  // namespace

void bind_kernels(py::module_& m) {
  m.def(
      "vecmath",
      [](const std::string& name, py::array x, const std::string& isa) -> py::array {
        const VecFn fn = vecfn_from_name(name);
        const Isa which = isa.empty() ? active_isa() : supported_isa(isa);
        if (x.dtype().is(py::dtype::of<float>()))
          return vecmath_call<float>(fn, Arr<float>::ensure(x), which);
        if (x.dtype().is(py::dtype::of<double>()))
          return vecmath_call<double>(fn, Arr<double>::ensure(x), which);
        throw py::type_error("vecmath: x must be a float32 or float64 array");
      },
      py::arg("name"), py::arg("x"), py::arg("isa") = std::string(),
      "f(x) elementwise with the vector math of one instruction set (default: the active one); "
      "name in exp, expm1, log1p, tanh, erf. For tests and benchmarks.");
  m.def(
      "activation",
      [](const std::string& name, py::array z, py::array da, double alpha) -> py::tuple {
        const Act act = act_from_name(name);
        if (z.dtype().is(py::dtype::of<float>()))
          return activation_call<float>(act, Arr<float>::ensure(z), Arr<float>::ensure(da), alpha);
        if (z.dtype().is(py::dtype::of<double>()))
          return activation_call<double>(act, Arr<double>::ensure(z), Arr<double>::ensure(da),
                                         alpha);
        throw py::type_error("activation: z must be a float32 or float64 array");
      },
      py::arg("name"), py::arg("z"), py::arg("da"), py::arg("alpha") = 0.0,
      "(f(z), da * f'(z)) elementwise with the active ISA's activation kernels (da converted "
      "to z's dtype). For tests.");
  bind_gemm_info(m);
  bind_fma_peak(m);
  bind_gemm_dtype<float>(m, "gemm_f32", "gemm_naive_f32");
  bind_gemm_dtype<double>(m, "gemm_f64", "gemm_naive_f64");
}

}  // namespace fastbp
