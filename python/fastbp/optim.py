"""Optimizers: configurations with the names, update rules and defaults of ``torch.optim``.

An optimizer object holds hyper-parameters only; its state (momentum buffers, moment
estimates, step count) lives in the model's engine, in arrays laid out like the parameter
arena, and is saved with the model.  Passing a *different* optimizer object to a model
starts from fresh state, as creating a new ``torch.optim`` optimizer does; changing an
attribute of the same object (``opt.lr = 1e-4``) keeps the state.

Per-model values: for :class:`fastbp.Ensemble`, every numeric or boolean hyper-parameter may
be a sequence with one value per member (``Adam(lr=[1e-3, 3e-3])``, ``Adam(betas=([0.9,
0.8], 0.999))``). :meth:`Optimizer.split` turns such an optimizer into one ordinary
optimizer per member (each validated as if constructed alone); a single model refuses it.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np

from . import registry as _reg

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


def _fields(opt: str) -> tuple:
    """The hyper-parameters of optimizer ``opt`` other than clipping, in torch's order."""
    return tuple(k for k in _reg.optimizer_defaults(opt) if k not in ("clip_norm", "clip_value"))


def _default(opt: str, key: str) -> Any:
    """Hyper-parameter ``key``'s default for optimizer ``opt`` (from the engine's registry)."""
    return _reg.optimizer_defaults(opt)[key]


def _is_seq(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray, range))


def _per_model(name: str, value: Any, check: Any) -> Any:
    """A per-model sequence checked element-wise (a tuple), or ``check(value)``."""
    if _is_seq(value):
        values = list(np.asarray(value).tolist()) if isinstance(value, np.ndarray) else list(value)
        if not values or any(_is_seq(v) for v in values):
            raise ValueError(f"{name} must be a number or a flat, non-empty sequence with one "
                             f"value per model, got {value!r}")
        return tuple(check(v) for v in values)
    return check(value)


def _flag(name: str, value: Any) -> Any:
    return _per_model(name, value, bool)


def _real(name: str, value: Any) -> Any:
    return _per_model(name, value, float)


def _check_nonneg(name: str, value: Any) -> Any:
    if _is_seq(value):
        return _per_model(name, value, lambda v: _check_nonneg(name, v))
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

    def n_models(self) -> Optional[int]:
        """The number of per-model values (None when every hyper-parameter is a scalar).

        Raises ValueError when per-model sequences disagree in length."""
        lengths = {len(v) for v in self.hyper().values() if isinstance(v, tuple)}
        if len(lengths) > 1:
            raise ValueError(f"per-model hyper-parameters of {type(self).__name__} have "
                             f"different lengths {sorted(lengths)}")
        return lengths.pop() if lengths else None

    def split(self, n_models: int) -> List[Optimizer]:
        """One ordinary optimizer per model: member k takes the k-th value of every
        per-model hyper-parameter and the scalars as they are.

        Raises
        ------
        ValueError
            If a per-model sequence does not hold ``n_models`` values, or a member's
            combination is invalid (e.g. nesterov without momentum).
        """
        hyper = self.hyper()
        for k, v in hyper.items():
            if isinstance(v, tuple) and len(v) != n_models:
                raise ValueError(f"optimizer {k} has {len(v)} values for {n_models} models")
        out = []
        for m in range(n_models):
            h = {k: (v[m] if isinstance(v, tuple) else v) for k, v in hyper.items()}
            opt = from_config(self.name, h)
            init = getattr(self, "initial_lr", None)
            if init is not None:
                opt.initial_lr = init[m] if isinstance(init, tuple) else init
            out.append(opt)
        return out

    @property
    def lr(self) -> Any:
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
        self.dampening = _real("dampening", dampening)
        self.nesterov = _flag("nesterov", nesterov)
        self.weight_decay = _check_nonneg("weight_decay", weight_decay)
        if self.n_models() is None and self.nesterov and (self.momentum <= 0 or
                                                          self.dampening != 0):
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
        if not _is_seq(betas) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")

        def beta(v: Any) -> float:
            v = float(v)
            if not 0 <= v < 1:
                raise ValueError(f"betas must be in [0, 1), got {betas!r}")
            return v

        self.beta1 = _per_model("betas[0]", betas[0], beta)
        self.beta2 = _per_model("betas[1]", betas[1], beta)
        self.eps = _check_nonneg("eps", eps)
        self.weight_decay = _check_nonneg(
            "weight_decay", _default(self.name, "weight_decay") if weight_decay is None
            else weight_decay)
        self.amsgrad = _flag("amsgrad", amsgrad)

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
        self.centered = _flag("centered", centered)


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


def continues(name: Any, current: Any) -> bool:
    """Whether passing ``name`` (an optimizer's name, any case) to a model whose optimizer is
    ``current`` continues it, state included: when it is of that kind. A name means "this
    kind of optimizer", as None means "the model's own" (so a loop of
    ``train_step(..., optimizer="adam")`` keeps Adam's moments); an Optimizer object that is
    not the current one always starts from fresh state."""
    return isinstance(name, str) and current is not None and name.lower() == current.name


def get(opt: Any) -> Optimizer:
    """An Optimizer from an instance or a name (``"adam"`` → ``Adam()``)."""
    if isinstance(opt, Optimizer):
        if opt.n_models() is not None:
            raise ValueError(f"{opt!r} has per-model hyper-parameters: only fastbp.Ensemble "
                             "accepts them (a single model needs scalars)")
        return opt
    if isinstance(opt, str):
        key = opt.lower()
        if key not in _BY_NAME:
            raise ValueError(f"unknown optimizer {opt!r}; expected one of {sorted(_BY_NAME)}")
        return _BY_NAME[key]()
    raise TypeError(f"optimizer must be a fastbp.optim.Optimizer or a name, got {type(opt).__name__}")
