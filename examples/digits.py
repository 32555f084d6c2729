"""Handwritten digits (UCI, 1797 8x8 images, 10 classes): a classifier trained with
validation, early stopping, a warm-up + cosine learning-rate schedule and checkpoints.

    python examples/digits.py [--epochs 40] [--out DIR] [--plot digits.png] [--fast]

The best epoch (lowest validation loss) is checkpointed with ``ModelCheckpoint``; the
script reloads it with ``fastbp.load`` and reports its test accuracy, then shows that
resuming from a checkpoint continues training exactly.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import fastbp as fb
from fastbp.callbacks import EarlyStopping, ModelCheckpoint
from fastbp.datasets import load_digits
from fastbp.schedules import CosineAnnealingLR, LinearWarmup


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="native", choices=["native", "reference"])
    ap.add_argument("--out", help="directory for checkpoints (default: a temporary one)")
    ap.add_argument("--plot", metavar="PNG", help="save the training curves there")
    ap.add_argument("--fast", action="store_true", help="few epochs (for tests)")
    args = ap.parse_args(argv)
    if args.fast or os.environ.get("FASTBP_EXAMPLES_FAST"):
        args.epochs = min(args.epochs, 6)

    X, y = load_digits("float32")
    perm = np.random.default_rng(args.seed).permutation(len(X))
    X, y = X[perm], y[perm]
    X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]

    model = fb.Sequential([fb.Dense(128, "relu"), fb.Dropout(0.1), fb.Dense(64, "relu"),
                           fb.Dense(10)], input_dim=64, seed=args.seed, backend=args.backend)
    # validation_split=0.15 holds out the last 225 training samples
    steps_per_epoch = -(-int(1500 * 0.85) // args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = max(1, steps_per_epoch)  # one epoch of warm-up, then cosine to the end
    schedule = LinearWarmup(warmup, start_factor=0.1,
                            then=CosineAnnealingLR(T_max=max(1, total - warmup), eta_min=1e-5))
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.TemporaryDirectory()
        out = tmp.name
    os.makedirs(out, exist_ok=True)
    best_path = os.path.join(out, "digits-best.npz")
    callbacks = [EarlyStopping(monitor="val_loss", patience=6, min_delta=1e-4,
                               restore_best_weights=True),
                 ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True)]
    print(model)
    history = model.fit(X_train, y_train, loss="softmax_cross_entropy",
                        optimizer=fb.optim.Adam(lr=args.lr), epochs=args.epochs,
                        batch_size=args.batch_size, validation_split=0.15,
                        metrics=["accuracy"], callbacks=callbacks, schedule=schedule,
                        schedule_per="step")
    for e in range(len(history)):
        if e < 3 or e == len(history) - 1 or e % 5 == 4:
            print(f"epoch {history.epoch[e] + 1:3d}  loss {history['loss'][e]:.4f}  "
                  f"val_loss {history['val_loss'][e]:.4f}  "
                  f"val_accuracy {history['val_accuracy'][e]:.3f}  lr {history['lr'][e]:.2e}")
    es = callbacks[0]
    if es.stopped_epoch is not None:
        print(f"early stopping after epoch {es.stopped_epoch + 1}; best epoch {es.best_epoch + 1}")

    best = fb.load(best_path)
    acc = float(np.mean(best.predict(X_test).argmax(1) == y_test))
    print(f"best checkpoint: epoch {best.epochs_trained}, test accuracy {acc:.3f}")

    # resuming from a checkpoint continues bitwise as if training had never stopped
    a = fb.load(best_path)
    b = fb.load(best_path)
    a.fit(X_train, y_train, loss="softmax_cross_entropy", epochs=2, progress=False)
    b.save(os.path.join(out, "digits-resume.npz"))
    b = fb.load(os.path.join(out, "digits-resume.npz"))
    b.fit(X_train, y_train, loss="softmax_cross_entropy", epochs=1, progress=False)
    b.fit(X_train, y_train, loss="softmax_cross_entropy", epochs=1, progress=False)
    same = all(np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    print(f"resume check: 2 epochs straight == 1 + save/load + 1: {same}")

    if args.plot:
        fb.plot_history(history, args.plot, title="digits: 64-128-64-10 relu, Adam, "
                        "warm-up + cosine, early stopping")
        print(f"curves saved to {args.plot}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if (acc > 0.85 and same) else 1


if __name__ == "__main__":
    raise SystemExit(main())
