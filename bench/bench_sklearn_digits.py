"""fastbp.sklearn.MLPClassifier against scikit-learn's own MLPClassifier on the shipped digits.

Both estimators get scikit-learn's defaults (Adam, lr 1e-3, alpha 1e-4) with 128 hidden
units, batch 32 and exactly 50 epochs (``n_iter_no_change=np.inf``), on the same float64
data; fastbp with ``dtype="float32"``. Medians are reported with the ratio, the CPU and the
ISA.

By default each estimator's fits run in processes of their own, alternated (fastbp, sklearn,
fastbp, ...; ``--rounds`` of them, ``--repeats`` timed fits each after a warm-up), as
bench/run.py runs every framework: in one process the libraries' thread pools meet --
OpenBLAS's workers keep spinning for ~0.1 s after scikit-learn's last product and take a core
from fastbp's next fit (docs/ENGINE.md, "Hidden units by strips"). ``--same-process`` runs
them interleaved in one process instead, thread pools and all. Usage::

    python bench/bench_sklearn_digits.py [--rounds 3] [--repeats 5] [--same-process]
                                         [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

from fastbp_bench.harness import cpu_model

NAMES = ("fastbp", "sklearn")


def _makers():
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastbp.sklearn import MLPClassifier as FbMLP

    kw = dict(hidden_layer_sizes=(128,), batch_size=32, max_iter=50, n_iter_no_change=np.inf,
              random_state=0)
    return {"fastbp": lambda: FbMLP(**kw, dtype="float32"), "sklearn": lambda: SkMLP(**kw)}


def _fits(names, repeats):
    """Warm-up, then `repeats` timed fits of each estimator in `names`, interleaved; returns
    {name: [seconds]} and {name: (n_iter_, training accuracy)}."""
    from sklearn.exceptions import ConvergenceWarning

    from fastbp.datasets import load_digits

    X, y = load_digits("float64")
    makers = _makers()
    times: dict = {k: [] for k in names}
    scores: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in names:  # warm-up (imports, first allocation)
            makers[name]().fit(X[:200], y[:200])
        for _ in range(repeats):
            for name in names:
                est = makers[name]()
                t0 = time.perf_counter()
                est.fit(X, y)
                times[name].append(time.perf_counter() - t0)
                scores[name] = (est.n_iter_, float(est.score(X, y)))
    return times, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed fits per process")
    ap.add_argument("--rounds", type=int, default=3, help="processes per estimator")
    ap.add_argument("--same-process", action="store_true",
                    help="both estimators interleaved in this process")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", choices=NAMES, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:  # (one estimator's fits, in a process of its own)
        times, scores = _fits([args.worker], args.repeats)
        print(json.dumps({"times": times[args.worker], "score": scores[args.worker]}))
        return

    import fastbp as fb

    if args.same_process:
        times, scores = _fits(list(NAMES), args.repeats)
        mode = "same process, interleaved"
    else:
        times = {k: [] for k in NAMES}
        scores = {}
        env = dict(os.environ)
        for _ in range(args.rounds):
            for name in NAMES:
                out = subprocess.run([sys.executable, __file__, "--worker", name, "--repeats",
                                      str(args.repeats)], check=True, capture_output=True,
                                     text=True, env=env).stdout
                res = json.loads(out.strip().splitlines()[-1])
                times[name] += res["times"]
                scores[name] = tuple(res["score"])
        mode = f"a process per estimator and round, alternated ({args.rounds} rounds)"
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"cpu": cpu_model(), "isa": fb.get_isa(), "threads": fb.get_num_threads(),
           "mode": mode, "repeats": args.repeats, "median_s": med, "all_s": times,
           "n_iter_and_train_accuracy": scores, "speedup": med["sklearn"] / med["fastbp"]}
    print(f"CPU {out['cpu']}, ISA {out['isa']}, {out['threads']} threads; {mode}")
    for k in NAMES:
        print(f"{k:8s} median {med[k]:.3f} s  (n_iter, train acc) = {scores[k]}")
    print(f"speed-up fastbp / scikit-learn: {out['speedup']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
