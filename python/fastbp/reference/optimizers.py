"""Optimizers over one flat parameter array: the update rules and defaults of ``torch.optim``.

All functions update ``params`` (a 1-D array, the parameter arena) and the state arrays in
place, computing in the dtype of ``params``. ``g`` below is the gradient after clipping; the
state ``step`` is incremented before the update (it is ``t`` in the formulas).

sgd (lr=1e-3 as in torch >= 2.x, momentum=0, dampening=0, nesterov=False, weight_decay=0)
    ``g += wd p``; if momentum: ``buf = g`` on the first step, else
    ``buf = momentum buf + (1 - dampening) g``; ``g = g + momentum buf`` (nesterov) or
    ``g = buf``; ``p -= lr g``.
adam (lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0, amsgrad=False)
    ``g += wd p``; ``m += (1 - b1)(g - m)``; ``v = b2 v + (1 - b2) g^2``;
    ``vmax = max(vmax, v)`` (amsgrad, used instead of ``v``);
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
adamw (as adam, weight_decay=1e-2)
    decoupled decay first: ``p *= 1 - lr wd``; then adam without the ``wd p`` term.
rmsprop (lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)
    ``g += wd p``; ``s = alpha s + (1 - alpha) g^2``; centered: ``ga += (1 - alpha)(g - ga)``,
    ``avg = sqrt(s - ga^2) + eps``, else ``avg = sqrt(s) + eps``;
    momentum: ``buf = momentum buf + g / avg``, ``p -= lr buf``; else ``p -= lr g / avg``.
adagrad (lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10)
    ``g += wd p``; ``clr = lr / (1 + (t - 1) lr_decay)``; ``sum += g^2``;
    ``p -= clr g / (sqrt(sum) + eps)``.

Gradient clipping (hyper ``clip_value``, ``clip_norm``; see :func:`clip_gradient`).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np

from ..registry import optimizer_defaults, optimizers

__all__ = [
    "OPTIMIZERS",
    "DEFAULTS",
    "CLIP_KEYS",
    "normalize_hyper",
    "state_names",
    "init_state",
    "clip_gradient",
    "optimizer_step",
]

# Names and defaults come from the engine's registry (one source); the update rules below
# are this module's own implementation of each of them.
CLIP_KEYS = ("clip_norm", "clip_value")
DEFAULTS: Dict[str, Dict[str, Any]] = {
    name: {k: v for k, v in optimizer_defaults(name).items() if k not in CLIP_KEYS}
    for name in optimizers()}
OPTIMIZERS = tuple(DEFAULTS)
_BOOL_KEYS = ("nesterov", "amsgrad", "centered")


def normalize_hyper(name: str, hyper: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Validate optimizer hyper-parameters and fill torch's defaults.

    Parameters
    ----------
    name : str
        One of :data:`OPTIMIZERS`.
    hyper : dict or None
        Hyper-parameters (names as in :data:`DEFAULTS`, plus ``clip_norm`` / ``clip_value``).
        ``betas=(b1, b2)`` is accepted as an alias of ``beta1``/``beta2``.

    Returns
    -------
    dict
        Complete hyper-parameters (floats and bools), including ``clip_norm``/``clip_value``
        (None when unset).

    Raises
    ------
    ValueError
        Unknown optimizer or key, or an invalid value (torch's checks).
    """
    if name not in DEFAULTS:
        raise ValueError(f"optimizer name must be one of {OPTIMIZERS}, got {name!r}")
    hyper = dict(hyper or {})
    if "betas" in hyper and name in ("adam", "adamw"):
        b1, b2 = hyper.pop("betas")
        hyper.setdefault("beta1", b1)
        hyper.setdefault("beta2", b2)
    allowed = set(DEFAULTS[name]) | set(CLIP_KEYS)
    unknown = sorted(set(hyper) - allowed)
    if unknown:
        raise ValueError(
            f"hyper has unknown key(s) {unknown} for optimizer {name!r}; allowed: {sorted(allowed)}"
        )
    out: Dict[str, Any] = {}
    for key, default in DEFAULTS[name].items():
        value = hyper.get(key, default)
        if value is None:
            raise ValueError(f"hyper[{key!r}] is required for optimizer {name!r}")
        if key in _BOOL_KEYS:
            out[key] = bool(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"hyper[{key!r}] must be finite, got {value}")
            out[key] = value
    for key in CLIP_KEYS:
        value = hyper.get(key)
        if value is not None:
            value = float(value)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"hyper[{key!r}] must be a positive finite number, got {value}")
        out[key] = value
    _validate(name, out)
    return out


