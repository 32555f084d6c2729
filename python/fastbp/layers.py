"""Layer spec objects: the one Python description of each layer kind.

A layer object says what to build; the engine (native or reference) owns the parameters.
``layer.to_dict(in_dim)`` resolves widths into the engine's layer spec entry (a JSON-able
dict, docs/ENGINE.md) and ``Layer.from_dict(entry)`` rebuilds the object, so a spec round
trips through checkpoints and exchange formats. Each class also says how its parameters are
initialised (``initialize``). Names and defaults (activations, their ``alpha``, the spec fields
of each kind) come from :mod:`fastbp.registry`, defined once in the native engine.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, Iterator, List, Optional, Sequence, Tuple, Type

import numpy as np

from . import registry as _reg
from .initializers import INITIALIZERS, default_init, draw_weight

__all__ = ["Layer", "Dense", "Activation", "Dropout", "BatchNorm", "LayerNorm", "Residual",
           "ACTIVATIONS", "build_spec", "from_spec", "walk_spec", "spec_has", "init_parameters"]

ACTIVATIONS: Tuple[str, ...] = _reg.activations()

SpecEntry = Dict[str, Any]
Take = Callable[[Tuple[int, ...]], np.ndarray]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _field(kind: str, name: str) -> float:
    """The default of spec field ``name`` of layer ``kind`` (from the registry)."""
    return float(_reg.layer_kinds()[kind]["fields"][name])


class Layer:
    """Base class of layer spec objects."""

    kind: ClassVar[str] = ""
    _kinds: ClassVar[Dict[str, Type["Layer"]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        Layer._kinds[cls.kind] = cls

    def to_dict(self, in_dim: int) -> Tuple[SpecEntry, int]:
        """The spec entry of this layer on an input of width ``in_dim``, and its output width."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, entry: SpecEntry) -> "Layer":
        """The layer object whose ``to_dict`` gives ``entry`` (ValueError if malformed)."""
        if not isinstance(entry, dict) or "type" not in entry:
            raise ValueError("a spec entry must be a dict with a 'type'")
        kind = entry["type"]
        if kind not in Layer._kinds:
            raise ValueError(f"unknown layer type {kind!r}; expected one of "
                             f"{', '.join(Layer._kinds)}")
        try:
            return Layer._kinds[kind]._from_entry(entry)
        except KeyError as e:
            raise ValueError(f"spec entry ({kind}) lacks key {e.args[0]!r}") from None

    @classmethod
    def _from_entry(cls, entry: SpecEntry) -> "Layer":
        raise NotImplementedError

    @classmethod
    def initialize(cls, entry: SpecEntry, rng: np.random.Generator, take: Take,
                   take_buffer: Take) -> None:
        """Fill this layer's parameter and buffer views (taken in arena order) in place."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v is not None)
        return f"{type(self).__name__}({args})"


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
        otherwise; see :mod:`fastbp.initializers`).
    alpha : float, optional
        The activation's parameter (leaky_relu slope, elu alpha); its default comes from the
        registry.
    """

    kind = "dense"

    def __init__(self, units: int, activation: Optional[str] = "identity",
                 init: Optional[str] = None, alpha: Optional[float] = None):
        self.units = _positive_int("units", units)
        self.activation = _reg.resolve_activation(activation)
        if init is not None and init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITIALIZERS)}")
        self.init = init
        self.alpha = None if alpha is None else float(alpha)

    def to_dict(self, in_dim: int) -> Tuple[SpecEntry, int]:
        entry: SpecEntry = {"type": "dense", "in": in_dim, "out": self.units,
                            "activation": self.activation}
        if self.init is not None:
            entry["init"] = self.init
        if self.alpha is not None:
            entry["alpha"] = self.alpha
        return entry, self.units

    @classmethod
    def _from_entry(cls, entry: SpecEntry) -> "Dense":
        return cls(int(entry["out"]), activation=entry.get("activation", "identity"),
                   init=entry.get("init"), alpha=entry.get("alpha"))

    @classmethod
    def initialize(cls, entry: SpecEntry, rng: np.random.Generator, take: Take,
                   take_buffer: Take) -> None:
        fan_in, fan_out = int(entry["in"]), int(entry["out"])
        W, b = take((fan_in, fan_out)), take((fan_out,))
        init = entry.get("init") or default_init(entry.get("activation", "identity"))
        W[...] = draw_weight(rng, init, fan_in, fan_out).astype(W.dtype)
        b[...] = 0


