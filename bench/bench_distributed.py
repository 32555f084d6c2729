"""Data-parallel scaling on one machine, and the inputs of the paper model in docs/SCALING.md.

    python bench/bench_distributed.py [--configs mnist,wide] [--steps 30] [--repeats 5]
                                      [--out bench/results/distributed.json] [--quick]

For each config it launches, under ``mpiexec``:

* ``1x2``: 1 rank x 2 threads, global batch B (``fit`` without comm: the native epoch, and the
  per-step path ``train_step(comm=COMM_SELF)``);
* ``2x1``: 2 ranks x 1 thread, B/2 rows per rank (``train_step(comm=COMM_WORLD)``), with each
  step split into its parts: local forward/backward, the gradient allreduce, the update;
* ``1x1``: 1 rank x 1 thread, the step at several batch sizes (the per-sample compute cost the
  paper model scales) and the cost of the allreduce of this arena between 2 ranks.

Every figure is the minimum (``--stat min``, the default: the intrinsic cost on a busy machine)
or the median over ``--repeats`` runs of ``--steps`` steps, the parts interleaved per run.
It prints a Markdown table and writes every sample to the JSON. The machine in docs/SCALING.md
was shared with other jobs: compare ratios measured in one run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fastbp_bench.harness import cpu_model

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"mnist": ([784, 256, 256, 10], 128), "wide": ([1024, 2048, 2048, 10], 256),
           "tiny": ([16, 32, 4], 16)}


# ------------------------------------------------------------------------------ worker side
def _data(sizes, n, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, sizes[0])).astype(np.float32),
            rng.integers(0, sizes[-1], n))


def _timed(fn, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def worker(args) -> dict:
    """Runs inside mpiexec: every rank measures, rank 0 returns the figures."""
    from mpi4py import MPI

    import fastbp as fb

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    sizes, batch = CONFIGS[args.config]
    fb.set_num_threads(args.threads)
    local = batch // size
    X, y = _data(sizes, local, rank)
    model = fb.MLP(sizes, seed=0)
    kw = {"loss": "softmax_cross_entropy"}
    model.train_step(X, y, optimizer=fb.optim.Adam(lr=1e-4), comm=comm, **kw)  # setup
    eng = model._engine
    g = eng.grad_arena()
    out = {"config": args.config, "ranks": size, "threads": fb.get_num_threads(),
           "params": int(model.num_params), "global_batch": local * size, "samples": []}
    sweep = size == 1 and args.threads == 1  # the 1x1 run: compute cost per batch size
    for _ in range(args.repeats):
        rec = {}
        if not sweep:
            comm.Barrier()
            rec["train_step_comm"] = _timed(lambda: model.train_step(X, y, comm=comm, **kw),
                                            args.steps)
            comm.Barrier()
            rec["compute"] = _timed(
                lambda: eng.compute_gradients(X, y, "softmax_cross_entropy"), args.steps)
            comm.Barrier()
            rec["allreduce"] = _timed(lambda: comm.Allreduce(MPI.IN_PLACE, g, op=MPI.SUM),
                                      args.steps)
        g[:] = 0  # the update must not run on a gradient summed args.steps times
        rec["apply"] = _timed(eng.apply_gradients, args.steps)
        if size == 1 and not sweep:
            rec["train_step_plain"] = _timed(lambda: model.train_step(X, y, **kw), args.steps)
            Xf, yf = _data(sizes, batch * args.steps, 1)
            for key, extra in (("fit_native", {}), ("fit_comm", {"comm": comm})):
                t0 = time.perf_counter()
                model.fit(Xf, yf, epochs=1, batch_size=batch, progress=False, grad_norm=False,
                          **extra, **kw)
                rec[key] = (time.perf_counter() - t0) / args.steps
        if sweep:
            for b in args.batch_sweep:
                Xb, yb = _data(sizes, b, 2)
                rec[f"compute_b{b}"] = _timed(
                    lambda Xb=Xb, yb=yb: eng.compute_gradients(Xb, yb, "softmax_cross_entropy"),
                    args.steps)
        out["samples"].append(rec)
    return out if rank == 0 else {}


# ------------------------------------------------------------------------------ driver side
def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if not found:
        raise SystemExit("mpiexec not found: pip install 'fastbp[mpi]'")
    return found


def _fastbp_parent() -> str:
    """The directory holding the fastbp this process would import (installed or a source tree
    on PYTHONPATH), for the workers."""
    import importlib.util

    spec = importlib.util.find_spec("fastbp")
    if spec is None or spec.origin is None:
        return str(ROOT / "python")
    return str(Path(spec.origin).resolve().parent.parent)


def launch(config: str, ranks: int, threads: int, args) -> dict:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl="self,sm", OMPI_MCA_pml="ob1",
               PYTHONPATH=os.pathsep.join([_fastbp_parent(), os.environ.get("PYTHONPATH", "")]))
    env.pop("OMP_NUM_THREADS", None)
    cmd = [_mpiexec(), "-n", str(ranks), "--bind-to", "none", "--oversubscribe", sys.executable,
           __file__, "--worker", "--config", config, "--threads", str(threads),
           "--steps", str(args.steps), "--repeats", str(args.repeats),
           "--batch-sweep", ",".join(map(str, args.batch_sweep))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("{")][-1]
    return json.loads(line)


STAT = {"fn": np.min}  # --stat: min (the intrinsic cost on a busy machine) or median


def median(run: dict, key: str) -> float:
    """The chosen statistic (--stat) of a figure over the repeats."""
    return float(STAT["fn"]([s[key] for s in run["samples"]]))


def report(results: dict) -> str:
    lines = [("| config | params | global batch | setup | step (ms) | compute | allreduce | "
              "update | samples/s |"), "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for cfg, runs in results.items():
        for name, run in runs.items():
            if name == "1x1":
                continue
            step = median(run, "train_step_comm")
            lines.append(
                f"| {cfg} | {run['params']:,} | {run['global_batch']} | {name} | "
                f"{1e3 * step:.2f} | {1e3 * median(run, 'compute'):.2f} | "
                f"{1e3 * median(run, 'allreduce'):.3f} | {1e3 * median(run, 'apply'):.2f} | "
                f"{run['global_batch'] / step:,.0f} |")
    lines += ["", ("| config | 1x2 fit native (ms/step) | 1x2 fit comm=COMM_SELF (ms/step) | "
                   "1x2 train_step | 1x2 train_step(comm) |"), "|---|---:|---:|---:|---:|"]
    for cfg, runs in results.items():
        r = runs["1x2"]
        lines.append(f"| {cfg} | {1e3 * median(r, 'fit_native'):.2f} | "
                     f"{1e3 * median(r, 'fit_comm'):.2f} | "
                     f"{1e3 * median(r, 'train_step_plain'):.2f} | "
                     f"{1e3 * median(r, 'train_step_comm'):.2f} |")
    return "\n".join(lines)


LINKS = {"10 Gb/s": (10e9 / 8, 25e-6), "100 Gb/s": (100e9 / 8, 5e-6)}  # bytes/s, latency
RANKS = (1, 2, 4, 8, 16, 32, 64)


def allreduce_time(nbytes: float, ranks: int, link: str) -> float:
    """Ring allreduce between machines: 2 (R-1)/R of the arena over the link, 2 (R-1)
    latencies (reduce-scatter then allgather)."""
    bw, lat = LINKS[link]
    return 0.0 if ranks == 1 else 2 * (ranks - 1) / ranks * nbytes / bw + 2 * (ranks - 1) * lat


def paper_model(results: dict, calibrate: dict | None = None) -> str:
    """Expected throughput against rank count (one rank per machine, 1 core each as measured
    at 1 thread, no overlap of communication and compute). ``calibrate``: config -> the
    1-thread step time (s) at the config's batch measured elsewhere (e.g. on a quiet
    machine), used as a pure per-row cost instead of this run's batch sweep."""
    lines = []
    for cfg, runs in results.items():
        one = runs["1x1"]
        bs = sorted(int(k[9:]) for k in one["samples"][0] if k.startswith("compute_b"))
        t = np.array([median(one, f"compute_b{b}") for b in bs])
        slope, t0 = np.polyfit(bs, t, 1)  # seconds per row, fixed cost per step
        slope, t0 = max(slope, 1e-9), max(t0, 0.0)
        apply = median(one, "apply")
        if calibrate and cfg in calibrate:
            slope, t0, apply = calibrate[cfg] / CONFIGS[cfg][1], 0.0, 0.0
        nbytes = 4.0 * one["params"]
        batch = CONFIGS[cfg][1]
        lines += [(f"**{cfg}** ({one['params']:,} parameters, {nbytes / 1e6:.1f} MB gradient; "
                   f"1 thread: {1e6 * slope:.1f} us/row + {1e3 * (t0 + apply):.2f} ms/step)"), "",
                  (f"| ranks | link | global batch | samples/s (local batch {batch}) | efficiency "
                   f"| samples/s (global batch {batch}) | local batch for 80 % efficiency |"),
                  "|---:|---|---:|---:|---:|---:|---:|"]
        base = batch / (t0 + slope * batch + apply)
        for link in LINKS:
            for r in RANKS:
                tar = allreduce_time(nbytes, r, link)
                weak = r * batch / (t0 + slope * batch + apply + tar)
                bl = max(1.0, batch / r)
                strong = r * bl / (t0 + slope * bl + apply + tar)
                need = max(1.0, (4 * tar - t0 - apply) / slope) if r > 1 else 1.0
                lines.append(f"| {r} | {link} | {r * batch} | {weak:,.0f} | "
                             f"{weak / (r * base):.0%} | {strong:,.0f} | {need:,.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="mnist,wide")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-sweep", default="32,64,128,256")
    ap.add_argument("--quick", action="store_true", help="tiny config, few steps (smoke)")
    ap.add_argument("--stat", choices=["min", "median"], default="min",
                    help="statistic of the repeats in the tables (the JSON keeps every sample)")
    ap.add_argument("--render", metavar="JSON", help="no measurement: tables of an earlier run")
    ap.add_argument("--calibrate", default="", metavar="CFG=MS,...",
                    help="with --render: 1-thread step times (ms) at each config's batch from "
                         "another run, for the paper model")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "distributed.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.batch_sweep = [int(b) for b in str(args.batch_sweep).split(",") if b]
    STAT["fn"] = np.min if args.stat == "min" else np.median
    if args.render:
        data = json.loads(Path(args.render).read_text())
        cal = {k: float(v) / 1e3 for k, v in (x.split("=") for x in args.calibrate.split(",") if x)}
        print(report(data["results"]) + "\n\n" + paper_model(data["results"], cal))
        return 0
    if args.worker:
        res = worker(args)
        if res:
            print(json.dumps(res), flush=True)
        return 0
    if args.quick:
        args.configs, args.steps, args.repeats, args.batch_sweep = "tiny", 3, 2, [8, 16]
        CONFIGS["tiny"] = ([16, 32, 4], 16)
    results: dict = {}
    for cfg in args.configs.split(","):
        results[cfg] = {"1x2": launch(cfg, 1, 2, args), "2x1": launch(cfg, 2, 1, args),
                        "1x1": launch(cfg, 1, 1, args)}
    meta = {"cpu": cpu_model(), "cores": os.cpu_count(), "steps": args.steps,
            "repeats": args.repeats, "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"{meta['cpu']}, {meta['cores']} cores, {meta['time']}\n")
    print(report(results))
    print()
    print(paper_model(results))
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
