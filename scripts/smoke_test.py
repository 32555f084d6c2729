"""Smoke test of an installed fastbp (a wheel in a fresh environment): run from outside the
source tree, so the installed package is the one imported.

    python scripts/smoke_test.py [--expect-version X.Y.Z] [--expect-openmp] [--expect-bundled-omp]
                                 [--expect-isa NAME] [--emulated]

Checks: the import comes from site-packages, not a source tree; the version agrees between
``fastbp.__version__``, the installed metadata and ``fastbp --version``; ``fastbp info``
runs; a small MLP trains (loss falls, native agrees with the NumPy reference) and predicts;
under FASTBP_ISA (whatever the environment says, e.g. ``generic``) the chosen ISA is used.
Used by .ci/wheel.sh and by cibuildwheel's test-command (pyproject.toml). Exits non-zero on
any failure.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time


def fail(msg: str) -> None:
    print(f"SMOKE FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect-version", default=None)
    ap.add_argument("--expect-openmp", action="store_true",
                    help="fail if the engine was built without OpenMP")
    ap.add_argument("--expect-bundled-omp", action="store_true",
                    help="fail unless the OpenMP runtime ships inside the wheel (fastbp.libs/)")
    ap.add_argument("--expect-isa", default=None,
                    help="fail unless the engine picked this ISA (e.g. generic on an old CPU)")
    ap.add_argument("--emulated", action="store_true",
                    help="this process runs under a CPU emulator (qemu-user) but its child "
                         "processes run natively: do not compare their ISA with ours")
    args = ap.parse_args()
    t0 = time.perf_counter()

    import numpy as np

    import fastbp as fb
    from fastbp import _core

    where = os.path.dirname(os.path.abspath(fb.__file__))
    print(f"fastbp {fb.__version__} from {where}")
    if "site-packages" not in where and "dist-packages" not in where:
        fail(f"fastbp was imported from {where}, not an installed location")

    # One version everywhere: module, installed metadata, command line.
    from importlib.metadata import version as dist_version

    meta = dist_version("fastbp")
    cli = subprocess.run([sys.executable, "-m", "fastbp", "--version"], capture_output=True,
                         text=True, check=True).stdout.strip()
    exe = os.path.join(os.path.dirname(sys.executable), "fastbp")
    if os.path.exists(exe) or os.path.exists(exe + ".exe"):
        cli_exe = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        if cli_exe != cli:
            fail(f"'fastbp --version' says {cli_exe!r}, 'python -m fastbp --version' {cli!r}")
    if not (fb.__version__ == meta and cli == f"fastbp {meta}"):
        fail(f"versions disagree: __version__={fb.__version__!r} metadata={meta!r} cli={cli!r}")
    if args.expect_version and meta != args.expect_version:
        fail(f"version {meta!r}, expected {args.expect_version!r}")

    # fastbp info (the console script and the function).
    out = subprocess.run([sys.executable, "-m", "fastbp", "info", "--json"], capture_output=True,
                         text=True, check=True).stdout
    info = json.loads(out)
    print("fastbp info:", json.dumps(info))
    mine = fb.info()
    if args.emulated:
        for d in (info, mine):
            d.pop("isa"), d.pop("supported_isas")
    if info != mine:
        fail(f"'fastbp info' {info} differs from fb.info() {fb.info()}")
    want_isa = os.environ.get("FASTBP_ISA")
    if want_isa and fb.get_isa() != want_isa:
        fail(f"FASTBP_ISA={want_isa} but the engine uses {fb.get_isa()}")
    if "generic" not in fb.info()["supported_isas"]:
        fail("generic is not among the supported ISAs")
    if args.expect_isa and fb.get_isa() != args.expect_isa:
        fail(f"the engine picked {fb.get_isa()}, expected {args.expect_isa} "
             f"(supported: {fb.info()['supported_isas']})")
    if args.expect_openmp and not _core.have_openmp():
        fail("built without OpenMP")
    if args.expect_bundled_omp:
        libs = glob.glob(os.path.join(os.path.dirname(where), "fastbp.libs", "*omp*"))
        if not libs:
            fail("no OpenMP runtime bundled in fastbp.libs/")
        print("bundled:", ", ".join(os.path.basename(p) for p in libs))

    # Train a small model, native and reference, and predict.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 8)).astype(np.float32)
    w = rng.standard_normal((8, 1)).astype(np.float32)
    y = (np.tanh(X @ w) > 0).astype(np.int64).ravel()
    losses = {}
    preds = {}
    for backend in ("native", "reference"):
        model = fb.MLP([8, 16, 2], activation="tanh", seed=0, backend=backend)
        h = model.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(lr=1e-2),
                      epochs=15, batch_size=32)
        losses[backend] = list(h["loss"])
        preds[backend] = model.predict(X)
    ln = losses["native"]
    print(f"native loss {ln[0]:.4f} -> {ln[-1]:.4f}")
    if not ln[-1] < 0.5 * ln[0]:
        fail(f"loss did not fall: {ln}")
    if not np.allclose(ln, losses["reference"], rtol=1e-3, atol=1e-4):
        fail(f"native {ln} and reference {losses['reference']} losses disagree")
    if not np.allclose(preds["native"], preds["reference"], rtol=1e-3, atol=1e-3):
        fail("native and reference predictions disagree")
    acc = float((preds["native"].argmax(1) == y).mean())
    print(f"train accuracy {acc:.3f}")
    if acc < 0.9:
        fail(f"accuracy {acc}")

    # GEMM large enough for the packed, multithreaded path (and its edge tiles), both dtypes.
    for dt, fn in ((np.float32, _core.gemm_f32), (np.float64, _core.gemm_f64)):
        A = rng.standard_normal((203, 157)).astype(dt)
        B = rng.standard_normal((157, 301)).astype(dt)
        C = np.zeros((203, 301), dt)
        fn(A, B, C)
        ref = A.astype(np.float64) @ B.astype(np.float64)
        err = float(np.abs(C - ref).max() / np.abs(ref).max())
        if not err < (1e-5 if dt == np.float32 else 1e-12):
            fail(f"gemm {np.dtype(dt).name}: relative error {err}")

    # float64 and a second thread count give the same answer (bitwise, by design).
    m = fb.MLP([8, 32, 1], activation="relu", dtype="float64", seed=1)
    Xd = X.astype(np.float64)
    yd = (Xd @ w.astype(np.float64))
    fb.set_num_threads(1)
    a = m.loss_and_gradients(Xd, yd, loss="mse")[0]
    fb.set_num_threads(2)
    b = m.loss_and_gradients(Xd, yd, loss="mse")[0]
    if a != b:
        fail(f"1 vs 2 threads: {a!r} != {b!r}")

    print(f"SMOKE OK ({time.perf_counter() - t0:.1f} s, isa={fb.get_isa()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
