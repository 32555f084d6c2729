"""Weight distributions for parameter initialisation, shared by every backend.

Initialisation is done in Python and is identical for all backends
(:func:`fastbp.layers.init_parameters` walks the spec; each layer class fills its views).

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

import numpy as np

__all__ = ["INITIALIZERS", "default_init", "draw_weight"]

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


def draw_weight(rng: np.random.Generator, init: str, fan_in: int, fan_out: int) -> np.ndarray:
    """A ``(fan_in, fan_out)`` float64 weight matrix drawn from ``init`` (the table above)."""
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
