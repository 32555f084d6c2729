"""Command line: ``fastbp demo``, ``fastbp info`` (also ``python -m fastbp ...``)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, Optional

import numpy as np


def _time_steps(model, X, y, loss, opt, steps: int) -> float:
    model.train_step(X, y, loss, opt)  # warm-up: first step at this batch size allocates
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_step(X, y, loss, opt)
    return (time.perf_counter() - t0) / steps


def demo(args: argparse.Namespace) -> int:
    import fastbp as fb
    from fastbp.datasets import load_digits, xor

    info = fb.info()
    print(f"fastbp {info['version']}  isa={info['isa']}  threads={info['num_threads']}  "
          f"openmp={info['openmp']}")

    # 1. XOR, the seed example: 3 inputs (bias column), 4 sigmoid hidden, 1 sigmoid output,
    #    squared error, full-batch gradient descent.
    print("\n== XOR: 3-4-1 sigmoid, squared error, 1500 full-batch SGD steps ==")
    X, y = xor("float64")
    model = fb.Sequential([fb.Dense(4, "sigmoid"), fb.Dense(1, "sigmoid")], input_dim=3,
                          dtype="float64", seed=args.seed)
    opt: fb.optim.Optimizer = fb.optim.SGD(lr=2.0)
    for step in range(1, 1501):
        loss = model.train_step(X, y, "mse", opt)
        if step in (1, 10, 100, 250, 500, 1000, 1500):
            print(f"  step {step:5d}  loss {loss:.6f}")
    out = model.predict(X).ravel()
    print("  outputs", np.round(out, 3), " targets", y.ravel())
    print(f"  max |output - target| = {np.abs(out - y.ravel()).max():.3f}")

    # 2. Digits: a real small classification task.
    print("\n== digits (UCI handwritten digits, 1797 8x8 images): 64-128-10 relu, Adam ==")
    X, y = load_digits("float32")
    perm = np.random.default_rng(0).permutation(len(X))
    X, y = X[perm], y[perm]
    ntr = 1500
    Xtr, ytr, Xte, yte = X[:ntr], y[:ntr], X[ntr:], y[ntr:]
    model = fb.MLP([64, 128, 10], activation="relu", seed=args.seed)
    opt = fb.optim.Adam(lr=1e-3)
    t0 = time.perf_counter()
    epochs = args.epochs
    for epoch in range(1, epochs + 1):
        h = model.fit(Xtr, ytr, loss="softmax_cross_entropy", optimizer=opt, epochs=1,
                      batch_size=32)
        if epoch in (1, 2, 5, 10, 20, epochs) or epoch % 10 == 0:
            acc = (model.predict(Xte).argmax(1) == yte).mean()
            print(f"  epoch {epoch:3d}  loss {h['loss'][-1]:.4f}  test accuracy {acc:.3f}")
    dt = time.perf_counter() - t0
    acc = (model.predict(Xte).argmax(1) == yte).mean()
    steps = epochs * -(-ntr // 32)
    print(f"  final test accuracy {acc:.3f}  ({steps} steps in {dt:.3f} s, "
          f"{dt / steps * 1e6:.1f} us/step inside fit)")

    # 3. Time per train_step, native vs the NumPy reference, same network and batch.
    print("\n== time per train_step (Adam, batch 32, digits 64-128-10), native vs reference ==")
    xb, yb = Xtr[:32], ytr[:32]
    res = {}
    for backend, steps in (("native", 2000), ("reference", 200)):
        m = fb.MLP([64, 128, 10], activation="relu", seed=args.seed, backend=backend)
        res[backend] = _time_steps(m, xb, yb, "softmax_cross_entropy", fb.optim.Adam(), steps)
        print(f"  {backend:9s}  {res[backend] * 1e6:9.1f} us/step")
    print(f"  native is {res['reference'] / res['native']:.1f}x faster than the reference")
    return 0


def info_cmd(args: argparse.Namespace) -> int:
    import fastbp as fb

    info = fb.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:15s} {v}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from fastbp._version import __version__

    parser = argparse.ArgumentParser(prog="fastbp", description="fast backprop for MLPs on the CPU")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("demo", help="train XOR and digits, compare native with reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=30)
    p.set_defaults(func=demo)
    p = sub.add_parser("info", help="version, instruction set, threads, OpenMP")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=info_cmd)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
