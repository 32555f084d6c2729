"""fastbp benchmark suite: one command, one JSON + one Markdown report.

    python bench/run.py                       # full run (~10 min on 2 cores)
    python bench/run.py --quick               # smoke run (< 60 s)
    python bench/run.py --threads 1,2 --configs xor,digits --frameworks native,torch --out mine

Measures, as medians over repeats (with IQR and min):
  a. GEMM GFLOP/s, fastbp._core.gemm_f32/f64 vs numpy.matmul (square and MLP shapes);
  b. Adam train_step time, float32: fastbp native, fastbp reference, PyTorch eager, JAX jit;
  c. steps per second inside one fit epoch, and peak memory (fresh process per cell);
  d. scikit-learn's MLPClassifier defaults on the digits data, fastbp's estimator vs sklearn's;
  e. one train_step per activation (native, reference, PyTorch);
and the machine's FMA peak (fastbp's probe kernel), so GEMM and steps show % of peak.
Every thread count and every framework runs in its own child process, pinned to that many
CPUs with every thread pool (OpenMP, OpenBLAS, MKL, XLA) limited before the libraries load;
the thread counts the libraries report are recorded. See bench/README.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from fastbp_bench.frameworks import CONFIGS, FRAMEWORKS, Config, available, make_runner  # noqa: E402
from fastbp_bench.harness import (  # noqa: E402
    Budget,
    cpu_snapshot,
    foreign_load,
    machine_info,
    measure,
    os_thread_count,
    peak_rss_kib,
    pin_current_process,
    reset_peak_rss,
    rss_kib,
    run_child,
    versions,
    wait_quiet,
)

PARTS = ("gemm", "step", "fit", "memory", "sklearn", "activations")


# ============================================================================ profiles
def profile(quick: bool) -> Dict[str, Any]:
    """Time budgets and sizes of a full run and of a ``--quick`` smoke run."""
    if quick:
        return dict(
            gemm=Budget(0.04, min_repeats=3, max_repeats=11, min_sample=1e-3, warmup=1),
            step=Budget(0.12, min_repeats=3, max_repeats=21, min_sample=2e-3, warmup=2),
            fit=Budget(0.15, min_repeats=3, max_repeats=11, min_sample=2e-3, warmup=1),
            heavy_call_s=0.02, fit_cap_s=2.0, squares=(256, 1024), dtypes=("f32", "f64"),
            configs=("xor", "digits"), fit_steps_divisor=4,
        )
    return dict(
        gemm=Budget(0.3, min_repeats=5, max_repeats=41, min_sample=5e-3, warmup=2),
        step=Budget(1.0, min_repeats=7, max_repeats=61, min_sample=5e-3, warmup=3),
        fit=Budget(1.2, min_repeats=5, max_repeats=41, min_sample=5e-3, warmup=1),
        heavy_call_s=0.05, fit_cap_s=25.0, squares=(256, 1024, 2048), dtypes=("f32", "f64"),
        configs=tuple(CONFIGS), fit_steps_divisor=1,
    )


# ============================================================================ children
def _limit_thread_pools(threads: int, framework: Optional[str] = None) -> Any:
    """threadpoolctl limits on every loaded pool (OpenBLAS, OpenMP); None if not installed.

    A framework that does not compute with NumPy's BLAS (every one but fastbp's NumPy
    reference) gets that pool limited to one thread: an idle OpenBLAS pool is not free, its
    workers spin for ~0.1 s after they are (re)started, and on a 2-core machine that spinning
    took the second core from the framework being measured (fastbp's 2-thread steps measured
    1.5-3x slower in that window)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    if framework is None or framework == "reference":
        return threadpool_limits(limits=int(threads))
    return threadpool_limits(limits={"blas": 1, "openmp": int(threads)})


def _unlimit(limits: Any) -> None:
    """Undo :func:`_limit_thread_pools` (matters when measuring in-process)."""
    if limits is not None:
        limits.restore_original_limits()


def _numpy_blas_threads() -> Any:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.environ.get("OPENBLAS_NUM_THREADS", "unset") + " (env; threadpoolctl missing)"
    return [d.get("num_threads") for d in threadpool_info() if d.get("user_api") == "blas"]


