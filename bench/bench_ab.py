"""A/B of two builds of fastbp on one config, in blocks that alternate between two processes.

A host whose speed changes from second to second (a virtual machine's vCPUs are slowed for
seconds at a time: docs/ENGINE.md, "Threads") makes a before/after of two separate bench runs
meaningless. Here each build lives in a worker process of its own (PYTHONPATH = its package
directory) that keeps one model warm; the workers take turns, a block of steps (or of fit
epochs) each, in the order A B, B A, A B, ..., and after each block a worker sleeps 20 ms so
that its idle OpenMP threads stop spinning before the other runs. What is reported: each
build's min and median time per step over the blocks, and the median of the per-block
ratios A / B (> 1: B is faster), which compares blocks taken within a fraction of a second
of each other.

    python bench/bench_ab.py --a /tmp/before_pkg --b python --config tanh --threads 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from fastbp_bench.harness import cpu_model  # noqa: E402

WORKER = r"""
import json, sys, time
import fastbp as fb
sys.path.insert(0, sys.argv[5])
from fastbp_bench.frameworks import CONFIGS, make_data
cfg = CONFIGS[sys.argv[1]]
threads, steps, mode, epochs = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[6])
fb.set_num_threads(threads)
m = fb.MLP(list(cfg.sizes), activation=cfg.activation, output_activation=cfg.output_activation,
           dtype="float32", seed=0)
o = fb.optim.Adam(lr=1e-3)
xb, yb = make_data(cfg, cfg.batch, 0)
X, y = make_data(cfg, cfg.n_fit, 1)
def block():
    if mode == "step":
        for _ in range(steps):
            m.train_step(xb, yb, cfg.loss, o)
        return steps
    for _ in range(epochs):  # (one fit call an epoch, as users call it)
        m.fit(X, y, loss=cfg.loss, optimizer=o, epochs=1, batch_size=cfg.batch, shuffle=True,
              progress=False, grad_norm=False)
    return cfg.fit_steps * epochs
block()
print(json.dumps({"version": fb.__version__, "info": {k: str(v) for k, v in fb.info().items()}}),
      flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    block()  # (warm again after the other build's block)
    t = time.perf_counter()
    n = block()
    dt = time.perf_counter() - t
    time.sleep(0.02)  # (this process's idle team threads stop spinning before the other runs)
    print(json.dumps(dt / n), flush=True)
"""


def run(a: str, b: str, config: str, threads: int, steps: int, mode: str,
        blocks: int, epochs: int = 1) -> Dict[str, Any]:
    procs = []
    for path in (a, b):
        env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, config, str(threads), str(steps), mode, str(BENCH),
             str(epochs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
    try:
        infos = [json.loads(p.stdout.readline()) for p in procs]
        times: List[List[float]] = [[], []]
        for i in range(blocks):
            for k in ((0, 1) if i % 2 == 0 else (1, 0)):
                procs[k].stdin.write("go\n")
                procs[k].stdin.flush()
                times[k].append(float(procs[k].stdout.readline()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.stdin.write("q\n")
                p.stdin.flush()
                p.wait(timeout=60)
    ratios = [x / y for x, y in zip(times[0], times[1])]
    return dict(config=config, threads=threads, mode=mode, steps_per_block=steps,
                epochs_per_block=epochs, blocks=blocks, cpu=cpu_model(),
                a=dict(path=a, **infos[0], step_s=times[0]),
                b=dict(path=b, **infos[1], step_s=times[1]),
                ratio_a_over_b=dict(median=statistics.median(ratios), all=ratios))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="package directory of build A (its PYTHONPATH)")
    ap.add_argument("--b", required=True, help="package directory of build B")
    ap.add_argument("--config", default="tanh", help="a bench config (fastbp_bench CONFIGS)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", choices=("step", "fit"), default="step",
                    help="train_step blocks, or blocks of fit epochs")
    ap.add_argument("--steps", type=int, default=200, help="train_steps per block")
    ap.add_argument("--epochs", type=int, default=1,
                    help="fit mode: fit calls of one epoch per block (more for a short epoch)")
    ap.add_argument("--blocks", type=int, default=30, help="blocks per build")
    ap.add_argument("--json", help="write the result here")
    opts = ap.parse_args(argv)
    r = run(opts.a, opts.b, opts.config, opts.threads, opts.steps, opts.mode, opts.blocks,
            opts.epochs)
    for key in ("a", "b"):
        t = [s * 1e6 for s in r[key]["step_s"]]
        print(f"{key}: {r[key]['path']}: {opts.config} {opts.mode} t={opts.threads}: "
              f"min {min(t):.2f} us, median {statistics.median(t):.2f} us per step")
    print(f"median per-block ratio A/B: {r['ratio_a_over_b']['median']:.3f} (> 1: B faster); "
          f"CPU {r['cpu']}, ISA {r['b']['info'].get('isa')}")
    if opts.json:
        Path(opts.json).write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
