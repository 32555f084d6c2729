#!/usr/bin/env bash
# CI step "wheel": package fastbp the way users get it, and check it away from the source tree.
#
#   1. scripts/build_wheels.sh: sdist -> wheel built from the unpacked sdist alone (one
#      compile) -> auditwheel repair (manylinux tag, libgomp bundled in fastbp.libs/)
#   2. the wheel's and the sdist's contents (extension, .pyi stub, py.typed, bundled OpenMP,
#      one version in the file name, METADATA and _version.py)
#   3. a fresh venv (no system site-packages), the repaired wheel installed with pip, and from
#      an empty directory: scripts/smoke_test.py (import, versions, `fastbp info`, train,
#      predict, native == reference), again under FASTBP_ISA=generic (the wheel needs no
#      particular CPU), tests/test_packaging.py against the installed wheel (threadpoolctl
#      sees and limits the bundled OpenMP), stubtest (the shipped _core.pyi matches the
#      compiled module), and the smoke test on an emulated Nehalem CPU (qemu-user: no AVX)
#   4. mypy on python/fastbp ([tool.mypy] in pyproject.toml)
#
# Budget: about 2 minutes on 2 cores (the compile is most of it; +25 s to install qemu-user).
# Run: bash .ci/wheel.sh
# FASTBP_WHEEL_QEMU=1 installs qemu-user (apt-get) if missing, for step 3's emulated old CPU;
# that is the default when CI=true. Without qemu-x86_64 that check is skipped (and says so).
# FASTBP_WHEEL_TORCH=1 also installs torch==2.13.0 into the fresh venv and runs the
# fastbp+torch tests of tests/test_packaging.py there (two OpenMP runtimes in one process).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PIP_DISABLE_PIP_VERSION_CHECK=1
T0=$(date +%s)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastbp-ci-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== [wheel.sh +%ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
# pip's own chatter (notably "Location ... is ignored" for absent local indexes) goes to a log
pipq() { "$@" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; return 1; }; }

step "build: sdist, wheel from the sdist, auditwheel repair"
export FASTBP_TOOLS_VENV="$WORK/tools"
scripts/build_wheels.sh --outdir "$WORK/dist" --keep-tools >"$WORK/artifacts.txt"
SDIST="$(tail -n 2 "$WORK/artifacts.txt" | head -n 1)"
WHEEL="$(tail -n 1 "$WORK/artifacts.txt")"
VERSION="$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' python/fastbp/_version.py)"
echo "sdist: $(basename "$SDIST") ($(du -k "$SDIST" | cut -f1) KiB)"
echo "wheel: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

step "contents"
python3 - "$SDIST" "$WHEEL" "$VERSION" <<'EOF'
import re, sys, tarfile, zipfile
sdist, wheel, version = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
need = ["fastbp/__init__.py", "fastbp/_core.pyi", "fastbp/py.typed", "fastbp/_version.py",
        "fastbp/datasets/digits.npz", "fastbp/reference/engine.py"]
missing = [n for n in need if n not in names]
assert not missing, f"wheel lacks {missing}"
assert any(re.match(r"fastbp/_core\..*\.so$", n) for n in names), "wheel has no extension"
assert any(re.match(r"fastbp\.libs/libgomp-[0-9a-f]+\.so", n) for n in names), \
    "libgomp is not bundled"
assert not any(n.startswith(("tests/", "src/")) for n in names), "sources leaked into the wheel"
meta = zipfile.ZipFile(wheel).read(f"fastbp-{version}.dist-info/METADATA").decode()
mver = re.search(r"^Version: (.+)$", meta, re.M).group(1)
assert mver == version, (mver, version)
reqs = re.findall(r"^Requires-Dist: (.+)$", meta, re.M)
runtime = [r for r in reqs if "extra ==" not in r]
assert runtime == ["numpy>=1.22"], f"runtime dependencies must be NumPy only: {runtime}"
tag = re.search(r"-(manylinux_\d+_\d+_\w+)\.whl$", wheel)
assert tag, f"not a manylinux wheel: {wheel}"
snames = tarfile.open(sdist).getnames()
for n in ["pyproject.toml", "CMakeLists.txt", "python/fastbp/_version.py",
          "python/fastbp/_core.pyi", "src/cpp/bindings/module.cpp", "PKG-INFO"]:
    assert f"fastbp-{version}/{n}" in snames, f"sdist lacks {n}"
print(f"ok: version {version}, tag {tag.group(1)}, runtime deps {runtime}, "
      f"{len(names)} files in the wheel, {len(snames)} in the sdist")
EOF

step "fresh venv, install the repaired wheel"
VENV="$WORK/venv"
python3 -m venv "$VENV"
PY="$VENV/bin/python"
pipq "$PY" -m pip install -q "$WHEEL"
EXTRA=(pytest threadpoolctl mypy)
[ "${FASTBP_WHEEL_TORCH:-0}" = 1 ] && EXTRA+=("torch==2.13.0")
pipq "$PY" -m pip install -q "${EXTRA[@]}"
"$PY" -m pip list --format=freeze | grep -iE "^(fastbp|numpy|threadpoolctl|torch)=" || true
mkdir -p "$WORK/empty"
cd "$WORK/empty"   # nothing of the source tree on sys.path

step "smoke test (default ISA)"
"$PY" "$ROOT/scripts/smoke_test.py" --expect-version "$VERSION" --expect-openmp --expect-bundled-omp
"$VENV/bin/fastbp" info

step "smoke test (FASTBP_ISA=generic)"
FASTBP_ISA=generic "$PY" "$ROOT/scripts/smoke_test.py" --expect-version "$VERSION"

# qemu-user is installed when FASTBP_WHEEL_QEMU=1, by default in CI (CI=true); a failed
# install only skips this check.
QEMU="${FASTBP_WHEEL_QEMU:-$([ "${CI:-}" = true ] && echo 1 || echo 0)}"
if [ "$QEMU" = 1 ] && ! command -v qemu-x86_64 >/dev/null && [ "$(uname -m)" = x86_64 ] \
    && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  step "installing qemu-user (Debian) for the old-CPU check"
  { pipq apt-get update -qq && DEBIAN_FRONTEND=noninteractive pipq apt-get install -y -qq \
      --no-install-recommends qemu-user; } || echo "warning: could not install qemu-user"
fi
if command -v qemu-x86_64 >/dev/null && [ "$(uname -m)" = x86_64 ]; then
  step "smoke test on an emulated Nehalem CPU (x86-64-v2, no AVX): must pick generic, no SIGILL"
  qemu-x86_64 -cpu Nehalem "$PY" "$ROOT/scripts/smoke_test.py" --emulated --expect-isa generic \
    --expect-version "$VERSION"
else
  step "emulated old CPU: skipped (no qemu-x86_64; FASTBP_WHEEL_QEMU=1 installs qemu-user)"
fi

step "tests/test_packaging.py against the installed wheel"
FASTBP_EXPECT_BUNDLED_OMP=1 "$PY" -m pytest -q -p no:cacheprovider "$ROOT/tests/test_packaging.py"

step "stubtest: the shipped _core.pyi vs the compiled module"
"$PY" -m mypy.stubtest fastbp._core --allowlist "$ROOT/scripts/stubtest_allowlist.txt"

step "mypy python/fastbp"
cd "$ROOT"
"$VENV/bin/mypy" --cache-dir "$WORK/mypy-cache" --config-file pyproject.toml

step "done in $(( $(date +%s) - T0 )) s: $(basename "$WHEEL"), $(basename "$SDIST")"