def _loadavg() -> Optional[List[float]]:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def child_gemm(task: Dict[str, Any]) -> Dict[str, Any]:
    import numpy as np  # noqa: F401  (load before limiting the pools)

    import fastbp
    from fastbp_bench.gemm import run_gemm

    threads = task["threads"]
    limits = _limit_thread_pools(threads)
    fastbp.set_num_threads(threads)
    load0 = _loadavg()
    rows = run_gemm(task["cases"], task["dtypes"], threads, Budget(**task["budget"]))
    out = dict(kind="gemm", rows=rows, loadavg=[load0, _loadavg()],
               threads_in_use={"fastbp": fastbp.get_num_threads(),
                               "numpy_blas": _numpy_blas_threads()})
    _unlimit(limits)
    return out


def _import_framework(framework: str) -> None:
    """Import (and initialise) a framework so its one-time cost is outside measurements."""
    import numpy  # noqa: F401

    if framework in ("native", "reference"):
        import fastbp  # noqa: F401
        if framework == "reference":
            import fastbp.reference  # noqa: F401
    elif framework == "torch":
        import torch
        import torch.nn  # noqa: F401
        torch.zeros(1).sum().item()
    elif framework == "jax":
        import jax.numpy as jnp
        float(jnp.zeros(1).sum())


