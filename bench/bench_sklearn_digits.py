"""fastbp.sklearn.MLPClassifier against scikit-learn's own MLPClassifier on the shipped digits.

Both estimators get scikit-learn's defaults (Adam, lr 1e-3, alpha 1e-4) with 128 hidden
units, batch 32 and exactly 50 epochs (``n_iter_no_change=np.inf``), on the same float64
data; fastbp with ``dtype="float32"``. Runs are interleaved and repeated; medians are
reported with the ratio, the CPU and the ISA. Usage::

    python bench/bench_sklearn_digits.py [--repeats 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

from fastbp_bench.harness import cpu_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    import fastbp as fb
    from fastbp.datasets import load_digits
    from fastbp.sklearn import MLPClassifier as FbMLP

    X, y = load_digits("float64")
    kw = dict(hidden_layer_sizes=(128,), batch_size=32, max_iter=50, n_iter_no_change=np.inf,
              random_state=0)
    makers = {"fastbp": lambda: FbMLP(**kw, dtype="float32"), "sklearn": lambda: SkMLP(**kw)}
    times: dict = {k: [] for k in makers}
    scores: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        makers["fastbp"]().fit(X[:200], y[:200])  # warm-up (imports, first allocation)
        for _ in range(args.repeats):
            for name, make in makers.items():
                est = make()
                t0 = time.perf_counter()
                est.fit(X, y)
                times[name].append(time.perf_counter() - t0)
                scores[name] = (est.n_iter_, float(est.score(X, y)))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"cpu": cpu_model(), "isa": fb.get_isa(), "threads": fb.get_num_threads(),
           "repeats": args.repeats, "median_s": med, "all_s": times,
           "n_iter_and_train_accuracy": scores, "speedup": med["sklearn"] / med["fastbp"]}
    print(f"CPU {out['cpu']}, ISA {out['isa']}, {out['threads']} threads")
    for k in makers:
        print(f"{k:8s} median {med[k]:.3f} s  (n_iter, train acc) = {scores[k]}")
    print(f"speed-up fastbp / scikit-learn: {out['speedup']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
