"""Metrics and inference-mode evaluation for ``fit`` (validation loss, accuracy).

Everything here runs on the outputs of ``model.predict`` (the native inference forward
pass); the loss comes from the model's engine (``engine.loss_value``: the same loss kernel it
trains with) plus the ``l1`` / ``l2`` penalties, so ``val_loss`` is directly comparable to the
training ``loss``; metrics reduce in NumPy.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .layers import walk_spec
from .registry import layer_kinds, resolve_loss

__all__ = ["accuracy", "mse", "mae", "METRICS", "get_metric", "penalty", "parameter_names",
           "evaluate_outputs", "evaluate"]

_CLASSIFICATION = ("softmax_cross_entropy", "binary_cross_entropy")


def accuracy(outputs: np.ndarray, y: np.ndarray, loss: str) -> float:
    """Fraction of correct predictions.

    ``softmax_cross_entropy``: ``argmax`` of the logits against the integer label (or the
    ``argmax`` of probability targets). ``binary_cross_entropy``: ``logit > 0`` against
    ``target > 0.5``, averaged over every output.

    Parameters
    ----------
    outputs : numpy.ndarray
        ``(n, k)`` logits from ``predict``.
    y : numpy.ndarray
        Targets, as given to ``fit``.
    loss : str
        The training loss; accuracy needs a classification loss.

    Returns
    -------
    float
    """
    if loss == "softmax_cross_entropy":
        y = np.asarray(y)
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return float(np.mean(outputs.argmax(axis=1) == labels))
    if loss == "binary_cross_entropy":
        y = np.asarray(y).reshape(outputs.shape)
        return float(np.mean((outputs > 0) == (y > 0.5)))
    raise ValueError(f"metrics: 'accuracy' needs a classification loss "
                     f"({' or '.join(_CLASSIFICATION)}), got loss={loss!r}")


def mse(outputs: np.ndarray, y: np.ndarray, loss: str) -> float:
    """Mean squared error of the outputs (regression losses only)."""
    _regression("mse", loss)
    d = outputs.astype(np.float64) - np.asarray(y, np.float64).reshape(outputs.shape)
    return float(np.mean(d ** 2))


def mae(outputs: np.ndarray, y: np.ndarray, loss: str) -> float:
    """Mean absolute error of the outputs (regression losses only)."""
    _regression("mae", loss)
    d = outputs.astype(np.float64) - np.asarray(y, np.float64).reshape(outputs.shape)
    return float(np.mean(np.abs(d)))


def _regression(name: str, loss: str) -> None:
    if loss in _CLASSIFICATION:
        raise ValueError(f"metrics: {name!r} needs a regression loss (mse, mae, huber), "
                         f"got loss={loss!r}")


METRICS: Dict[str, Callable[[np.ndarray, np.ndarray, str], float]] = {
    "accuracy": accuracy, "mse": mse, "mae": mae}
_ALIASES = {"acc": "accuracy", "mean_squared_error": "mse", "mean_absolute_error": "mae"}


def get_metric(name: Any) -> str:
    """Canonical metric name (``"acc"`` → ``"accuracy"``); ValueError if unknown."""
    if not isinstance(name, str):
        raise TypeError(f"metrics must be a list of names, got an item of type "
                        f"{type(name).__name__}")
    key = _ALIASES.get(name, name)
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(METRICS)}")
    return key


def check_metrics(metrics: Optional[Sequence[str]], loss: str) -> List[str]:
    """Validate ``fit``'s ``metrics`` argument against the loss; returns canonical names."""
    if metrics is None:
        return []
    if isinstance(metrics, str):
        metrics = [metrics]
    names = []
    for m in metrics:
        key = get_metric(m)
        if key == "accuracy" and loss not in _CLASSIFICATION:
            accuracy(np.zeros((0, 1)), np.zeros(0), loss)  # raises the explanatory error
        if key in ("mse", "mae"):
            _regression(key, loss)
        if key not in names:
            names.append(key)
    return names


def _param_table(spec: Sequence[Dict[str, Any]]) -> List[Tuple[str, bool]]:
    """(name, penalised) of every parameter of a spec in ``parameters()`` order, from the
    registry's layer kinds. Layers are numbered per type from 1 in a pre-order walk."""
    kinds = layer_kinds()
    out: List[Tuple[str, bool]] = []
    counts: Dict[str, int] = {}
    for entry in walk_spec(spec):
        kind = entry["type"]
        counts[kind] = counts.get(kind, 0) + 1
        out.extend((f"{kind}{counts[kind]}.{name}", bool(pen))
                   for name, pen in kinds[kind]["params"])
    return out


def parameter_names(spec: Sequence[Dict[str, Any]]) -> List[str]:
    """Names of the parameters of a layer spec, in ``parameters()`` order:
    ``dense1.W``, ``dense1.b``, ``batchnorm1.gamma``, ``dense2.W``, ..."""
    return [name for name, _ in _param_table(spec)]


def penalty(model: Any, loss_params: Dict[str, Any]) -> float:
    """``l1 * sum|W| + 0.5 * l2 * sum W**2`` over the penalised parameters (the dense
    weights), as the engines add it to the training loss."""
    l1 = float(loss_params.get("l1", 0.0) or 0.0)
    l2 = float(loss_params.get("l2", 0.0) or 0.0)
    if l1 == 0.0 and l2 == 0.0:
        return 0.0
    total = 0.0
    for (_, pen), p in zip(_param_table(model.spec), model.parameters()):
        if pen:
            if l1:
                total += l1 * float(np.abs(p).sum(dtype=np.float64))
            if l2:
                total += 0.5 * l2 * float(np.square(p, dtype=np.float64).sum())
    return total


def evaluate(model: Any, X: Any, y: Any, loss: str = "mse", metrics: Optional[Sequence[str]] = None,
             sample_weight: Any = None, batch_size: Optional[int] = None,
             **loss_params: Any) -> Dict[str, float]:
    """Loss (penalties included) and metrics of ``model`` on (X, y), in inference mode.

    Parameters
    ----------
    model : Sequential
    X, y : array_like
        Data, as for ``fit``.
    loss : str
        Loss name.
    metrics : list of str, optional
        e.g. ``["accuracy"]``.
    sample_weight : array_like, optional
        Weights of the loss (not of the metrics).
    batch_size : int, optional
        Predict in chunks of this many rows (bounds memory); default all at once.
    **loss_params
        ``delta``, ``l1``, ``l2`` as for ``fit``.

    Returns
    -------
    dict
        ``{"loss": ..., "<metric>": ...}``.
    """
    loss = resolve_loss(loss)
    names = check_metrics(metrics, loss)
    Xa, ya, wa = model._X(X), model._y(y, loss), model._w(sample_weight)
    model.engine.check_batch(Xa, ya, loss, loss_params, wa)
    if batch_size is None:
        out = model.predict(Xa)
    else:
        out = np.concatenate([model.predict(Xa[i:i + batch_size])
                              for i in range(0, Xa.shape[0], int(batch_size))])
    return evaluate_outputs(model, out, ya, wa, loss, names, loss_params)


def evaluate_outputs(model: Any, out: np.ndarray, y: Any, w: Any, loss: str,
                     names: Sequence[str], loss_params: Dict[str, Any]) -> Dict[str, float]:
    """Loss (by the model's engine, penalties added) and metrics of given outputs."""
    value = model.engine.loss_value(out, y, loss, loss_params, w)
    logs = {"loss": float(value) + penalty(model, loss_params)}
    for m in names:
        logs[m] = METRICS[m](out, y, loss)
    return logs
