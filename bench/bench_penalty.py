"""The cost of an L1/L2 penalty: native epochs with a penalty against the same epochs without.

Each case trains epochs of ``engine.fit_epoch`` / ``fit_epoch_csr`` (the engine's own loop:
shuffle, gather, step, Adam update) on random data of the case's shape, alternating the
unpenalised and the penalised epoch, at each thread count in turn; it reports the medians,
their ratio (the issue's goal: <= 1.1x) and the CPU and ISA. The penalty is the one
scikit-learn's default ``alpha=1e-4`` gives (l2), and l1 + l2 on the digits net. Usage::

    python bench/bench_penalty.py [--repeats 9] [--threads 1,2] [--quick] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Dict, List

import numpy as np

from fastbp_bench.harness import cpu_model

# name, layer sizes, batch, rows, penalty, sparse density (None: dense input)
CASES = [
    ("digits b32", (64, 128, 10), 32, 1792, {"l2": 1e-4}, None),
    ("digits b32 l1+l2", (64, 128, 10), 32, 1792, {"l1": 1e-5, "l2": 1e-4}, None),
    ("digits b200", (64, 128, 10), 200, 1800, {"l2": 1e-4}, None),
    ("mnist b128", (784, 256, 256, 10), 128, 1024, {"l2": 1e-4}, None),
    ("sparse tf-idf b32", (5000, 64, 4), 32, 4000, {"l2": 1e-4}, 0.002),
]


def _data(sizes, rows, density, rng):
    y = rng.integers(0, sizes[-1], rows)
    if density is None:
        return rng.standard_normal((rows, sizes[0])).astype(np.float32), y
    import scipy.sparse as sp

    X = sp.random(rows, sizes[0], density=density, format="csr", random_state=0,
                  dtype=np.float32)
    return (X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)), y


def run_case(case, threads: int, repeats: int) -> Dict[str, Any]:
    import fastbp as fb

    name, sizes, batch, rows, pen, density = case
    fb.set_num_threads(threads)
    X, y = _data(sizes, rows, density, np.random.default_rng(0))
    engines = {}
    for label, lp in (("none", {}), ("penalty", pen)):
        e = fb.MLP(list(sizes), dtype="float32", seed=0).engine
        e.set_optimizer("adam", {"lr": 1e-3})
        engines[label] = (e, lp)

    def epoch(label):
        e, lp = engines[label]
        t0 = time.perf_counter()
        if density is None:
            e.fit_epoch(X, y, "softmax_cross_entropy", lp, None, batch, True)
        else:
            e.fit_epoch_csr(*X, y, "softmax_cross_entropy", lp, None, batch, True)
        return time.perf_counter() - t0

    times: Dict[str, List[float]] = {"none": [], "penalty": []}
    for label in times:  # warm-up (workspaces, pages)
        epoch(label)
    for _ in range(repeats):
        for label in times:
            times[label].append(epoch(label))
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = -(-rows // batch)
    return {"case": name, "threads": threads, "penalty": pen, "steps": steps,
            "median_s": med, "all_s": times, "ratio": med["penalty"] / med["none"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="digits only, 2 repeats (a smoke run)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import fastbp as fb

    cases = CASES[:1] if args.quick else CASES
    repeats = 2 if args.quick else args.repeats
    try:
        import scipy.sparse  # noqa: F401
    except ImportError:
        cases = [c for c in cases if c[5] is None]
    rows = [run_case(c, int(t), repeats) for t in args.threads.split(",") for c in cases]
    out = {"cpu": cpu_model(), "isa": fb.get_isa(), "repeats": repeats, "rows": rows}
    print(f"CPU {out['cpu']}, ISA {out['isa']}, Adam, float32, medians of {repeats}")
    print(f"{'case':20s} {'threads':>7s} {'no penalty':>12s} {'penalty':>12s} {'ratio':>7s}")
    for r in rows:
        m = r["median_s"]
        print(f"{r['case']:20s} {r['threads']:7d} {m['none'] * 1e3:9.2f} ms {m['penalty'] * 1e3:9.2f}"
              f" ms {r['ratio']:6.3f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
