"""The training loop: whole epochs run natively, Python sees the model once per epoch."""
from __future__ import annotations

import time
from typing import Any, Dict, List

import numpy as np

__all__ = ["History", "fit"]


class History:
    """Per-epoch records of a ``fit`` run: ``history.history["loss"]`` etc."""

    def __init__(self) -> None:
        self.history: Dict[str, List[float]] = {"loss": [], "time": []}
        self.epoch: List[int] = []

    def __getitem__(self, key: str) -> List[float]:
        return self.history[key]

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


def fit(model: Any, X: Any, y: Any, loss: str = "mse", optimizer: Any = None, epochs: int = 1,
        batch_size: int = 32, shuffle: bool = True, sample_weight: Any = None,
        **loss_params: Any) -> History:
    """Train ``model`` on (X, y) for ``epochs`` epochs of mini-batches.

    Each epoch is one native call (shuffle with the model's seeded stream, gather, forward,
    backward, update for every mini-batch) with the GIL released.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    model._loss_args(loss, loss_params)
    Xa = model._X(X)
    ya = model._y(y, loss)
    wa = model._w(sample_weight)
    model._sync_optimizer(optimizer)
    history = History()
    for e in range(int(epochs)):
        t0 = time.perf_counter()
        value = model._engine.fit_epoch(Xa, ya, loss, loss_params, wa, int(batch_size),
                                        bool(shuffle), None)
        history.history["loss"].append(float(value))
        history.history["time"].append(time.perf_counter() - t0)
        history.epoch.append(e)
    model.history = history
    return history
