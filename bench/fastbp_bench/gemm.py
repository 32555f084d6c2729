"""GEMM throughput of ``fastbp._core.gemm_f32/f64`` against ``numpy.matmul``.

Both get the same operands: for a transposed operand numpy gets the transposed *view*
(OpenBLAS handles it without a copy) and fastbp the stored array with ``transa``/``transb``.
C is preallocated for both (``out=`` for numpy), so neither times an allocation.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Iterable, List, Sequence

import numpy as np

from .frameworks import Config, gemm_shapes
from .harness import Budget, measure, settle

__all__ = ["SQUARES", "gemm_cases", "run_gemm"]

SQUARES = (256, 1024, 2048)


def gemm_cases(configs: Iterable[Config], squares: Sequence[int] = SQUARES) -> List[Dict[str, Any]]:
    """Square cases first, then the three GEMMs of every layer of every config (deduplicated
    by shape and transposition)."""
    cases: List[Dict[str, Any]] = []
    for n in squares:
        cases.append(dict(case=f"square {n}", kind="square", M=n, K=n, N=n, transa=False,
                          transb=False, batch=None))
    seen = set()
    for cfg in configs:
        for c in gemm_shapes(cfg):
            key = (c["M"], c["K"], c["N"], c["transa"], c["transb"])
            if key in seen:
                continue
            seen.add(key)
            c["config"] = cfg.name
            cases.append(c)
    return cases


def _budget_for(case: Dict[str, Any], budget: Budget) -> Budget:
    flops = 2.0 * case["M"] * case["N"] * case["K"]
    if flops >= 4e9:       # square 2048 class: a call is tens of ms; fewer, longer samples
        return budget.scaled(1.5, min_repeats=max(3, budget.min_repeats - 2))
    return budget


def run_gemm(cases: Sequence[Dict[str, Any]], dtypes: Sequence[str], threads: int,
             budget: Budget, seed: int = 0) -> List[Dict[str, Any]]:
    """Time every case for every dtype ("f32", "f64") with fastbp and numpy, at the thread
    count already in force (the caller pinned it). Returns one row per (case, dtype)."""
    from fastbp import _core

    _core.set_num_threads(int(threads))
    rng = np.random.default_rng(seed)
    rows = []
    for dtype in dtypes:
        gemm = _core.gemm_f32 if dtype == "f32" else _core.gemm_f64
        npdt = np.float32 if dtype == "f32" else np.float64
        for case in cases:
            m, k, n, ta, tb = case["M"], case["K"], case["N"], case["transa"], case["transb"]
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(npdt)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(npdt)
            c_fb = np.zeros((m, n), npdt)
            c_np = np.zeros((m, n), npdt)
            oa, ob = (a.T if ta else a), (b.T if tb else b)
            bud = _budget_for(case, budget)
            # each library timed after the other's worker threads went to sleep (settle)
            settle(threads)
            t_fb = measure(functools.partial(gemm, a, b, c_fb, ta, tb, 1.0, 0.0), bud)
            settle(threads)
            t_np = measure(functools.partial(np.matmul, oa, ob, out=c_np), bud)
            # correctness guard (the last results): a benchmark of a wrong result is worthless
            scale = float(np.abs(c_np).max()) or 1.0
            err = float(np.abs(c_fb - c_np).max()) / scale
            flop = 2.0 * m * n * k
            row = dict(case)
            row.update(dtype=dtype, threads=int(threads), flop=flop, max_rel_err=err,
                       fastbp=t_fb, numpy=t_np,
                       fastbp_gflops=flop / t_fb["median"] / 1e9,
                       numpy_gflops=flop / t_np["median"] / 1e9,
                       ratio=t_np["median"] / t_fb["median"])
            rows.append(row)
    return rows

