#!/usr/bin/env bash
# Developer build: an incremental CMake/Ninja build of fastbp._core in build/dev, linked into
# python/fastbp so that `PYTHONPATH=python python -m pytest tests` runs this checkout's code
# without reinstalling. Release wheels and CI use `pip install .` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${FASTBP_DEV_BUILD:-build/dev}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$(command -v python)" -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
fi
cmake --build "$BUILD" -- -j"${FASTBP_DEV_JOBS:-2}"
so="$(ls "$BUILD"/_core*.so | head -n1)"
ln -sf "$(pwd)/$so" "python/fastbp/$(basename "$so")"
echo "dev build: python/fastbp/$(basename "$so") -> $so"
