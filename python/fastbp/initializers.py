"""Parameter initialisation shared by every backend (done in Python, identical for all).

One ``numpy.random.default_rng(seed)`` draws, in float64, the weight matrix ``W`` (shape
``(fan_in, fan_out)`` = ``(in, out)``) of every dense layer in the flat pre-order walk of the
spec (a residual's block in place); the draws are then cast to the engine dtype. Nothing else
consumes random numbers. Biases are zero; batchnorm/layernorm ``gamma = 1``, ``beta = 0``;
``running_mean = 0``, ``running_var = 1``.

==================================  ==========================================================
``init`` (per dense layer)          distribution of ``W``
==================================  ==========================================================
glorot_uniform / xavier_uniform     ``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``
glorot_normal / xavier_normal       ``N(0, s^2)``, ``s = sqrt(2 / (fan_in + fan_out))``
he_uniform / kaiming_uniform        ``U(-l, l)``, ``l = sqrt(6 / fan_in)``
he_normal / kaiming_normal          ``N(0, s^2)``, ``s = sqrt(2 / fan_in)``
lecun_uniform                       ``U(-l, l)``, ``l = sqrt(3 / fan_in)``
lecun_normal                        ``N(0, s^2)``, ``s = sqrt(1 / fan_in)``
==================================  ==========================================================

Default: ``he_uniform`` for relu / leaky_relu / elu layers, ``glorot_uniform`` otherwise.
Uniform draws use ``rng.uniform(-l, l, size)``, normal draws ``rng.normal(0, s, size)``
(not truncated).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence

import numpy as np

__all__ = ["INITIALIZERS", "default_init", "init_parameters"]

_CANONICAL = {
    "glorot_uniform": "glorot_uniform",
    "xavier_uniform": "glorot_uniform",
    "glorot_normal": "glorot_normal",
    "xavier_normal": "glorot_normal",
    "he_uniform": "he_uniform",
    "kaiming_uniform": "he_uniform",
    "he_normal": "he_normal",
    "kaiming_normal": "he_normal",
    "lecun_uniform": "lecun_uniform",
    "lecun_normal": "lecun_normal",
}
INITIALIZERS = tuple(_CANONICAL)


def default_init(activation: str) -> str:
    """Default initialiser for a dense layer with ``activation``.

    Parameters
    ----------
    activation : str
        The layer's activation name.

    Returns
    -------
    str
        ``"he_uniform"`` for relu, leaky_relu and elu; ``"glorot_uniform"`` otherwise.
    """
    return "he_uniform" if activation in ("relu", "leaky_relu", "elu") else "glorot_uniform"


def _draw(rng: np.random.Generator, init: str, fan_in: int, fan_out: int) -> np.ndarray:
    kind = _CANONICAL[init]
    size = (fan_in, fan_out)
    if kind == "glorot_uniform":
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-lim, lim, size)
    if kind == "glorot_normal":
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size)
    if kind == "he_uniform":
        lim = math.sqrt(6.0 / fan_in)
        return rng.uniform(-lim, lim, size)
    if kind == "he_normal":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), size)
    if kind == "lecun_uniform":
        lim = math.sqrt(3.0 / fan_in)
        return rng.uniform(-lim, lim, size)
    return rng.normal(0.0, math.sqrt(1.0 / fan_in), size)  # lecun_normal


def init_parameters(
    spec: Sequence[Dict[str, Any]],
    params: List[np.ndarray],
    buffers: List[np.ndarray],
    seed: int,
) -> None:
    """Fill parameter and buffer views in place (see the module docstring).

    Parameters
    ----------
    spec : list of dict
        Layer spec (ENGINE.md); dense layers may carry an ``init`` key.
    params : list of numpy.ndarray
        Live parameter views in traversal order (dense ``W, b``; norm ``gamma, beta``).
    buffers : list of numpy.ndarray
        Live buffer views (batchnorm ``running_mean, running_var``).
    seed : int
        Seed for ``numpy.random.default_rng``.

    Raises
    ------
    ValueError
        Unknown ``init`` name, or views that do not match the spec.
    """
    # Validate every init name before touching anything.
    def check(layers: Sequence[Dict[str, Any]]) -> None:
        for layer in layers:
            if layer.get("type") == "dense" and layer.get("init") is not None:
                if layer["init"] not in _CANONICAL:
                    raise ValueError(
                        f"init must be one of {sorted(_CANONICAL)}, got {layer['init']!r}"
                    )
            if layer.get("type") == "residual":
                check(layer.get("layers", []))

    check(spec)
    rng = np.random.default_rng(seed)
    p_iter = iter(params)
    b_iter = iter(buffers)

    def take(it, shape, what):
        try:
            arr = next(it)
        except StopIteration:
            raise ValueError(f"not enough {what} views for the spec") from None
        if tuple(arr.shape) != tuple(shape):
            raise ValueError(f"{what} view has shape {arr.shape}, expected {tuple(shape)}")
        return arr

    def walk(layers: Sequence[Dict[str, Any]]) -> None:
        for layer in layers:
            kind = layer.get("type")
            if kind == "dense":
                fan_in, fan_out = int(layer["in"]), int(layer["out"])
                W = take(p_iter, (fan_in, fan_out), "parameter")
                b = take(p_iter, (fan_out,), "parameter")
                init = layer.get("init") or default_init(layer.get("activation", "identity"))
                W[...] = _draw(rng, init, fan_in, fan_out).astype(W.dtype)
                b[...] = 0
            elif kind in ("batchnorm", "layernorm"):
                dim = int(layer["dim"])
                take(p_iter, (dim,), "parameter")[...] = 1
                take(p_iter, (dim,), "parameter")[...] = 0
                if kind == "batchnorm":
                    take(b_iter, (dim,), "buffer")[...] = 0
                    take(b_iter, (dim,), "buffer")[...] = 1
            elif kind == "residual":
                walk(layer.get("layers", []))

    walk(spec)
