"""XOR, the seed example of backpropagation.

3 inputs (the two bits and a constant bias column), 4 sigmoid hidden units, 1 sigmoid output,
squared error, 1500 full-batch gradient-descent steps — written with ``fit`` (one epoch = one
full-batch step here).

    python examples/xor.py [--plot xor.png]
"""
from __future__ import annotations

import argparse

import numpy as np

import fastbp as fb
from fastbp.datasets import xor


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500, help="full-batch steps (default 1500)")
    ap.add_argument("--lr", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="native", choices=["native", "reference"])
    ap.add_argument("--plot", metavar="PNG", help="save the training curves there")
    ap.add_argument("--fast", action="store_true", help="(accepted for uniformity; XOR is fast)")
    args = ap.parse_args(argv)

    X, y = xor("float64")  # X: (4, 3) with a bias column, y: (4, 1)
    model = fb.Sequential([fb.Dense(4, "sigmoid"), fb.Dense(1, "sigmoid")], input_dim=3,
                          dtype="float64", seed=args.seed, backend=args.backend)
    history = model.fit(X, y, loss="mse", optimizer=fb.optim.SGD(lr=args.lr),
                        epochs=args.steps, batch_size=len(X), shuffle=False)
    for step in (1, 10, 100, 250, 500, 1000, 1500):
        if step <= len(history):
            print(f"step {step:5d}  loss {history['loss'][step - 1]:.6f}")
    out = model.predict(X).ravel()
    print("outputs", np.round(out, 3), " targets", y.ravel())
    err = np.abs(out - y.ravel()).max()
    print(f"max |output - target| = {err:.3f}")
    if args.plot:
        fb.plot_history(history, args.plot, title="XOR 3-4-1 sigmoid, squared error")
        print(f"curves saved to {args.plot}")
    return 0 if err < 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
