"""Optimizers: configurations with the names, update rules and defaults of ``torch.optim``.

An optimizer object holds hyper-parameters only; its state (momentum buffers, moment
estimates, step count) lives in the model's engine, in arrays laid out like the parameter
arena, and is saved with the model.  Passing a *different* optimizer object to a model
starts from fresh state, as creating a new ``torch.optim`` optimizer does; changing an
attribute of the same object (``opt.lr = 1e-4``) keeps the state.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

from . import registry as _reg

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


def _fields(opt: str) -> tuple:
    """The hyper-parameters of optimizer ``opt`` other than clipping, in torch's order."""
    return tuple(k for k in _reg.optimizer_defaults(opt) if k not in ("clip_norm", "clip_value"))


def _default(opt: str, key: str) -> Any:
    """Hyper-parameter ``key``'s default for optimizer ``opt`` (from the engine's registry)."""
    return _reg.optimizer_defaults(opt)[key]


def _check_nonneg(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


class Optimizer:
    """Base class. ``clip_norm`` / ``clip_value`` clip the gradient (by global L2 norm, and
    elementwise by value) before the update; ``None`` disables."""

    name = ""
    _fields: tuple = ()
    _version: int  # bumped by every attribute assignment (__setattr__)

    def __init__(self, clip_norm: Optional[float] = None, clip_value: Optional[float] = None):
        self.clip_norm = None if clip_norm is None else _check_nonneg("clip_norm", clip_norm)
        self.clip_value = None if clip_value is None else _check_nonneg("clip_value", clip_value)

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        object.__setattr__(self, "_version", getattr(self, "_version", 0) + 1)

    def hyper(self) -> Dict[str, Any]:
        """All hyper-parameters as a dict (the engine's input; saved with the model)."""
        d = {f: getattr(self, f) for f in self._fields}
        d["clip_norm"] = self.clip_norm
        d["clip_value"] = self.clip_value
        return d

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_nonneg("lr", value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper().items() if v is not None)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent (``torch.optim.SGD``)."""

    name = "sgd"
    _fields = _fields("sgd")

    def __init__(self, lr: float = _default("sgd", "lr"),
                 momentum: float = _default("sgd", "momentum"),
                 dampening: float = _default("sgd", "dampening"),
                 nesterov: bool = _default("sgd", "nesterov"),
                 weight_decay: float = _default("sgd", "weight_decay"), **clip: Any):
        super().__init__(**clip)
        self.lr = lr
        self.momentum = _check_nonneg("momentum", momentum)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = _check_nonneg("weight_decay", weight_decay)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``), with ``amsgrad``."""

    name = "adam"
    _fields = _fields("adam")

    def __init__(self, lr: float = _default("adam", "lr"),
                 betas: tuple = (_default("adam", "beta1"), _default("adam", "beta2")),
                 eps: float = _default("adam", "eps"), weight_decay: Optional[float] = None,
                 amsgrad: bool = _default("adam", "amsgrad"), **clip: Any):
        super().__init__(**clip)
        self.lr = lr
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas!r}")
        self.beta1, self.beta2 = b1, b2
        self.eps = _check_nonneg("eps", eps)
        self.weight_decay = _check_nonneg(
            "weight_decay", _default(self.name, "weight_decay") if weight_decay is None
            else weight_decay)
        self.amsgrad = bool(amsgrad)

    @property
    def betas(self) -> tuple:
        return (self.beta1, self.beta2)


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): decoupled weight decay, default 1e-2."""

    name = "adamw"


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``), with momentum and ``centered``."""

    name = "rmsprop"
    _fields = _fields("rmsprop")

    def __init__(self, lr: float = _default("rmsprop", "lr"),
                 alpha: float = _default("rmsprop", "alpha"),
                 eps: float = _default("rmsprop", "eps"),
                 weight_decay: float = _default("rmsprop", "weight_decay"),
                 momentum: float = _default("rmsprop", "momentum"),
                 centered: bool = _default("rmsprop", "centered"), **clip: Any):
        super().__init__(**clip)
        self.lr = lr
        self.alpha = _check_nonneg("alpha", alpha)
        self.eps = _check_nonneg("eps", eps)
        self.weight_decay = _check_nonneg("weight_decay", weight_decay)
        self.momentum = _check_nonneg("momentum", momentum)
        self.centered = bool(centered)


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``)."""

    name = "adagrad"
    _fields = _fields("adagrad")

    def __init__(self, lr: float = _default("adagrad", "lr"),
                 lr_decay: float = _default("adagrad", "lr_decay"),
                 weight_decay: float = _default("adagrad", "weight_decay"),
                 initial_accumulator_value: float = _default("adagrad",
                                                             "initial_accumulator_value"),
                 eps: float = _default("adagrad", "eps"), **clip: Any):
        super().__init__(**clip)
        self.lr = lr
        self.lr_decay = _check_nonneg("lr_decay", lr_decay)
        self.weight_decay = _check_nonneg("weight_decay", weight_decay)
        self.initial_accumulator_value = _check_nonneg(
            "initial_accumulator_value", initial_accumulator_value)
        self.eps = _check_nonneg("eps", eps)


_BY_NAME = {c.name: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}


def from_config(name: str, hyper: Dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from ``(name, hyper())`` (used by ``fastbp.load``)."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown optimizer {name!r}")
    h = dict(hyper)
    if name in ("adam", "adamw"):
        h["betas"] = (h.pop("beta1"), h.pop("beta2"))
    return _BY_NAME[name](**h)


def get(opt: Any) -> Optimizer:
    """An Optimizer from an instance or a name (``"adam"`` → ``Adam()``)."""
    if isinstance(opt, Optimizer):
        return opt
    if isinstance(opt, str):
        key = opt.lower()
        if key not in _BY_NAME:
            raise ValueError(f"unknown optimizer {opt!r}; expected one of {sorted(_BY_NAME)}")
        return _BY_NAME[key]()
    raise TypeError(f"optimizer must be a fastbp.optim.Optimizer or a name, got {type(opt).__name__}")
