"""Activation functions (forward and backward), torch formulas, NumPy, clarity first.

Every function computes in the dtype of its input (float32 or float64).

=============  ===========================================  =====================================
name           forward ``a = f(z)``                         derivative ``f'(z)``
=============  ===========================================  =====================================
identity       ``z``                                        ``1``
sigmoid        ``1 / (1 + exp(-z))``                        ``a (1 - a)``
tanh           ``tanh(z)``                                  ``1 - a^2``
relu           ``0 if z <= 0 else z``                       ``0 if z <= 0 else 1``
leaky_relu     ``z if z > 0 else alpha z`` (alpha=0.01)     ``1 if z > 0 else alpha``
elu            ``z if z > 0 else alpha (exp(z) - 1)`` (1.0) ``1 if z > 0 else alpha exp(z)``
gelu           ``z Phi(z) = z/2 (1 + erf(z/sqrt 2))``       ``Phi(z) + z phi(z)``
silu           ``z sigmoid(z)``                             ``s (1 + z (1 - s))``
softplus       ``log(1 + exp(z))``, ``z`` where ``z > 20``  ``sigmoid(z)``, ``1`` where ``z > 20``
=============  ===========================================  =====================================

NaN behaves as in PyTorch: NaN in ``z`` gives NaN in ``f(z)`` for every activation, and a NaN
gradient except where torch's rule picks a constant branch for it (the comparisons above are
false for NaN): relu passes ``da``, leaky_relu passes ``alpha da``. (torch's own elu backward
gives NaN on its vectorised path and ``da`` on its scalar tail; both backends give NaN.)
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..registry import registry

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_ALPHA",
    "erf",
    "resolve_alpha",
    "act_forward",
    "act_backward",
]

#: The activations this module implements (tests check it against the registry).
ACTIVATIONS = (
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "softplus",
)

#: Default ``alpha`` per activation that has one (from the engine's registry, the one source).
DEFAULT_ALPHA = {name: float(info["params"]["alpha"])
                 for name, info in registry()["activations"].items() if "alpha" in info["params"]}

_SOFTPLUS_THRESHOLD = 20.0
_erf_vec = np.vectorize(math.erf, otypes=[np.float64])


def erf(x: np.ndarray) -> np.ndarray:
    """Elementwise error function (``math.erf``, correctly rounded to float64), dtype preserved.

    Parameters
    ----------
    x : numpy.ndarray
        Input array.

    Returns
    -------
    numpy.ndarray
        ``erf(x)`` with the dtype of ``x``.
    """
    x = np.asarray(x)
    if x.size == 0:
        return np.empty_like(x)
    return _erf_vec(x.astype(np.float64)).astype(x.dtype, copy=False)


def resolve_alpha(name: str, alpha: Optional[float]) -> float:
    """Return ``alpha`` or the activation's default when ``alpha`` is None.

    Parameters
    ----------
    name : str
        Activation name.
    alpha : float or None
        User value.

    Returns
    -------
    float
        The slope (leaky_relu) / scale (elu) to use; 0.0 for activations that ignore it.
    """
    if alpha is None:
        return float(DEFAULT_ALPHA.get(name, 0.0))
    return float(alpha)


def _check_name(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Stable: exp of a non-positive number only.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def act_forward(name: str, z: np.ndarray, alpha: Optional[float] = None) -> np.ndarray:
    """Apply activation ``name`` elementwise.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : numpy.ndarray
        Pre-activation values (float32 or float64).
    alpha : float, optional
        leaky_relu slope (default 0.01) / elu alpha (default 1.0); ignored otherwise.

    Returns
    -------
    numpy.ndarray
        ``f(z)``, same shape and dtype as ``z`` (a new array).
    """
    _check_name(name)
    a_ = resolve_alpha(name, alpha)
    dt = z.dtype
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z <= 0, np.zeros((), dt), z)
    if name == "leaky_relu":
        return np.where(z > 0, z, z * dt.type(a_))
    if name == "elu":
        neg = dt.type(a_) * np.expm1(np.minimum(z, 0))
        return np.where(z > 0, z, neg)
    if name == "gelu":
        return (z * (1 + erf(z / dt.type(math.sqrt(2.0)))) / 2).astype(dt, copy=False)
    if name == "silu":
        return z * _sigmoid(z)
    # softplus, beta = 1, threshold = 20: linear above the threshold.
    soft = np.log1p(np.exp(np.minimum(z, _SOFTPLUS_THRESHOLD)))
    return np.where(z > _SOFTPLUS_THRESHOLD, z, soft).astype(dt, copy=False)


def act_backward(
    name: str,
    z: np.ndarray,
    a: np.ndarray,
    da: np.ndarray,
    alpha: Optional[float] = None,
) -> np.ndarray:
    """Back-propagate through activation ``name``: ``dz = da * f'(z)``.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : numpy.ndarray
        Pre-activation values saved by the forward pass.
    a : numpy.ndarray
        Output of the forward pass, ``f(z)``.
    da : numpy.ndarray
        Gradient of the loss with respect to ``a``.
    alpha : float, optional
        As in :func:`act_forward`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``z`` (torch's conventions at kinks: relu'(0) = 0,
        leaky_relu'(0) = alpha, elu'(0) = alpha).
    """
    _check_name(name)
    a_ = resolve_alpha(name, alpha)
    dt = z.dtype
    one = dt.type(1)
    if name == "identity":
        return da.copy()
    if name == "sigmoid":
        return da * a * (one - a)
    if name == "tanh":
        return da * (one - a * a)
    if name == "relu":
        return np.where(z <= 0, np.zeros((), dt), da)
    if name == "leaky_relu":
        return np.where(z > 0, da, da * dt.type(a_))
    if name == "elu":
        return np.where(z > 0, da, da * dt.type(a_) * np.exp(np.minimum(z, 0)))
    if name == "gelu":
        cdf = (one + erf(z / dt.type(math.sqrt(2.0)))) / 2
        pdf = np.exp(-(z * z) / 2) * dt.type(1.0 / math.sqrt(2.0 * math.pi))
        return da * (cdf + z * pdf)
    if name == "silu":
        s = _sigmoid(z)
        return da * s * (one + z * (one - s))
    # softplus
    return np.where(z > _SOFTPLUS_THRESHOLD, da, da * _sigmoid(z)).astype(dt, copy=False)
