"""When a thread team is slower than one thread: fastbp's back-off and probe (docs/ENGINE.md,
"Threads": core/team.h TeamBackoff and TeamProbe), measured in one run.

Two parts:

- ``numpy``: a 784-256-256-10 ``train_step`` (batch 128, float32 Adam) with a 300x300 NumPy
  product after every ``--every``-th step, on one thread and on two (each in a process of its
  own, alternated), per step. OpenBLAS's workers spin ~0.1 s after each product, on the core
  fastbp's second thread wants.
- ``probe``: in ONE process, two identical tanh 32-64x5-1 networks (batch 64) on two threads,
  one with the probe disabled (a margin of 0: one thread never wins), trained in alternating
  blocks of 0.5 s; the median step of every block. On a VM whose host slows one vCPU for a
  while (invisible to the guest's clocks), the blocks without the probe show it.

Example: ``python bench/bench_team_policy.py --parts numpy,probe --seconds 60``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from fastbp_bench.harness import cpu_model

_NUMPY_CHILD = r"""
import sys, time, numpy as np, fastbp as fb
threads, every = int(sys.argv[1]), int(sys.argv[2])
fb.set_num_threads(threads)
rng = np.random.default_rng(0)
m = fb.MLP([784, 256, 256, 10], dtype="float32", seed=0)
opt = fb.optim.Adam(lr=1e-3)
x = rng.standard_normal((128, 784)).astype(np.float32); y = rng.integers(0, 10, 128)
a = rng.standard_normal((300, 300))
def run(k):
    for i in range(k):
        m.train_step(x, y, "softmax_cross_entropy", opt)
        if every and i % every == 0:
            a @ a
run(100)
best = []
for _ in range(5):
    t = time.perf_counter(); run(200); best.append((time.perf_counter() - t) / 200)
print(min(best), np.median(best), getattr(m.engine, "team_backoffs", -1))  # (-1: a build without)
"""


def part_numpy(every: int, rounds: int) -> dict:
    out: dict = {}
    for threads in (1, 2):
        out[threads] = []
    for _ in range(rounds):
        for threads in (1, 2):
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            r = subprocess.run([sys.executable, "-c", _NUMPY_CHILD, str(threads), str(every)],
                               capture_output=True, text=True, env=env, check=True)
            best, med, backoffs = r.stdout.split()
            out[threads].append({"min_s": float(best), "median_s": float(med),
                                 "team_backoffs": int(backoffs)})
    for threads, rows in out.items():
        mins = [r["min_s"] * 1e3 for r in rows]
        print(f"numpy product every {every} steps, {threads} thread(s): per step "
              f"{min(mins):.2f}-{max(mins):.2f} ms (min of each process), back-offs "
              f"{[r['team_backoffs'] for r in rows]}", flush=True)
    return {str(k): v for k, v in out.items()}


def part_probe(seconds: float) -> dict:
    import fastbp as fb

    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    nets = {}
    for name, margin in (("no-probe", 0.0), ("probe", None)):
        m = fb.MLP([32, 64, 64, 64, 64, 64, 1], activation="tanh", dtype="float32", seed=0)
        if margin is not None:
            m.engine._set_team_probe_margin(margin)
        nets[name] = (m, fb.optim.Adam(lr=1e-3))
    blocks: dict = {k: [] for k in nets}
    end = time.time() + seconds
    while time.time() < end:
        for name, (m, opt) in nets.items():
            ts = []
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 0.5:
                a = time.perf_counter()
                m.train_step(x, y, "mse", opt)
                ts.append(time.perf_counter() - a)
            blocks[name].append(float(np.median(ts)))
    a, b = np.array(blocks["no-probe"]) * 1e6, np.array(blocks["probe"]) * 1e6
    slow = a > 1.5 * np.median(a)
    print(f"probe A/B over {len(a)} block pairs: mean block median no-probe {a.mean():.1f} us, "
          f"probe {b.mean():.1f} us; {int(slow.sum())} slow blocks without the probe "
          f"({a[slow].mean() if slow.any() else float('nan'):.1f} us) against "
          f"{b[slow].mean() if slow.any() else float('nan'):.1f} us with it", flush=True)
    return {"block_median_s": blocks,
            "team_backoffs": {k: v[0].engine.team_backoffs for k, v in nets.items()},
            "team_probes": {k: v[0].engine.team_probes for k, v in nets.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="numpy,probe")
    ap.add_argument("--every", type=int, default=1, help="numpy: a product every N steps")
    ap.add_argument("--rounds", type=int, default=2, help="numpy: processes per thread count")
    ap.add_argument("--seconds", type=float, default=60.0, help="probe: length of the A/B")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import fastbp as fb

    info = fb.info()
    print(f"CPU {cpu_model()}, ISA {info['isa']}", flush=True)
    result: dict = {"cpu": cpu_model(), "isa": info["isa"]}
    parts = args.parts.split(",")
    if "numpy" in parts:
        result["numpy"] = part_numpy(args.every, args.rounds)
    if "probe" in parts:
        result["probe"] = part_probe(args.seconds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
