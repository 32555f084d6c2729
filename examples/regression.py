"""Regression: a neural surrogate of a physics model.

The displacement of a damped harmonic oscillator released from rest at x = 1,
``x(t) = exp(-zeta w t) (cos(w_d t) + zeta w / w_d sin(w_d t))`` with ``w = 2 pi`` and
``w_d = w sqrt(1 - zeta^2)``, learnt as a function of time ``t`` in [0, 2] and damping
ratio ``zeta`` in [0.05, 0.6] — the kind of cheap emulator used in place of an expensive
simulation. A tanh MLP, Huber loss, Adam with ``ReduceLROnPlateau``.

    python examples/regression.py [--epochs 60] [--plot regression.png] [--fast]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import fastbp as fb
from fastbp.schedules import ReduceLROnPlateau


def oscillator(t: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """Exact displacement of the under-damped oscillator (x(0) = 1, x'(0) = 0)."""
    w = 2 * np.pi
    wd = w * np.sqrt(1 - zeta ** 2)
    return np.exp(-zeta * w * t) * (np.cos(wd * t) + zeta * w / wd * np.sin(wd * t))


def make_data(n: int, rng: np.random.Generator):
    t = rng.uniform(0, 2, n)
    zeta = rng.uniform(0.05, 0.6, n)
    X = np.stack([t - 1.0, (zeta - 0.325) / 0.275], axis=1)  # inputs scaled to about [-1, 1]
    return X.astype(np.float32), oscillator(t, zeta).astype(np.float32)[:, None]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="native", choices=["native", "reference"])
    ap.add_argument("--plot", metavar="PNG", help="save the training curves there")
    ap.add_argument("--fast", action="store_true", help="few epochs (for tests)")
    args = ap.parse_args(argv)
    if args.fast or os.environ.get("FASTBP_EXAMPLES_FAST"):
        args.epochs = min(args.epochs, 15)

    rng = np.random.default_rng(args.seed)
    X, y = make_data(args.samples, rng)
    X_test, y_test = make_data(2000, rng)

    model = fb.MLP([2, 64, 64, 64, 1], activation="tanh", seed=args.seed, backend=args.backend)
    history = model.fit(X, y, loss="huber", delta=0.1, optimizer=fb.optim.Adam(lr=3e-3),
                        epochs=args.epochs, batch_size=64, validation_split=0.2,
                        metrics=["mae"],
                        schedule=ReduceLROnPlateau("val_loss", factor=0.5, patience=5,
                                                   min_lr=1e-5))
    for e in range(len(history)):
        if e < 2 or e == len(history) - 1 or (e + 1) % max(1, len(history) // 6) == 0:
            print(f"epoch {e + 1:4d}  loss {history['loss'][e]:.2e}  "
                  f"val_loss {history['val_loss'][e]:.2e}  val_mae {history['val_mae'][e]:.4f}  "
                  f"lr {history['lr'][e]:.1e}")
    pred = model.predict(X_test)
    rmse = float(np.sqrt(np.mean((pred - y_test) ** 2)))
    baseline = float(np.sqrt(np.mean((y_test - y.mean()) ** 2)))
    print(f"test RMSE {rmse:.4f}  (predicting the mean: {baseline:.4f}; "
          f"{baseline / rmse:.1f}x better)")
    if args.plot:
        fb.plot_history(history, args.plot, title="damped-oscillator surrogate: 2-64-64-64-1 "
                        "tanh, Huber, ReduceLROnPlateau")
        print(f"curves saved to {args.plot}")
    return 0 if rmse < 0.5 * baseline else 1


if __name__ == "__main__":
    raise SystemExit(main())
