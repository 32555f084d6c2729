#!/usr/bin/env bash
# Sanitizer CI step: builds the native extension with -DFASTBP_SANITIZE=ON (AddressSanitizer +
# UndefinedBehaviorSanitizer, -fno-sanitize-recover=all) in a throwaway virtual environment and
# runs a subset of the native tests under it; then a LeakSanitizer pass over a small training
# script. Any ASan/UBSan report, or any leak whose allocation stack passes through fastbp's
# extension, fails the step.
#
#   .ci/sanitize.sh            # ~8 min on 2 cores (build ~3.5 min, tests ~4 min)
#
# Environment: by default a private temporary venv + build directory, deleted at the end.
# SANITIZE_VENV=<dir> SANITIZE_KEEP_VENV=1 reuses a venv (and <dir>.build) between local runs.
# Python itself is not instrumented, so libasan is LD_PRELOADed into the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
# A private throwaway directory per run by default (several worktrees / CI jobs share /tmp:
# a fixed path let two concurrent runs delete each other's object files).
if [ -z "${SANITIZE_VENV:-}" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastbp-san.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  VENV="$WORK/venv"
  BUILD_DIR="${SANITIZE_BUILD_DIR:-$WORK/build}"
else
  VENV="$SANITIZE_VENV"
  BUILD_DIR="${SANITIZE_BUILD_DIR:-$VENV.build}"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

CXX_BIN="${CXX:-c++}"
LIBASAN="$("$CXX_BIN" -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
  echo "sanitize.sh: libasan.so not found (compiler $CXX_BIN)" >&2
  exit 1
fi
# libstdc++ is preloaded too: the interpreter does not link it, and ASan's __cxa_throw
# interceptor must find the real one at start-up ("CHECK failed: real___cxa_throw").
LIBSTDCXX="$("$CXX_BIN" -print-file-name=libstdc++.so)"
PRELOAD="$LIBASAN $LIBSTDCXX"

if [ "${SANITIZE_KEEP_VENV:-0}" != 1 ] || [ ! -x "$VENV/bin/python" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12" numpy "pytest>=7" "hypothesis>=6"
python -m pip install -q --no-build-isolation \
  -C cmake.define.FASTBP_SANITIZE=ON -C cmake.build-type=RelWithDebInfo \
  -C build-dir="$BUILD_DIR" "$ROOT"

# (locate the extension without importing it: importing needs libasan preloaded)
SO="$(ls "$(python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"/fastbp/_core*.so)"
if [ "$(nm -D "$SO" 2>/dev/null | grep -c __asan || true)" = 0 ]; then
  echo "sanitize.sh: $SO is not instrumented" >&2
  exit 1
fi

export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:detect_odr_violation=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export FASTBP_SANITIZED=1          # tests may shrink their sizes (ASan is ~3x slower)
export OMP_NUM_THREADS=2

# 1) ASan + UBSan over the native tests. Tests import the installed package: run from a
#    directory without a fastbp/ source tree.
cd "${TMPDIR:-/tmp}"
LOG="$(mktemp -d)/asan"
export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$LOG"
export UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$LOG"
status=0
# SANITIZE_PYTEST_ARGS overrides the selection (e.g. "-k 'not gemm_edges'" to save time).
# shellcheck disable=SC2086
LD_PRELOAD="$PRELOAD" python -m pytest -q -x -p no:cacheprovider ${SANITIZE_PYTEST_ARGS:-} \
  "$ROOT/tests/test_reliability.py" "$ROOT/tests/test_threads.py" "$ROOT/tests/test_fuzz.py" \
  "$ROOT/tests/test_native_vs_reference.py" "$ROOT/tests/test_gemm.py" "$ROOT/tests/test_core.py" \
  "$ROOT/tests/test_team.py" "$ROOT/tests/test_fused.py" "$ROOT/tests/test_penalty.py" \
  "$ROOT/tests/test_chain.py" \
  || status=$?
# (with allocator_may_return_null=1 a refused huge allocation -- the MemoryError tests --
# only logs a WARNING; any ERROR or UBSan "runtime error" is a failure)
if ls "$LOG".* >/dev/null 2>&1; then
  if grep -lE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$LOG".* >/dev/null; then
    echo "sanitize.sh: sanitizer reports:" >&2
    cat "$LOG".* >&2
    status=1
  else
    echo "sanitize.sh: sanitizer warnings (not errors):"
    cat "$LOG".*
  fi
fi
if [ "$status" != 0 ]; then
  echo "sanitize.sh: FAILED (ASan/UBSan step)" >&2
  exit "$status"
fi

# 2) LeakSanitizer: a small script exercising every entry point (incl. rejected calls) many
#    times. CPython does not free everything at exit, so only leaks whose allocation stack
#    passes through fastbp's extension count (one-time module-initialisation allocations
#    are suppressed in .ci/lsan.supp).
LLOG="$(mktemp -d)/lsan"
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:allocator_may_return_null=1:fast_unwind_on_malloc=0:malloc_context_size=40:log_path=$LLOG" \
LSAN_OPTIONS="suppressions=$ROOT/.ci/lsan.supp:exitcode=0:print_suppressions=0" \
  LD_PRELOAD="$PRELOAD" python "$ROOT/tests/fuzz/leak_workload.py"
python "$ROOT/tests/fuzz/lsan_filter.py" "$LLOG".* || { echo "sanitize.sh: FAILED (leaks)" >&2; exit 1; }
echo "sanitize.sh: OK (no ASan/UBSan reports, no leaks from fastbp)"