class Activation(Layer):
    """A standalone activation (e.g. after a BatchNorm)."""

    kind = "activation"

    def __init__(self, activation: str, alpha: Optional[float] = None):
        self.activation = _reg.resolve_activation(activation)
        self.alpha = None if alpha is None else float(alpha)

    def to_dict(self, in_dim: int) -> Tuple[SpecEntry, int]:
        entry: SpecEntry = {"type": "activation", "dim": in_dim, "activation": self.activation}
        if self.alpha is not None:
            entry["alpha"] = self.alpha
        return entry, in_dim

    @classmethod
    def _from_entry(cls, entry: SpecEntry) -> "Activation":
        return cls(entry["activation"], alpha=entry.get("alpha"))


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale the
    rest by 1/(1-rate); the identity in ``predict``."""

    kind = "dropout"

    def __init__(self, rate: float):
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate

    def to_dict(self, in_dim: int) -> Tuple[SpecEntry, int]:
        return {"type": "dropout", "dim": in_dim, "rate": self.rate}, in_dim

    @classmethod
    def _from_entry(cls, entry: SpecEntry) -> "Dropout":
        return cls(float(entry["rate"]))


class _Norm(Layer):
    """Shared parts of the normalisation layers: gamma = 1, beta = 0."""

    @classmethod
    def initialize(cls, entry: SpecEntry, rng: np.random.Generator, take: Take,
                   take_buffer: Take) -> None:
        dim = int(entry["dim"])
        take((dim,))[...] = 1
        take((dim,))[...] = 0


class BatchNorm(_Norm):
    """Batch normalisation (torch ``BatchNorm1d``): batch statistics in training (and running
    statistics updated with ``momentum``), running statistics in ``predict``."""

    kind = "batchnorm"

    def __init__(self, eps: Optional[float] = None, momentum: Optional[float] = None):
        eps = _field("batchnorm", "eps") if eps is None else float(eps)
        momentum = _field("batchnorm", "momentum") if momentum is None else float(momentum)
        if not eps > 0:
            raise ValueError("eps must be > 0")
        if not 0 <= momentum <= 1:
            raise ValueError("momentum must be in [0, 1]")
        self.eps, self.momentum = eps, momentum

    def to_dict(self, in_dim: int) -> Tuple[SpecEntry, int]:
        return {"type": "batchnorm", "dim": in_dim, "eps": self.eps,
                "momentum": self.momentum}, in_dim

    @classmethod
    def _from_entry(cls, entry: SpecEntry) -> "BatchNorm":
        return cls(eps=entry.get("eps"), momentum=entry.get("momentum"))

    @classmethod
    def initialize(cls, entry: SpecEntry, rng: np.random.Generator, take: Take,
                   take_buffer: Take) -> None:
        super().initialize(entry, rng, take, take_buffer)
        dim = int(entry["dim"])
        take_buffer((dim,))[...] = 0
        take_buffer((dim,))[...] = 1


class LayerNorm(_Norm):
    """Layer normalisation over the features of each sample (torch ``LayerNorm``)."""

    kind = "layernorm"

    def __init__(self, eps: Optional[float] = None):
        eps = _field("layernorm", "eps") if eps is None else float(eps)
        if not eps > 0:
            raise ValueError("eps must be > 0")
        self.eps = eps

    def to_dict(self, in_dim: int) -> Tuple[SpecEntry, int]:
        return {"type": "layernorm", "dim": in_dim, "eps": self.eps}, in_dim

    @classmethod
    def _from_entry(cls, entry: SpecEntry) -> "LayerNorm":
        return cls(eps=entry.get("eps"))


class Residual(Layer):
    """A skip connection ``y = x + block(x)``; the block must keep the width."""

    kind = "residual"

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Residual needs at least one layer")

    def to_dict(self, in_dim: int) -> Tuple[SpecEntry, int]:
        specs, out = build_spec(self.layers, in_dim)
        if out != in_dim:
            raise ValueError(f"Residual block maps width {in_dim} to {out}; it must keep the width")
        return {"type": "residual", "dim": in_dim, "layers": specs}, in_dim

    @classmethod
    def _from_entry(cls, entry: SpecEntry) -> "Residual":
        return cls(from_spec(entry["layers"]))


def build_spec(layers: Sequence[Layer], in_dim: int) -> Tuple[List[SpecEntry], int]:
    """Resolve a list of layers into the engine spec; returns (spec, output width)."""
    specs = []
    width = in_dim
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"expected a fastbp layer, got {type(layer).__name__}")
        entry, width = layer.to_dict(width)
        specs.append(entry)
    return specs, width


def from_spec(spec: Sequence[SpecEntry]) -> List[Layer]:
    """The layer objects that produce ``spec``: ``build_spec(from_spec(s), in_dim)[0] == s``."""
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError("spec must be a non-empty list of layer dicts")
    out = []
    for i, entry in enumerate(spec):
        try:
            out.append(Layer.from_dict(entry))
        except (ValueError, TypeError) as e:
            raise type(e)(f"spec[{i}]: {e}") from None
    return out


def walk_spec(spec: Sequence[SpecEntry]) -> Iterator[SpecEntry]:
    """Every entry of a spec in pre-order (a residual before its block): the order of the
    engines' parameter arena."""
    for entry in spec:
        yield entry
        if entry.get("type") == "residual":
            yield from walk_spec(entry.get("layers", []))


