#!/usr/bin/env bash
# Cross-compile the native extension for aarch64 with Debian's cross compiler, to check that
# the non-x86 build (generic kernels only, OpenMP on) compiles and links, without an ARM
# machine. Not part of CI (about 25 s to install the compiler, 40 s of CPU to build).
#
#   apt-get install g++-aarch64-linux-gnu     # once (root)
#   scripts/check_aarch64_build.sh            # needs pybind11 and cmake in the current Python
#
# Checks: CMake reports "x86 ISA kernels OFF", and the result is an aarch64 ELF shared object.
# (The file name carries the host Python's suffix; only compiling and linking are checked.)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CXX="${CXX_AARCH64:-aarch64-linux-gnu-g++}"
command -v "$CXX" >/dev/null || { echo "no $CXX: apt-get install g++-aarch64-linux-gnu" >&2; exit 2; }
PY="${PYTHON:-python3}"
B="$(mktemp -d "${TMPDIR:-/tmp}/fastbp-aarch64.XXXXXX")"
trap 'rm -rf "$B"' EXIT
cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=BOTH -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=BOTH \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" \
  >"$B/configure.log" 2>&1 || { cat "$B/configure.log"; exit 1; }
grep -q "fastbp: x86 ISA kernels OFF" "$B/configure.log" || { cat "$B/configure.log"; exit 1; }
grep "fastbp:" "$B/configure.log"
cmake --build "$B" >"$B/build.log" 2>&1 || { tail -50 "$B/build.log"; exit 1; }
SO="$(ls "$B"/_core*.so)"
file "$SO" | tee /dev/stderr | grep -q "ARM aarch64" || { echo "not an aarch64 object" >&2; exit 1; }
echo "aarch64 cross build OK"