def _validate(name: str, h: Dict[str, Any]) -> None:
    def nonneg(key: str) -> None:
        if key in h and h[key] < 0:
            raise ValueError(f"hyper[{key!r}] must be >= 0, got {h[key]}")

    for key in ("lr", "weight_decay", "momentum", "eps", "lr_decay",
                "initial_accumulator_value", "alpha"):
        nonneg(key)
    if name == "sgd" and h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
        raise ValueError("nesterov momentum requires hyper['momentum'] > 0 and hyper['dampening'] == 0")
    for key in ("beta1", "beta2"):
        if key in h and not 0.0 <= h[key] < 1.0:
            raise ValueError(f"hyper[{key!r}] must be in [0, 1), got {h[key]}")


def state_names(name: str, hyper: Dict[str, Any]) -> List[str]:
    """Names of the per-parameter state arrays (torch's names), in a fixed order.

    Parameters
    ----------
    name : str
        Optimizer name.
    hyper : dict
        Normalised hyper-parameters.

    Returns
    -------
    list of str
    """
    if name == "sgd":
        return ["momentum_buffer"] if hyper["momentum"] != 0 else []
    if name in ("adam", "adamw"):
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if hyper["amsgrad"] else [])
    if name == "rmsprop":
        names = ["square_avg"]
        if hyper["momentum"] > 0:
            names.append("momentum_buffer")
        if hyper["centered"]:
            names.append("grad_avg")
        return names
    if name == "adagrad":
        return ["sum"]
    raise ValueError(f"optimizer name must be one of {OPTIMIZERS}, got {name!r}")


def init_state(name: str, hyper: Dict[str, Any], n: int, dtype: np.dtype, key: str) -> np.ndarray:
    """Initial value of state array ``key``: zeros, or ``initial_accumulator_value`` for adagrad's sum."""
    if name == "adagrad" and key == "sum":
        return np.full(n, hyper["initial_accumulator_value"], dtype=dtype)
    return np.zeros(n, dtype=dtype)


def clip_gradient(grad: np.ndarray, clip_value: Optional[float], clip_norm: Optional[float]) -> None:
    """Clip a flat gradient in place: by value first, then by global L2 norm.

    ``clip_value``: ``g = clip(g, -clip_value, clip_value)`` (torch ``clip_grad_value_``).
    ``clip_norm``: ``norm = ||g||_2``; when ``norm > clip_norm``,
    ``g *= clip_norm / (norm + 1e-6)`` (torch ``clip_grad_norm_``).

    Parameters
    ----------
    grad : numpy.ndarray
        1-D gradient over the arena, modified in place.
    clip_value, clip_norm : float or None
        Thresholds; None disables the corresponding clipping.
    """
    dt = grad.dtype
    if clip_value is not None:
        np.clip(grad, -dt.type(clip_value), dt.type(clip_value), out=grad)
    if clip_norm is not None:
        norm = float(np.sqrt(np.sum(grad * grad)))
        if norm > clip_norm:
            grad *= dt.type(clip_norm / (norm + 1e-6))


