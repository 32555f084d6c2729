"""Layer descriptions. A layer object says what to build; the engine (native or reference)
owns the parameters. ``to_spec(in_dim)`` resolves widths into the engine's layer spec
(docs/ENGINE.md)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["Layer", "Dense", "Activation", "Dropout", "BatchNorm", "LayerNorm", "Residual",
           "ACTIVATIONS"]

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu",
               "softplus")
_ALIASES = {"linear": "identity", "none": "identity", None: "identity"}
INITS = ("glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal", "he_uniform",
         "he_normal", "kaiming_uniform", "kaiming_normal", "lecun_uniform", "lecun_normal")


def _activation(name: Optional[str]) -> str:
    name = _ALIASES.get(name, name)
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return name


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


class Layer:
    """Base class of layer descriptions."""

    def to_spec(self, in_dim: int) -> Tuple[Dict[str, Any], int]:
        raise NotImplementedError


class Dense(Layer):
    """Fully connected layer ``a = f(x W + b)``, W shaped (in, units).

    Parameters
    ----------
    units : int
        Output width.
    activation : str
        One of ``fastbp.layers.ACTIVATIONS`` (default ``"identity"``).
    init : str, optional
        Weight initialisation (``he_uniform`` for the relu family, ``glorot_uniform``
        otherwise).
    alpha : float, optional
        leaky_relu negative slope (0.01) or elu alpha (1.0).
    """

    def __init__(self, units: int, activation: Optional[str] = "identity",
                 init: Optional[str] = None, alpha: Optional[float] = None):
        self.units = _positive_int("units", units)
        self.activation = _activation(activation)
        if init is not None and init not in INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
        self.init = init
        self.alpha = alpha

    def to_spec(self, in_dim: int):
        spec: Dict[str, Any] = {"type": "dense", "in": in_dim, "out": self.units,
                                "activation": self.activation}
        if self.init is not None:
            spec["init"] = self.init
        if self.alpha is not None:
            spec["alpha"] = float(self.alpha)
        return spec, self.units


class Activation(Layer):
    """A standalone activation (e.g. after a BatchNorm)."""

    def __init__(self, activation: str, alpha: Optional[float] = None):
        self.activation = _activation(activation)
        self.alpha = alpha

    def to_spec(self, in_dim: int):
        spec: Dict[str, Any] = {"type": "activation", "dim": in_dim, "activation": self.activation}
        if self.alpha is not None:
            spec["alpha"] = float(self.alpha)
        return spec, in_dim


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale the
    rest by 1/(1-rate); the identity in ``predict``."""

    def __init__(self, rate: float):
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate

    def to_spec(self, in_dim: int):
        return {"type": "dropout", "dim": in_dim, "rate": self.rate}, in_dim


class BatchNorm(Layer):
    """Batch normalisation (torch ``BatchNorm1d``): batch statistics in training (and running
    statistics updated with ``momentum``), running statistics in ``predict``."""

    def __init__(self, eps: float = 1e-5, momentum: float = 0.1):
        if not eps > 0:
            raise ValueError("eps must be > 0")
        if not 0 <= momentum <= 1:
            raise ValueError("momentum must be in [0, 1]")
        self.eps, self.momentum = float(eps), float(momentum)

    def to_spec(self, in_dim: int):
        return {"type": "batchnorm", "dim": in_dim, "eps": self.eps,
                "momentum": self.momentum}, in_dim


class LayerNorm(Layer):
    """Layer normalisation over the features of each sample (torch ``LayerNorm``)."""

    def __init__(self, eps: float = 1e-5):
        if not eps > 0:
            raise ValueError("eps must be > 0")
        self.eps = float(eps)

    def to_spec(self, in_dim: int):
        return {"type": "layernorm", "dim": in_dim, "eps": self.eps}, in_dim


class Residual(Layer):
    """A skip connection ``y = x + block(x)``; the block must keep the width."""

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Residual needs at least one layer")

    def to_spec(self, in_dim: int):
        specs, out = build_spec(self.layers, in_dim)
        if out != in_dim:
            raise ValueError(f"Residual block maps width {in_dim} to {out}; it must keep the width")
        return {"type": "residual", "dim": in_dim, "layers": specs}, in_dim


def build_spec(layers: Sequence[Layer], in_dim: int) -> Tuple[List[Dict[str, Any]], int]:
    """Resolve a list of layers into the engine spec; returns (spec, output width)."""
    specs = []
    width = in_dim
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"expected a fastbp layer, got {type(layer).__name__}")
        spec, width = layer.to_spec(width)
        specs.append(spec)
    return specs, width
