"""Measurements beyond GEMM/step/fit: the machine's FMA peak, a scikit-learn-defaults fit on
the shipped digits data, and one train_step per activation (native, reference, PyTorch);
with the Markdown sections that show them."""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

from .frameworks import Config, make_runner
from .harness import Budget, measure

__all__ = ["ACT_SIZES", "ACT_BATCH", "fma_peak", "run_sklearn_digits", "run_activations",
           "render_peak", "render_sklearn", "render_activations"]

# The per-activation network: the tanh deep-narrow config's shape.
ACT_SIZES = (32, 64, 64, 64, 64, 64, 1)
ACT_BATCH = 64


def fma_peak(seconds: float = 0.1) -> Dict[str, Any]:
    """Per-core FMA peak (GFLOP/s) of the active ISA, f32 and f64, measured on this thread by
    fastbp's probe kernel (independent FMA chains on the widest vectors): the best of several
    calls of >= 10 ms each, timed in this thread's CPU time (a core's capacity, unaffected by
    time-slicing when other processes share the CPUs)."""
    from fastbp import _core

    clock = time.thread_time
    out: Dict[str, Any] = {"isa": _core.get_isa(), "clock": "thread CPU time"}
    for dt in ("f32", "f64"):
        iters = 100_000
        _core.fma_peak(dt, iters)
        while True:   # grow the call until it takes >= 10 ms
            t0 = clock()
            flops = _core.fma_peak(dt, iters)
            el = clock() - t0
            if el >= 0.01 or iters > 10**10:
                break
            iters *= 4
        best = flops / max(el, 1e-9)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = clock()
            flops = _core.fma_peak(dt, iters)
            best = max(best, flops / max(clock() - t0, 1e-9))
        out[dt] = best / 1e9
    return out