def flush_subnormal(a: np.ndarray) -> None:
    """Optimizer state values below the smallest normal number become zero (sign kept), in
    place: the engine's rule (kernels/optimizers_impl.h), which keeps the moving averages of
    never-updated parameters out of the slow subnormal range."""
    tiny = np.abs(a) < np.finfo(a.dtype).tiny
    if tiny.any():
        a[tiny] = np.copysign(a.dtype.type(0), a[tiny])


def optimizer_step(
    name: str,
    hyper: Dict[str, Any],
    params: np.ndarray,
    grad: np.ndarray,
    state: Dict[str, Any],
) -> None:
    """Apply one optimizer update in place.

    Parameters
    ----------
    name : str
        One of :data:`OPTIMIZERS`.
    hyper : dict
        Normalised hyper-parameters (see :func:`normalize_hyper`).
    params : numpy.ndarray
        1-D parameter arena, updated in place.
    grad : numpy.ndarray
        1-D gradient (already clipped); not modified.
    state : dict
        ``{"step": int, <state arrays>}``; updated in place. For sgd with momentum, the key
        ``"_fresh_momentum"`` (True when the buffer has never been written) selects torch's
        first-step initialisation ``buf = g``.
    """
    dt = params.dtype
    s = lambda v: dt.type(v)  # noqa: E731  (python float -> engine-dtype scalar)
    lr = hyper["lr"]
    wd = hyper["weight_decay"]
    state["step"] = int(state["step"]) + 1
    t = state["step"]
    g = grad
    decoupled = name == "adamw"
    if wd != 0 and not decoupled:
        g = g + s(wd) * params

    if name == "sgd":
        mom = hyper["momentum"]
        if mom != 0:
            buf = state["momentum_buffer"]
            if state.get("_fresh_momentum", False):
                buf[...] = g
                state["_fresh_momentum"] = False
            else:
                buf *= s(mom)
                buf += s(1 - hyper["dampening"]) * g
            flush_subnormal(buf)
            g = g + s(mom) * buf if hyper["nesterov"] else buf
        params -= s(lr) * g
        return

    if name in ("adam", "adamw"):
        b1, b2, eps = hyper["beta1"], hyper["beta2"], hyper["eps"]
        if decoupled and wd != 0:
            params *= s(1 - lr * wd)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += s(1 - b1) * (g - m)
        v *= s(b2)
        v += s(1 - b2) * g * g
        flush_subnormal(m)
        flush_subnormal(v)
        bc1 = 1 - b1 ** t
        bc2_sqrt = math.sqrt(1 - b2 ** t)
        if hyper["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            np.maximum(vmax, v, out=vmax)
            denom = np.sqrt(vmax) / s(bc2_sqrt) + s(eps)
        else:
            denom = np.sqrt(v) / s(bc2_sqrt) + s(eps)
        params -= s(lr / bc1) * (m / denom)
        return

    if name == "rmsprop":
        alpha, eps, mom = hyper["alpha"], hyper["eps"], hyper["momentum"]
        sq = state["square_avg"]
        sq *= s(alpha)
        sq += s(1 - alpha) * g * g
        flush_subnormal(sq)
        if hyper["centered"]:
            ga = state["grad_avg"]
            ga += s(1 - alpha) * (g - ga)
            flush_subnormal(ga)
            avg = np.sqrt(sq - ga * ga) + s(eps)
        else:
            avg = np.sqrt(sq) + s(eps)
        if mom > 0:
            buf = state["momentum_buffer"]
            buf *= s(mom)
            buf += g / avg
            flush_subnormal(buf)
            params -= s(lr) * buf
        else:
            params -= s(lr) * (g / avg)
        return

    if name == "adagrad":
        clr = lr / (1 + (t - 1) * hyper["lr_decay"])
        acc = state["sum"]
        acc += g * g
        params -= s(clr) * (g / (np.sqrt(acc) + s(hyper["eps"])))
        return

    raise ValueError(f"optimizer name must be one of {OPTIMIZERS}, got {name!r}")
