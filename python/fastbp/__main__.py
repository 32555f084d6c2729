"""Command line: ``fastbp demo``, ``fastbp info``, ``fastbp profile`` (also ``python -m fastbp``)."""
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
                      batch_size=32, progress=False, grad_norm=False)
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


def _cpu_model() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def full_info() -> dict:
    """``fastbp.info()`` plus the environment a performance report needs: OpenMP build,
    thread settings, CPU, platform, Python and NumPy versions."""
    import os
    import platform

    import fastbp as fb
    from fastbp import _core

    info = dict(fb.info())
    info["openmp_enabled"] = bool(_core.have_openmp())
    info["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    try:
        info["cpu_count"] = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        info["cpu_count"] = os.cpu_count()
    info["cpu"] = _cpu_model()
    info["machine"] = platform.machine()
    info["platform"] = platform.platform()
    info["python"] = platform.python_version()
    info["numpy"] = np.__version__
    return info


def info_cmd(args: argparse.Namespace) -> int:
    info = full_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            if isinstance(v, list):
                v = ", ".join(map(str, v))
            print(f"{k:16s} {v}")
    return 0


def _sizes(text: str) -> List[int]:
    """argparse type of --sizes: comma-separated positive integers, at least two."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 784,256,10, got {text!r}") from None
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(
            f"needs at least an input and an output width (e.g. 784,10), got {text!r}")
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return sizes


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def profile_cmd(args: argparse.Namespace) -> int:
    from fastbp import profile as prof

    compare = [c for c in (args.compare or "").split(",") if c.strip()]
    result = prof.profile_network(args.sizes, activation=args.activation, batch=args.batch,
                                  optimizer=args.optimizer, dtype=args.dtype,
                                  threads=args.threads, loss=args.loss, repeats=args.repeats,
                                  seed=args.seed, compare=compare,
                                  reference=not args.no_reference)
    if args.plot:
        try:
            prof.plot_profile(result, args.plot)
            result["plot"] = args.plot
        except ImportError:
            result["network"]["notes"].append(
                "--plot needs matplotlib (pip install matplotlib): no plot written")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(prof.format_table(result))
        if result.get("plot"):
            print(f"plot written to {result['plot']}")
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
    p = sub.add_parser("info", help="version, instruction set, threads, OpenMP, CPU, platform")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=info_cmd)

    from fastbp.layers import ACTIVATIONS
    from fastbp.registry import losses

    p = sub.add_parser(
        "profile", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="per-layer forward/backward/update times, native vs reference",
        description="Profile one training step of an MLP layer by layer: time of forward, "
                    "backward and update, native engine against the NumPy reference, with "
                    "GFLOP/s, speed-up and the largest absolute difference between the "
                    "backends.",
        epilog="""method:
  The native engine runs a whole step in one call, so each layer i (sizes[i] -> sizes[i+1])
  is timed as a single-layer Sequential of that shape, batch and activation:
    forward  = predict
    backward = loss_and_gradients - forward - copying the gradients out (measured, subtracted)
    update   = train_step - (forward + backward)
  Layers after the first start with an identity layer so that their backward includes the
  input gradient dX = dZ W^T. Hidden layers use the mse loss on random targets, the output
  layer the network's loss. Each time is the best (minimum) of --repeats loops of about 1 ms.
  GFLOP/s counts the GEMMs: forward 2*B*in*out, backward 2*B*in*out (+ the same for dX).
  The whole network's train_step is timed too (and PyTorch eager / JAX jit with --compare).

example:
  fastbp profile --sizes 784,256,256,10 --activation relu --batch 128 --optimizer adam \\
                 --dtype float32 --threads 2 --loss softmax_cross_entropy --repeats 10""")
    p.add_argument("--sizes", type=_sizes, default=[784, 256, 256, 10],
                   help="layer widths, input first (default 784,256,256,10)")
    p.add_argument("--activation", default="relu", choices=ACTIVATIONS,
                   help="hidden activation (default relu)")
    p.add_argument("--batch", type=_positive, default=128, help="batch size (default 128)")
    p.add_argument("--optimizer", default="adam",
                   choices=("sgd", "adam", "adamw", "rmsprop", "adagrad"),
                   help="optimizer, torch defaults (default adam)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--threads", type=_positive, default=None,
                   help="native engine threads (default: current setting)")
    p.add_argument("--loss", default="softmax_cross_entropy", choices=losses(),
                   help="loss of the output layer (default softmax_cross_entropy)")
    p.add_argument("--repeats", type=_positive, default=5,
                   help="timed repeats, the minimum is reported (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--compare", default="", metavar="torch,jax",
                   help="also time the whole step in PyTorch eager and/or JAX jit")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="bar chart per layer and phase, native vs reference (matplotlib)")
    p.add_argument("--no-reference", action="store_true",
                   help="time the native engine only (no differences)")
    p.set_defaults(func=profile_cmd)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