def _fit_seconds(make: Callable[[], Any], X: Any, y: Any, repeats: int) -> Dict[str, Any]:
    """Wall time of ``make().fit(X, y)``, best and median of ``repeats``; the last estimator."""
    times, est = [], None
    for _ in range(repeats):
        est = make()
        t0 = time.perf_counter()
        est.fit(X, y)
        times.append(time.perf_counter() - t0)
    times.sort()
    return dict(min=times[0], median=times[len(times) // 2], samples=times, est=est)


def run_sklearn_digits(threads: int, quick: bool) -> List[Dict[str, Any]]:
    """fastbp.sklearn.MLPClassifier and sklearn's MLPClassifier with scikit-learn's defaults
    (random_state=0) on ``load_digits``; fastbp also without the L2 penalty (alpha=0), to show
    what the default alpha=1e-4 costs. Quick runs stop at 10 iterations."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    import fastbp
    from fastbp.sklearn import MLPClassifier as FbMLP

    fastbp.set_num_threads(int(threads))
    X, y = load_digits(return_X_y=True)
    extra: Dict[str, Any] = {"max_iter": 10} if quick else {}
    repeats = 1 if quick else 3
    cases = [("fastbp", "1e-4 (default)", lambda: FbMLP(random_state=0, **extra)),
             ("fastbp", "0", lambda: FbMLP(random_state=0, alpha=0.0, **extra)),
             ("scikit-learn", "1e-4 (default)", lambda: SkMLP(random_state=0, **extra))]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for who, alpha, make in cases:
            r = _fit_seconds(make, X, y, repeats)
            est = r.pop("est")
            n_iter = int(est.n_iter_)
            rows.append(dict(estimator=who, alpha=alpha, threads=int(threads), n=len(X),
                             n_iter=n_iter, fit_s=r, per_iter_s=r["median"] / max(n_iter, 1),
                             train_accuracy=float(est.score(X, y))))
    return rows


def run_activations(framework: str, threads: int, activations: Sequence[str],
                    budget: Budget) -> List[Dict[str, Any]]:
    """One Adam train_step (float32, mse) of the ACT_SIZES network with each hidden activation."""
    rows = []
    for act in activations:
        cfg = Config(f"act-{act}", ACT_SIZES, act, "identity", ACT_BATCH, "mse", fit_steps=1)
        try:
            runner = make_runner(framework, cfg, threads)
        except (KeyError, AttributeError, ValueError) as e:
            rows.append(dict(framework=framework, threads=threads, activation=act,
                             skipped=f"{type(e).__name__}: {e}"))
            continue
        runner.step()
        t = measure(runner.step, budget)
        rows.append(dict(framework=framework, threads=threads, activation=act, time=t))
    return rows


# ----------------------------------------------------------------------------- report
def _fmt(s: Optional[float]) -> str:
    from .report import fmt_time

    return fmt_time(s) if s is not None else "–"


def render_peak(meta: Dict[str, Any]) -> List[str]:
    p = meta.get("fma_peak") or {}
    if "f32" not in p:
        return []
    return [f"- FMA peak of one core (fastbp's probe kernel, ISA {p.get('isa', '?')}): "
            f"{p['f32']:.1f} GFLOP/s f32, {p['f64']:.1f} GFLOP/s f64; % of peak below is "
            "relative to this × threads"]


def render_sklearn(rows: List[Dict[str, Any]]) -> List[str]:
    if not rows:
        return []
    L = ["## scikit-learn defaults: MLPClassifier().fit on digits (1797 × 64, 10 classes)", "",
         "`MLPClassifier(random_state=0)` with every other parameter at scikit-learn's default "
         "(hidden (100,), relu, adam, alpha=1e-4, batch 200, up to 200 iterations, tol 1e-4); "
         "fastbp's estimator also with alpha=0. Time per iteration = fit time ÷ n_iter_.", "",
         "| estimator | alpha | threads | fit | n_iter_ | per iteration | train accuracy | "
         "speed-up per iteration |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
    ref = {r["threads"]: r for r in rows if r["estimator"] == "scikit-learn"}
    for r in rows:
        sk = ref.get(r["threads"])
        sp = f"{sk['per_iter_s'] / r['per_iter_s']:.2f}x" if sk else "–"
        L.append(f"| {r['estimator']} | {r['alpha']} | {r['threads']} | "
                 f"{_fmt(r['fit_s']['median'])} | {r['n_iter']} | {_fmt(r['per_iter_s'])} | "
                 f"{r['train_accuracy']:.4f} | {sp} |")
    l2 = {(r["threads"], r["alpha"]): r for r in rows if r["estimator"] == "fastbp"}
    for thr in sorted({r["threads"] for r in rows}):
        a, b = l2.get((thr, "1e-4 (default)")), l2.get((thr, "0"))
        if a and b:
            L.append("")
            L.append(f"- fastbp, {thr} thread(s): the default L2 penalty costs "
                     f"{a['per_iter_s'] / b['per_iter_s']:.2f}× the time per iteration of "
                     "alpha=0 (goal <= 1.1×)")
    L.append("")
    return L


def render_activations(rows: List[Dict[str, Any]]) -> List[str]:
    if not rows:
        return []
    from .report import _cell_time, _t

    label = "-".join(str(s) for s in ACT_SIZES)
    L = [f"## Per activation: Adam train_step of {label} b{ACT_BATCH}, float32, mse", "",
         "native ÷ reference and native ÷ torch as speed-ups (> 1: native faster).", "",
         "| activation | threads | native | reference | torch | vs reference | vs torch |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    idx = {(r["framework"], r["threads"], r["activation"]): r for r in rows}
    acts = list(dict.fromkeys(r["activation"] for r in rows))
    for thr in sorted({r["threads"] for r in rows}):
        for act in acts:
            cells, ts = [], {}
            for fw in ("native", "reference", "torch"):
                r = idx.get((fw, thr, act))
                t = r.get("time") if r else None
                cells.append(_cell_time(t))
                ts[fw] = _t(t) if t else None
            nat = ts["native"]
            sp = [f"{ts[fw] / nat:.2f}x" if nat and ts[fw] else "–" for fw in ("reference",
                                                                              "torch")]
            L.append(f"| {act} | {thr} | " + " | ".join(cells) + " | " + " | ".join(sp) + " |")
    L.append("")
    return L