def spec_has(spec: Sequence[SpecEntry], kind: str) -> bool:
    """Whether a layer of ``kind`` occurs anywhere in ``spec``."""
    return any(entry.get("type") == kind for entry in walk_spec(spec))


def init_parameters(spec: Sequence[SpecEntry], params: List[np.ndarray],
                    buffers: List[np.ndarray], seed: int) -> None:
    """Initialise parameter and buffer views in place (:mod:`fastbp.initializers`).

    One ``numpy.random.default_rng(seed)`` serves every dense layer in the pre-order walk of
    the spec; each layer class fills its own views (``Layer.initialize``).

    Raises
    ------
    ValueError
        Unknown ``init`` name, or views that do not match the spec (checked before any view
        is written).
    """
    for entry in walk_spec(spec):
        init = entry.get("init") if entry.get("type") == "dense" else None
        if init is not None and init not in INITIALIZERS:
            raise ValueError(f"init must be one of {sorted(INITIALIZERS)}, got {init!r}")
    rng = np.random.default_rng(seed)
    p_iter, b_iter = iter(params), iter(buffers)

    def taker(it: Iterator[np.ndarray], what: str) -> Take:
        def take(shape: Tuple[int, ...]) -> np.ndarray:
            arr = next(it, None)
            if arr is None:
                raise ValueError(f"not enough {what} views for the spec")
            if tuple(arr.shape) != tuple(shape):
                raise ValueError(f"{what} view has shape {arr.shape}, expected {tuple(shape)}")
            return arr
        return take

    take, take_buffer = taker(p_iter, "parameter"), taker(b_iter, "buffer")
    for entry in walk_spec(spec):
        kind = Layer._kinds.get(entry.get("type", ""))
        if kind is None:
            raise ValueError(f"unknown layer type {entry.get('type')!r}")
        kind.initialize(entry, rng, take, take_buffer)
