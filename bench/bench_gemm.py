"""GEMM throughput: fastbp's _core.gemm_f32/f64 vs numpy.matmul (GFLOP/s, median of repeats).

Usage:
    python bench/bench_gemm.py [--dtype f32|f64|both] [--threads 1,2] [--isa avx512]
                               [--quick] [--timer wall|cpu] [--stat median|min]
                               [--shapes 128x256x5,128x256x8] [--json out.json]

Shapes are (M, K, N): C(M x N) = A(M x K) @ B(K x N). The MLP backprop variants of a forward
x(M x K) @ W(K x N) are  dW = x^T @ dz  -> (K, M, N) with transa, and  dx = dz @ W^T -> (M, N, K)
with transb. numpy gets the same transposed views (numpy/OpenBLAS also handle them without a copy).
Thread count: fastbp via _core.set_num_threads, numpy via threadpoolctl if installed, else
OPENBLAS_NUM_THREADS must be set by the caller (the script re-executes itself with it set).
"""
import argparse
import functools
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastbp_bench.harness import settle  # noqa: E402

SQUARE = [256, 1024, 2048]
MLP = [(32, 64, 128), (128, 784, 256), (128, 256, 256), (256, 1024, 2048), (256, 2048, 2048),
       (256, 2048, 10), (4, 2, 4)]


def cases(shapes=None):
    """The squares and the MLP shapes' three products, or those of `shapes` ((M, K, N) of x.W)
    only."""
    out = []
    for n in SQUARE if shapes is None else ():
        out.append((f"square {n}", n, n, n, False, False))
    for (m, k, n) in MLP if shapes is None else shapes:
        out.append((f"fwd x.W {m}x{k}x{n}", m, k, n, False, False))
        out.append((f"dW=xT.dz {k}x{m}x{n}", k, m, n, True, False))
        out.append((f"dx=dz.WT {m}x{n}x{k}", m, n, k, False, True))
    return out


CLOCK = time.perf_counter
STAT = np.median


def timeit(fn, min_time=0.2, repeats=7):
    fn()
    t0 = CLOCK()
    fn()
    one = max(CLOCK() - t0, 1e-7)
    inner = max(1, int(min_time / repeats / one))
    res = []
    for _ in range(repeats):
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        res.append((CLOCK() - t0) / inner)
    return float(STAT(res))


def run(dtype, threads, quick, shapes=None):
    from fastbp import _core
    _core.set_num_threads(threads)
    g = _core.gemm_f32 if dtype == "f32" else _core.gemm_f64
    npdt = np.float32 if dtype == "f32" else np.float64
    rng = np.random.default_rng(0)
    rows = []
    for (name, m, k, n, ta, tb) in cases(shapes):
        if quick and m * n * k > 256 * 2048 * 2048:
            continue
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(npdt)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(npdt)
        c = np.empty((m, n), npdt)
        oa = a.T if ta else a
        ob = b.T if tb else b
        out = np.empty((m, n), npdt)
        # each library timed after the other's worker threads went to sleep (harness.settle)
        settle(threads)
        t_fb = timeit(functools.partial(g, a, b, c, ta, tb, 1.0, 0.0))
        settle(threads)
        t_np = timeit(functools.partial(np.matmul, oa, ob, out=out))
        flop = 2.0 * m * n * k
        rows.append(dict(case=name, dtype=dtype, threads=threads, M=m, N=n, K=k,
                         fastbp_gflops=flop / t_fb / 1e9, numpy_gflops=flop / t_np / 1e9,
                         fastbp_us=t_fb * 1e6, numpy_us=t_np * 1e6, ratio=t_np / t_fb))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="both")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--isa", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--timer", choices=["wall", "cpu"], default="wall",
                    help="cpu: thread CPU time (time.thread_time), robust on a shared/loaded "
                         "machine but only meaningful with --threads 1")
    ap.add_argument("--stat", choices=["median", "min"], default="median",
                    help="statistic over the repeats (min filters out preemption on a "
                         "shared machine)")
    ap.add_argument("--shapes", default=None,
                    help="MxKxN,... : these x.W shapes (and their dW and dx products) only")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    shapes = None
    if args.shapes:
        try:
            shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
        except ValueError:
            ap.error("--shapes: MxKxN,... (integers)")
        if any(len(t) != 3 or min(t) < 1 for t in shapes):
            ap.error("--shapes: MxKxN,... (three integers >= 1 each)")
    global CLOCK, STAT
    if args.timer == "cpu":
        CLOCK = time.thread_time
    if args.stat == "min":
        STAT = np.min
    dtypes = ["f32", "f64"] if args.dtype == "both" else [args.dtype]

    if args.child is not None:  # one thread count, numpy's BLAS pinned by the environment
        from fastbp import _core
        if args.isa:
            _core.set_isa(args.isa)
        rows = []
        for dt in dtypes:
            rows += run(dt, args.child, args.quick, shapes)
        print(json.dumps(rows))
        return

    rows = []
    for nt in [int(x) for x in args.threads.split(",")]:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(nt), OMP_NUM_THREADS=str(nt),
                   MKL_NUM_THREADS=str(nt))
        cmd = [sys.executable, __file__, "--child", str(nt), "--dtype", args.dtype]
        if args.isa:
            cmd += ["--isa", args.isa]
        if args.quick:
            cmd.append("--quick")
        cmd += ["--timer", args.timer, "--stat", args.stat]
        if args.shapes:
            cmd += ["--shapes", args.shapes]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(res.stderr)
        rows += json.loads(res.stdout.strip().splitlines()[-1])

    from fastbp import _core
    isa = args.isa or _core.get_isa()
    print(f"fastbp GEMM (isa={isa}) vs numpy.matmul, GFLOP/s, {args.stat} of 7 repeats, "
          f"{args.timer} clock\n")
    print(f"| {'case':26s} | dt  | thr | {'fastbp':>8s} | {'numpy':>8s} | ratio | fastbp us |")
    print(f"|{'-' * 28}|-----|-----|{'-' * 10}|{'-' * 10}|-------|-----------|")
    for r in rows:
        print(f"| {r['case']:26s} | {r['dtype']} | {r['threads']:3d} | {r['fastbp_gflops']:8.1f} | "
              f"{r['numpy_gflops']:8.1f} | {r['ratio']:5.2f} | {r['fastbp_us']:9.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