def _time_one(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def child_train(task: Dict[str, Any]) -> Dict[str, Any]:
    """step and/or fit measurements of one framework at one thread count."""
    fw, threads = task["framework"], task["threads"]
    _import_framework(fw)
    limits = _limit_thread_pools(threads, fw)
    step_budget, fit_budget = Budget(**task["step_budget"]), Budget(**task["fit_budget"])
    heavy, fit_cap = task["heavy_call_s"], task["fit_cap_s"]
    steps, fits, notes = [], [], []
    in_use: Dict[str, Any] = {}
    load0 = _loadavg()
    for cd in task["configs"]:
        cfg = Config(**{k: (tuple(v) if k == "sizes" else v) for k, v in cd.items()
                        if k in Config.__dataclass_fields__})
        t0 = time.perf_counter()
        runner = make_runner(fw, cfg, threads)
        build_s = time.perf_counter() - t0
        in_use = runner.threads_in_use()
        t0 = time.perf_counter()
        loss0 = runner.step()                     # includes JIT compile / first allocation
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        runner.step()
        one = time.perf_counter() - t0
        base = dict(framework=fw, threads=threads, config=cfg.name)
        if "step" in task["parts"]:
            bud = step_budget
            if one > heavy:   # slow steps: fewer, longer samples, one warm-up
                bud = Budget(max(step_budget.seconds, 3 * one), min_repeats=3,
                             max_repeats=step_budget.max_repeats, min_sample=0.0, warmup=1)
            if one * (bud.warmup + bud.min_repeats + 1) > fit_cap:
                bud = Budget(0.0, min_repeats=2, max_repeats=2, min_sample=0.0, warmup=1)
                notes.append(f"{fw} {cfg.name} t={threads}: step only 2 repeats "
                             f"({one:.2f} s per step)")
            t = measure(runner.step, bud)
            one = min(one, t["median"])   # a robust per-step estimate for the fit budget
            loss1 = runner.step()
            steps.append(dict(base, time=t, first_call_s=first_s, build_s=build_s,
                              loss_first=loss0, loss_last=loss1, budget=bud.as_dict(),
                              flops_per_step=cfg.flops_per_step(),
                              gflops=cfg.flops_per_step() / t["median"] / 1e9))
        if "fit" in task["parts"]:
            if "step" not in task["parts"]:   # no step median: best of a few single steps
                one = min([one] + [_time_one(runner.step) for _ in range(3)])
            est_epoch = one * cfg.fit_steps
            if est_epoch * 3 > fit_cap:
                notes.append(f"{fw} {cfg.name} t={threads}: fit skipped (about "
                             f"{est_epoch:.1f} s per {cfg.fit_steps}-step epoch)")
                fits.append(dict(base, skipped=f"~{est_epoch:.1f} s per epoch",
                                 fit_steps=cfg.fit_steps, n=cfg.n_fit))
            else:
                bud = fit_budget
                if est_epoch > heavy:
                    bud = Budget(max(fit_budget.seconds, 2 * est_epoch), min_repeats=3,
                                 max_repeats=fit_budget.max_repeats, min_sample=0.0, warmup=1)
                t = measure(runner.epoch, bud)
                per_step = t["median"] / cfg.fit_steps
                fits.append(dict(base, time=t, fit_steps=cfg.fit_steps, n=cfg.n_fit,
                                 batch=cfg.batch, step_median=per_step,
                                 step_min=t["min"] / cfg.fit_steps,
                                 steps_per_s=1.0 / per_step, budget=bud.as_dict()))
        del runner
    in_use["numpy_blas"] = _numpy_blas_threads()
    in_use["os_threads"] = os_thread_count()
    _unlimit(limits)
    return dict(kind="train", framework=fw, threads=threads, step=steps, fit=fits,
                notes=notes, threads_in_use=in_use, loadavg=[load0, _loadavg()])


def child_memory(task: Dict[str, Any]) -> Dict[str, Any]:
    """Peak RSS of building the model and training (3 steps + one fit epoch), measured as the
    rise of the kernel's peak-RSS mark over the RSS after importing the framework."""
    fw, threads = task["framework"], task["threads"]
    _import_framework(fw)
    limits = _limit_thread_pools(threads)
    cd = task["config"]
    cfg = Config(**{k: (tuple(v) if k == "sizes" else v) for k, v in cd.items()
                    if k in Config.__dataclass_fields__})
    # a tiny model of the same kind first, so lazily loaded code is in the baseline
    tiny = Config("tiny", (cfg.sizes[0] if cfg.sizes[0] <= 8 else 3, 3, cfg.sizes[-1]),
                  cfg.activation, cfg.output_activation, 2, cfg.loss, fit_steps=2)
    warm = make_runner(fw, tiny, threads)
    warm.step()
    warm.epoch()
    del warm
    import gc
    gc.collect()
    base_rss = rss_kib()
    reset_ok = reset_peak_rss()
    base_hwm = peak_rss_kib()
    runner = make_runner(fw, cfg, threads)
    for _ in range(3):
        runner.step()
    runner.epoch()
    peak = peak_rss_kib()
    end_rss = rss_kib()
    _unlimit(limits)
    start = base_rss if (reset_ok and base_rss is not None) else base_hwm
    return dict(kind="memory", framework=fw, threads=threads, config=cfg.name,
                method="VmHWM reset via clear_refs" if reset_ok else "peak RSS delta (no reset)",
                baseline_kib=start, peak_kib=peak, end_rss_kib=end_rss,
                peak_delta_kib=max(0, peak - start) if start is not None else None)


def child_sklearn(task: Dict[str, Any]) -> Dict[str, Any]:
    """fastbp.sklearn vs scikit-learn MLPClassifier defaults on digits at one thread count."""
    import numpy  # noqa: F401

    from fastbp_bench.extra import run_sklearn_digits

    limits = _limit_thread_pools(task["threads"])
    rows = run_sklearn_digits(task["threads"], task["quick"])
    _unlimit(limits)
    return dict(kind="sklearn", threads=task["threads"], rows=rows)


def child_activations(task: Dict[str, Any]) -> Dict[str, Any]:
    """One train_step per activation for one framework at one thread count."""
    from fastbp_bench.extra import run_activations

    fw, threads = task["framework"], task["threads"]
    _import_framework(fw)
    limits = _limit_thread_pools(threads, fw)
    rows = run_activations(fw, threads, task["activations"], Budget(**task["budget"]))
    _unlimit(limits)
    return dict(kind="activations", framework=fw, threads=threads, rows=rows)


CHILDREN = {"gemm": child_gemm, "train": child_train, "memory": child_memory,
            "sklearn": child_sklearn, "activations": child_activations}


def child_main(task_json: str, out_path: str) -> int:
    task = json.loads(task_json)
    cpus = pin_current_process(task["threads"])
    res = CHILDREN[task["kind"]](task)
    res["affinity"] = cpus
    with open(out_path, "w") as f:
        json.dump(res, f)
    return 0


# ============================================================================ parent
class Options:
    """Everything one benchmark run needs (what the command line sets)."""

    def __init__(self, quick: bool = False, threads: Sequence[int] = (1, 2),
                 configs: Optional[Sequence[Any]] = None, frameworks: Sequence[str] = FRAMEWORKS,
                 parts: Sequence[str] = PARTS, dtypes: Optional[Sequence[str]] = None,
                 squares: Optional[Sequence[int]] = None, isolate: bool = True,
                 memory_configs: Optional[Sequence[Any]] = None,
                 budgets: Optional[Dict[str, Budget]] = None, verbose: bool = True,
                 wait_quiet: float = 0.0, memory_frameworks: Optional[Sequence[str]] = None):
        prof = profile(quick)
        self.quick = quick
        self.threads = [int(t) for t in threads]
        cfgs = prof["configs"] if configs is None else configs
        self.configs: List[Config] = [c if isinstance(c, Config) else CONFIGS[c] for c in cfgs]
        div = prof["fit_steps_divisor"]
        if div > 1:  # shorter fit epochs for a smoke run
            self.configs = [dataclasses.replace(c, fit_steps=max(2, c.fit_steps // div))
                            for c in self.configs]
        if memory_configs is None:   # quick: the first config only; full: all of them
            memory_configs = ([c.name for c in self.configs][:1] if quick
                              else [c.name for c in self.configs])
        by_name = {c.name: c for c in self.configs}
        self.memory_configs: List[Config] = [
            by_name[c.name if isinstance(c, Config) else c] for c in memory_configs
            if (c.name if isinstance(c, Config) else c) in by_name]
        self.frameworks = list(frameworks)
        self.parts = list(parts)
        self.dtypes = list(prof["dtypes"] if dtypes is None else dtypes)
        self.squares = list(prof["squares"] if squares is None else squares)
        self.isolate = isolate
        self.budgets = dict(gemm=prof["gemm"], step=prof["step"], fit=prof["fit"])
        if budgets:
            self.budgets.update(budgets)
        self.heavy_call_s = prof["heavy_call_s"]
        self.fit_cap_s = prof["fit_cap_s"]
        self.verbose = verbose
        self.wait_quiet = float(wait_quiet)
        if memory_frameworks is None:   # quick: skip the slow-to-import frameworks
            memory_frameworks = ("native", "reference") if quick else FRAMEWORKS
        self.memory_frameworks = [f for f in self.frameworks if f in memory_frameworks]

    def as_dict(self) -> Dict[str, Any]:
        return dict(quick=self.quick, threads=self.threads,
                    configs=[c.name for c in self.configs],
                    memory_configs=[c.name for c in self.memory_configs],
                    frameworks=self.frameworks, parts=self.parts, dtypes=self.dtypes,
                    squares=self.squares, isolate=self.isolate,
                    budgets={k: b.as_dict() for k, b in self.budgets.items()},
                    heavy_call_s=self.heavy_call_s, fit_cap_s=self.fit_cap_s,
                    wait_quiet=self.wait_quiet, memory_frameworks=self.memory_frameworks)


def _validate(opts: Options) -> None:
    for f in opts.frameworks:
        if f not in FRAMEWORKS:
            raise ValueError(f"frameworks: unknown {f!r}; expected some of {', '.join(FRAMEWORKS)}")
    for p in opts.parts:
        if p not in PARTS:
            raise ValueError(f"parts: unknown {p!r}; expected some of {', '.join(PARTS)}")
    for d in opts.dtypes:
        if d not in ("f32", "f64"):
            raise ValueError(f"dtypes: unknown {d!r}; expected f32 and/or f64")
    if not opts.threads or any(t < 1 for t in opts.threads):
        raise ValueError(f"threads must be positive integers, got {opts.threads}")


def run_benchmark(opts: Options) -> Dict[str, Any]:
    """Run every requested measurement and return the results dict (what the JSON holds)."""
    from fastbp_bench.gemm import gemm_cases

    _validate(opts)
    t_start = time.perf_counter()
    log = (lambda msg: print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr,
                             flush=True)) if opts.verbose else (lambda msg: None)
    res: Dict[str, Any] = dict(
        meta=dict(started=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  command=" ".join([os.path.basename(sys.executable)] + sys.argv),
                  options=opts.as_dict(), machine=machine_info(), versions=versions(),
                  configs={c.name: c.as_dict() for c in opts.configs}),
        gemm=[], step=[], fit=[], memory=[], notes=[], errors=[], children=[])
    res["meta"]["fastbp_info"] = _fastbp_info()
    res["meta"]["fma_peak"] = _fma_peak(0.03 if opts.quick else 0.2)
    res["sklearn"], res["activations"] = [], []
    frameworks = []
    for f in opts.frameworks:
        if available(f):
            frameworks.append(f)
        else:
            res["notes"].append(f"{f}: not installed, skipped")
            log(f"{f}: not installed, skipped")
    res["meta"]["frameworks_run"] = frameworks
    tmpdir = tempfile.mkdtemp(prefix="fastbp-bench-")

    def call(task: Dict[str, Any]) -> Dict[str, Any]:
        quiet = wait_quiet(opts.wait_quiet) if opts.wait_quiet > 0 else None
        snap = cpu_snapshot()
        if opts.isolate:
            out = run_child(os.path.abspath(__file__), task, task["threads"],
                            os.path.join(tmpdir, f"child-{len(res['children'])}.json"))
        else:
            saved = _save_threads()
            try:
                out = CHILDREN[task["kind"]](task)
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                out = {"error": f"{type(e).__name__}: {e}", "task": task}
            finally:
                _restore_threads(saved)
        load = foreign_load(snap, cpu_snapshot())
        out["foreign_load"] = load
        rec = {k: out.get(k) for k in ("kind", "framework", "threads", "threads_in_use",
                                       "affinity", "loadavg", "child_wall_s", "config")
               if k in out}
        rec.update(kind=task["kind"], threads=task["threads"], foreign_load=load, wait=quiet)
        res["children"].append(rec)
        if load is not None and load > 0.3:
            log(f"  (other processes used {load:.2f} cores meanwhile: numbers are disturbed)")
        if "error" in out:
            res["errors"].append(out)
            log(f"ERROR {task['kind']} {task.get('framework', '')} t={task['threads']}: "
                f"{out['error']}\n{out.get('stderr', '')}")
        return out

    cfg_dicts = [c.as_dict() for c in opts.configs]
    for threads in opts.threads:
        if "gemm" in opts.parts:
            cases = gemm_cases(opts.configs, opts.squares)
            log(f"threads={threads}: GEMM, {len(cases)} shapes x {len(opts.dtypes)} dtypes")
            out = call(dict(kind="gemm", threads=threads, cases=cases, dtypes=opts.dtypes,
                            budget=opts.budgets["gemm"].as_dict()))
            for r in out.get("rows", []):
                r["threads_in_use"] = out.get("threads_in_use")
                r["foreign_load"] = out.get("foreign_load")
                res["gemm"].append(r)
            for r in out.get("rows", []):
                if r["kind"] == "square":
                    log(f"  {r['case']:12s} {r['dtype']}  fastbp {r['fastbp_gflops']:7.1f}  "
                        f"numpy {r['numpy_gflops']:7.1f} GFLOP/s  ratio {r['ratio']:.2f}")
        parts = [p for p in ("step", "fit") if p in opts.parts]
        if parts:
            for fw in frameworks:
                log(f"threads={threads}: {fw} {'+'.join(parts)}")
                out = call(dict(kind="train", framework=fw, threads=threads, configs=cfg_dicts,
                                parts=parts, step_budget=opts.budgets["step"].as_dict(),
                                fit_budget=opts.budgets["fit"].as_dict(),
                                heavy_call_s=opts.heavy_call_s, fit_cap_s=opts.fit_cap_s))
                for r in out.get("step", []):
                    r["threads_in_use"] = out.get("threads_in_use")
                    r["foreign_load"] = out.get("foreign_load")
                    res["step"].append(r)
                    log(f"  step {r['config']:7s} {_fmt_t(r['time']['median']):>10s}")
                for r in out.get("fit", []):
                    r["threads_in_use"] = out.get("threads_in_use")
                    r["foreign_load"] = out.get("foreign_load")
                    res["fit"].append(r)
                    if "skipped" not in r:
                        log(f"  fit  {r['config']:7s} {_fmt_t(r['step_median']):>10s}/step")
                res["notes"].extend(out.get("notes", []))
    _extra_parts(opts, frameworks, call, res, log)
    if "memory" in opts.parts:
        threads = max(opts.threads)
        for cfg in opts.memory_configs:
            for fw in [f for f in frameworks if f in opts.memory_frameworks]:
                out = call(dict(kind="memory", framework=fw, threads=threads,
                                config=cfg.as_dict()))
                if "error" not in out:
                    res["memory"].append(out)
                    log(f"memory {cfg.name:7s} {fw:9s} peak +{out['peak_delta_kib'] / 1024:8.1f} "
                        f"MiB (process {out['peak_kib'] / 1024:7.1f} MiB)")
    try:
        os.rmdir(tmpdir)
    except OSError:
        pass
    res["meta"]["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    res["meta"]["wall_s"] = time.perf_counter() - t_start
    res["meta"]["loadavg_end"] = _loadavg()
    from fastbp_bench.report import evaluate_targets

    res["targets"] = evaluate_targets(res)
    return res


def _extra_parts(opts: Options, frameworks: Sequence[str], call: Any, res: Dict[str, Any],
                 log: Any) -> None:
    """The scikit-learn digits fit and the per-activation steps, at every thread count."""
    import importlib.util

    acts = _activations()
    # quick: the smallest thread count only
    for threads in (opts.threads[:1] if opts.quick else opts.threads):
        if "sklearn" in opts.parts:
            if importlib.util.find_spec("sklearn") is None:
                res["notes"].append("sklearn: not installed, digits fit skipped")
            else:
                out = call(dict(kind="sklearn", threads=threads, quick=opts.quick))
                res["sklearn"].extend(out.get("rows", []))
                for r in out.get("rows", []):
                    log(f"  sklearn {r['estimator']:12s} alpha {r['alpha']:15s} "
                        f"{_fmt_t(r['per_iter_s'])}/iteration")
        if "activations" in opts.parts:
            fws = [f for f in ("native", "reference", "torch") if f in frameworks]
            if opts.quick:
                fws = [f for f in fws if f != "torch"]
            for fw in fws:
                bud = opts.budgets["gemm" if opts.quick else "step"]
                out = call(dict(kind="activations", framework=fw, threads=threads,
                                activations=acts, budget=bud.as_dict()))
                res["activations"].extend(out.get("rows", []))
                log(f"  activations {fw}: {len(out.get('rows', []))} measured")


def _activations() -> List[str]:
    try:
        from fastbp.layers import ACTIVATIONS
    except ImportError:
        return ["relu", "sigmoid", "tanh"]
    return [a for a in ACTIVATIONS if a != "identity"]


def _fma_peak(seconds: float) -> Dict[str, Any]:
    try:
        from fastbp_bench.extra import fma_peak
        return fma_peak(seconds)
    except Exception as e:  # noqa: BLE001 - an older fastbp without the probe
        return {"error": f"{type(e).__name__}: {e}"}


def _save_threads() -> Dict[str, int]:
    """Thread settings an in-process measurement changes (fastbp, torch)."""
    saved = {}
    if "fastbp" in sys.modules:
        saved["fastbp"] = sys.modules["fastbp"].get_num_threads()
    if "torch" in sys.modules:
        saved["torch"] = sys.modules["torch"].get_num_threads()
    return saved


def _restore_threads(saved: Dict[str, int]) -> None:
    if "fastbp" in sys.modules:
        import fastbp
        fastbp.set_num_threads(saved.get("fastbp") or fastbp.get_num_threads())
    if "torch" in saved:
        sys.modules["torch"].set_num_threads(saved["torch"])


def _fastbp_info() -> Dict[str, Any]:
    try:
        import fastbp
        return dict(fastbp.info())
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def _fmt_t(s: float) -> str:
    from fastbp_bench.report import fmt_time
    return fmt_time(s)


def write_results(res: Dict[str, Any], outdir: str, name: str, stat: str = "median",
                  write_json: bool = True) -> Dict[str, str]:
    """Write ``<outdir>/<name>.json`` and ``<outdir>/<name>.md``; return their paths."""
    from fastbp_bench.report import render_markdown

    os.makedirs(outdir, exist_ok=True)
    jpath = os.path.join(outdir, f"{name}.json")
    mpath = os.path.join(outdir, f"{name}.md")
    if write_json:
        with open(jpath, "w") as f:
            json.dump(res, f, indent=1, sort_keys=False, default=str)
            f.write("\n")
    with open(mpath, "w") as f:
        f.write(render_markdown(res, name, stat))
    return {"json": jpath, "markdown": mpath}


def _csv(s: str) -> List[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke run (< 60 s)")
    ap.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2 (default 1,2)")
    ap.add_argument("--configs", default=None,
                    help=f"networks, some of {','.join(CONFIGS)} (default: all; --quick: "
                         "xor,digits)")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                    help="some of native,reference,torch,jax (missing ones are skipped)")
    ap.add_argument("--parts", default=",".join(PARTS), help="some of " + ",".join(PARTS))
    ap.add_argument("--dtypes", default=None, help="GEMM dtypes: f32,f64 (default both)")
    ap.add_argument("--out", default=None, help="result name: bench/results/<name>.json/.md "
                                                "(default: quick or latest)")
    ap.add_argument("--outdir", default=os.path.join(HERE, "results"))
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each measurement process, wait up to S seconds for other "
                         "processes to leave the CPUs (< 0.3 cores busy)")
    ap.add_argument("--stat", default="median", choices=["median", "min"],
                    help="statistic of the repeats in the Markdown tables and targets (the "
                         "JSON has both)")
    ap.add_argument("--render", default=None, metavar="JSON",
                    help="no measurement: re-render the Markdown of an earlier run's JSON "
                         "(to <outdir>/<--out>.md, default: next to the JSON)")
    ap.add_argument("--no-isolate", action="store_true",
                    help="measure in this process (no child per thread count; for debugging)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        return child_main(args.child, args.child_out)
    if args.render:
        with open(args.render) as f:
            res = json.load(f)
        base = os.path.splitext(os.path.basename(args.render))[0]
        name = args.out or (base if args.stat == "median" else f"{base}-{args.stat}")
        outdir = args.outdir if args.out else os.path.dirname(os.path.abspath(args.render))
        paths = write_results(res, outdir, name, args.stat, write_json=False)
        print(f"wrote {paths['markdown']}", file=sys.stderr)
        return 0
    try:
        threads = [int(t) for t in _csv(args.threads)]
    except ValueError:
        ap.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    configs = None
    if args.configs:
        configs = _csv(args.configs)
        bad = [c for c in configs if c not in CONFIGS]
        if bad:
            ap.error(f"--configs: unknown {bad}; expected some of {','.join(CONFIGS)}")
    try:
        opts = Options(quick=args.quick, threads=threads, configs=configs,
                       frameworks=_csv(args.frameworks), parts=_csv(args.parts),
                       dtypes=_csv(args.dtypes) if args.dtypes else None,
                       isolate=not args.no_isolate, wait_quiet=args.wait_quiet)
        _validate(opts)
    except ValueError as e:
        ap.error(str(e))
    res = run_benchmark(opts)
    name = args.out or ("quick" if args.quick else "latest")
    paths = write_results(res, args.outdir, name, args.stat)
    from fastbp_bench.report import render_markdown
    print(render_markdown(res, name, args.stat))
    print(f"wrote {paths['json']} and {paths['markdown']} in {res['meta']['wall_s']:.0f} s",
          file=sys.stderr)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
