"""Sparse input: fastbp.sklearn against scikit-learn's MLP on a TF-IDF-like matrix.

A random CSR matrix shaped like a TF-IDF document-term matrix (default 20,000 rows x 50,000
columns, 0.1% non-zero, Zipf-distributed term frequencies, rows L2-normalised) with a
4-class target that depends on a few hundred terms. Both estimators take the sparse matrix as
it is (no densifying: fastbp's first layer multiplies over the non-zeros natively, in every
mini-batch) with scikit-learn's defaults, 64 hidden units, batch 200 and a fixed number of
epochs; fastbp also with dtype="float32". Reported: median wall time of interleaved repeats,
the ratio, training accuracy, the CPU and the ISA. Usage::

    python bench/bench_sparse.py [--rows 20000] [--cols 50000] [--density 0.001]
                                 [--epochs 5] [--repeats 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

from fastbp_bench.harness import cpu_model


def tfidf_like(rows: int, cols: int, density: float, seed: int = 0):
    """A CSR matrix with TF-IDF's shape and statistics, and a 4-class target."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    nnz_per_row = max(1, int(round(cols * density)))
    p = 1.0 / np.arange(1, cols + 1, dtype=np.float64)  # Zipf-like term frequencies
    p /= p.sum()
    rows_idx = [np.unique(rng.choice(cols, nnz_per_row, p=p)) for _ in range(rows)]
    indices = np.concatenate(rows_idx)
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows_idx])])
    tf = rng.integers(1, 5, indices.shape[0]).astype(np.float64)
    df = np.bincount(indices, minlength=cols) + 1
    data = tf * np.log(rows / df[indices])
    X = sp.csr_matrix((data, indices, indptr), shape=(rows, cols))
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()) + 1e-12
    X = sp.diags(1.0 / norms) @ X
    w = np.zeros((cols, 4))
    informative = rng.choice(min(cols, 5000), 400, replace=False)
    w[informative] = rng.standard_normal((400, 4)) * 3
    y = np.asarray((X @ w).argmax(axis=1)).ravel()
    return X.tocsr(), y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--cols", type=int, default=50000)
    ap.add_argument("--density", type=float, default=0.001)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    import fastbp as fb
    from fastbp.sklearn import MLPClassifier as FbMLP

    X, y = tfidf_like(args.rows, args.cols, args.density)
    kw = dict(hidden_layer_sizes=(64,), batch_size=200, max_iter=args.epochs,
              n_iter_no_change=np.inf, random_state=0)
    makers = {"fastbp float32": lambda: FbMLP(**kw, dtype="float32"),
              "fastbp float64": lambda: FbMLP(**kw),
              "sklearn": lambda: SkMLP(**kw)}
    times: dict = {k: [] for k in makers}
    scores: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(args.repeats):
            for name, make in makers.items():
                est = make()
                t0 = time.perf_counter()
                est.fit(X, y)
                times[name].append(time.perf_counter() - t0)
                scores[name] = float(est.score(X, y))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"cpu": cpu_model(), "isa": fb.get_isa(), "threads": fb.get_num_threads(),
           "shape": [args.rows, args.cols], "nnz": int(X.nnz), "epochs": args.epochs,
           "repeats": args.repeats, "median_s": med, "all_s": times, "train_accuracy": scores,
           "speedup_vs_sklearn": {k: med["sklearn"] / v for k, v in med.items()}}
    print(f"CPU {out['cpu']}, ISA {out['isa']}, {out['threads']} threads; X {X.shape}, "
          f"nnz {X.nnz} ({X.nnz / (X.shape[0] * X.shape[1]):.4%}), {args.epochs} epochs")
    for k in makers:
        print(f"{k:15s} median {med[k]:.3f} s  train acc {scores[k]:.3f}  "
              f"x{out['speedup_vs_sklearn'][k]:.1f} vs scikit-learn")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
