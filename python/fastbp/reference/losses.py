"""Loss functions on network outputs (logits), each returning ``(loss, dloss/doutput)``.

Reduction (ENGINE.md): let ``l_i`` be sample ``i``'s loss averaged over its outputs
(for ``softmax_cross_entropy`` the per-sample cross-entropy, one value per sample).
Without weights the loss is ``mean_i l_i`` (= torch's ``reduction="mean"``); with
``sample_weight`` ``w`` it is ``sum_i w_i l_i / sum_i w_i`` (0, with a zero gradient, when
every weight is 0, which only a mini-batch of ``fit_epoch`` can see).

Elementwise losses (``d = output - target``):

* ``mse``: ``d^2``; gradient ``2 d``                                      (torch ``MSELoss``)
* ``mae``: ``|d|``; gradient ``sign(d)`` (0 at 0)                          (torch ``L1Loss``)
* ``huber``: ``d^2/2`` if ``|d| <= delta`` else ``delta (|d| - delta/2)``;
  gradient ``clip(d, -delta, delta)``                                      (torch ``HuberLoss``)
* ``binary_cross_entropy`` (logits ``x``, targets ``t``):
  ``max(x, 0) - x t + log1p(exp(-|x|))``; gradient ``sigmoid(x) - t``      (``BCEWithLogitsLoss``)
* ``poisson`` (log link: logits ``x``, predictions ``exp(x)``, targets ``t >= 0``): the half
  Poisson deviance ``exp(x) - t x + t log(t) - t`` (``t log t`` = 0 for ``t <= 0``);
  gradient ``exp(x) - t``. (torch ``PoissonNLLLoss(log_input=True)`` without the constant
  ``t log t - t``; scikit-learn's MLPRegressor ``loss="poisson"``.)

``softmax_cross_entropy`` (logits ``x``, shape ``(n, k)``): ``logsumexp(x_i) - x_i[y_i]`` for
integer labels, ``-sum_c t_ic log_softmax(x_i)_c`` for probability targets; gradient
``softmax(x_i) sum_c t_ic - t_i`` (one-hot ``t`` for labels).            (``CrossEntropyLoss``)

All computations are in the dtype of ``output``; they are stable for logits of +-1e4.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

__all__ = [
    "LOSSES",
    "check_target",
    "check_sample_weight",
    "compute_loss",
    "mse",
    "mae",
    "huber",
    "binary_cross_entropy",
    "softmax_cross_entropy",
    "poisson",
]

#: The losses this module implements (tests check it against the registry).
LOSSES = ("mse", "mae", "huber", "binary_cross_entropy", "softmax_cross_entropy", "poisson")


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def check_target(name: str, output_shape: Tuple[int, int], y: Any, dtype: np.dtype) -> np.ndarray:
    """Validate and convert the target ``y`` for loss ``name``.

    Parameters
    ----------
    name : str
        Loss name.
    output_shape : tuple of int
        ``(n, k)``, the shape of the network output.
    y : array_like
        Targets. For ``softmax_cross_entropy``: 1-D integer labels in ``[0, k)`` or an
        ``(n, k)`` array of probabilities. Otherwise ``(n, k)``, or ``(n,)`` when ``k == 1``.
    dtype : numpy.dtype
        Engine dtype (float targets are converted to it).

    Returns
    -------
    numpy.ndarray
        ``int64`` labels of shape ``(n,)`` or float targets of shape ``(n, k)``.

    Raises
    ------
    TypeError
        If ``y`` is not numeric, or 1-D ``softmax_cross_entropy`` labels are not integers.
    ValueError
        On a shape mismatch, labels out of range or non-finite targets.
    """
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    n, k = output_shape
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must be a real numeric array, got dtype {y.dtype}")
    if name == "softmax_cross_entropy" and y.ndim == 1:
        if y.dtype.kind not in "iu":
            raise TypeError(
                "y for softmax_cross_entropy must be integer class labels (1-D) or "
                f"probabilities of shape (n, k); got a 1-D array of dtype {y.dtype}"
            )
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} labels but X has {n} rows")
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(
                f"y labels must be in [0, {k}) for {k} outputs; got min {y.min()}, max {y.max()}"
            )
        return y.astype(np.int64)
    if y.ndim == 1 and k == 1 and name != "softmax_cross_entropy":
        y = y.reshape(n if y.shape[0] == n else -1, 1)
    if y.shape != (n, k):
        raise ValueError(f"y must have shape {(n, k)} for loss {name!r}, got {y.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        y = y.astype(dtype)
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    return y


def check_sample_weight(sample_weight: Any, n: int, dtype: np.dtype) -> Optional[np.ndarray]:
    """Validate ``sample_weight``: None, or ``n`` finite non-negative weights with a positive sum.

    Parameters
    ----------
    sample_weight : array_like or None
        One weight per sample.
    n : int
        Number of samples.
    dtype : numpy.dtype
        Engine dtype.

    Returns
    -------
    numpy.ndarray or None
        The weights as a 1-D array of ``dtype``.
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "iuf":
        raise TypeError(f"sample_weight must be a real numeric array, got dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        w = w.astype(dtype)
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinite values")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    if not w.sum() > 0:
        raise ValueError("sample_weight must have a positive sum")
    return w


def _reduce(per_elem: np.ndarray, dper_elem: np.ndarray, w: Optional[np.ndarray]):
    """Mean over outputs per sample, then (weighted) mean over samples."""
    n, k = per_elem.shape
    dt = per_elem.dtype
    per_sample = per_elem.mean(axis=1)
    if w is None:
        loss = per_sample.mean()
        grad = dper_elem / dt.type(n * k)
    else:
        wsum = w.sum()
        if not wsum > 0:  # an all-zero-weight mini-batch contributes nothing
            return 0.0, np.zeros_like(dper_elem)
        loss = (w * per_sample).sum() / wsum
        grad = dper_elem * (w / (wsum * dt.type(k)))[:, None]
    return float(loss), grad.astype(dt, copy=False)


def mse(
    output: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None
) -> Tuple[float, np.ndarray]:
    """Mean squared error. See the module docstring for the reduction.

    Parameters
    ----------
    output : numpy.ndarray
        ``(n, k)`` predictions.
    y : numpy.ndarray
        ``(n, k)`` targets (same dtype).
    w : numpy.ndarray, optional
        ``(n,)`` sample weights.

    Returns
    -------
    loss : float
    doutput : numpy.ndarray
        Gradient of ``loss`` with respect to ``output``.
    """
    d = output - y
    return _reduce(d * d, 2 * d, w)


def mae(
    output: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None
) -> Tuple[float, np.ndarray]:
    """Mean absolute error (gradient ``sign(d)``, 0 at 0 and at NaN as in torch).

    Arguments as :func:`mse`.
    """
    d = output - y
    sign = np.where(d > 0, 1, np.where(d < 0, -1, 0)).astype(d.dtype)
    return _reduce(np.abs(d), sign, w)


def huber(
    output: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None, delta: float = 1.0
) -> Tuple[float, np.ndarray]:
    """Huber loss with threshold ``delta`` (> 0). Arguments as :func:`mse`."""
    dt = output.dtype
    dl = dt.type(delta)
    d = output - y
    ad = np.abs(d)
    per = np.where(ad <= dl, d * d / 2, dl * (ad - dl / 2))
    grad = np.clip(d, -dl, dl)
    return _reduce(per.astype(dt, copy=False), grad.astype(dt, copy=False), w)


def binary_cross_entropy(
    output: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None
) -> Tuple[float, np.ndarray]:
    """Binary cross-entropy on logits (torch ``BCEWithLogitsLoss``). Arguments as :func:`mse`."""
    x = output
    per = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    grad = _stable_sigmoid(x) - y
    return _reduce(per.astype(x.dtype, copy=False), grad, w)


def poisson(
    output: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None
) -> Tuple[float, np.ndarray]:
    """Half Poisson deviance with a log link on logits. Arguments as :func:`mse`."""
    mu = np.exp(output)
    y64 = y.astype(np.float64)
    ylogy = np.where(y64 > 0, y64 * np.log(np.where(y64 > 0, y64, 1.0)), 0.0)
    per = mu.astype(np.float64) - y64 * output.astype(np.float64) + ylogy - y64
    return _reduce(per.astype(output.dtype), (mu - y).astype(output.dtype, copy=False), w)


def softmax_cross_entropy(
    output: np.ndarray, y: np.ndarray, w: Optional[np.ndarray] = None
) -> Tuple[float, np.ndarray]:
    """Softmax cross-entropy on logits (torch ``CrossEntropyLoss``).

    Parameters
    ----------
    output : numpy.ndarray
        ``(n, k)`` logits.
    y : numpy.ndarray
        ``(n,)`` int64 labels or ``(n, k)`` probability targets (same dtype as ``output``).
    w : numpy.ndarray, optional
        ``(n,)`` sample weights.

    Returns
    -------
    loss : float
    doutput : numpy.ndarray
    """
    x = output
    n, k = x.shape
    dt = x.dtype
    shifted = x - x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_softmax = shifted - lse
    softmax = np.exp(log_softmax)
    if y.ndim == 1:
        rows = np.arange(n)
        per_sample = -log_softmax[rows, y]
        grad = softmax.copy()
        grad[rows, y] -= 1
    else:
        per_sample = -(y * log_softmax).sum(axis=1)
        grad = softmax * y.sum(axis=1, keepdims=True) - y
    if w is None:
        loss = per_sample.mean()
        grad = grad / dt.type(n)
    else:
        wsum = w.sum()
        if not wsum > 0:  # an all-zero-weight mini-batch contributes nothing
            return 0.0, np.zeros_like(grad)
        loss = (w * per_sample).sum() / wsum
        grad = grad * (w / wsum)[:, None]
    return float(loss), grad.astype(dt, copy=False)


def compute_loss(
    name: str,
    output: np.ndarray,
    y: np.ndarray,
    sample_weight: Optional[np.ndarray] = None,
    loss_params: Optional[Dict[str, Any]] = None,
) -> Tuple[float, np.ndarray]:
    """Dispatch to loss ``name`` (targets already checked by :func:`check_target`).

    Parameters
    ----------
    name : str
        One of :data:`LOSSES`.
    output : numpy.ndarray
        ``(n, k)`` network output.
    y : numpy.ndarray
        Checked targets.
    sample_weight : numpy.ndarray, optional
        Checked weights.
    loss_params : dict, optional
        ``delta`` for huber (default 1.0); other keys are ignored here.

    Returns
    -------
    loss : float
    doutput : numpy.ndarray
    """
    loss_params = loss_params or {}
    if name == "mse":
        return mse(output, y, sample_weight)
    if name == "mae":
        return mae(output, y, sample_weight)
    if name == "huber":
        delta = float(loss_params.get("delta", 1.0))
        if not delta > 0:
            raise ValueError(f"loss_params['delta'] must be positive, got {delta}")
        return huber(output, y, sample_weight, delta)
    if name == "binary_cross_entropy":
        return binary_cross_entropy(output, y, sample_weight)
    if name == "softmax_cross_entropy":
        return softmax_cross_entropy(output, y, sample_weight)
    if name == "poisson":
        return poisson(output, y, sample_weight)
    raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
