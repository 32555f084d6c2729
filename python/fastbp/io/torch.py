"""PyTorch both ways: ``model.to_torch()`` and ``fastbp.from_torch(module)``.

The module :func:`to_torch` returns is an ``nn.Sequential`` in evaluation mode, in the
model's dtype, with one child per fastbp layer and, after a dense layer with a
non-identity activation, one more child for the activation:

=========================================  ================================================
fastbp spec entry                          torch modules
=========================================  ================================================
``dense`` (W (in, out), b)                 ``nn.Linear(in, out)`` (weight = W.T, (out, in)),
                                           then the activation module unless identity
``activation``                             the activation module (``nn.Identity`` for
                                           identity)
``dropout``                                ``nn.Dropout(rate)``
``batchnorm``                              ``nn.BatchNorm1d(dim, eps, momentum)``
``layernorm``                              ``nn.LayerNorm(dim, eps)``
``residual``                               :class:`Residual` (``x + block(x)``)
=========================================  ================================================

Activations: identity, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``, ``nn.LeakyReLU``
(``negative_slope`` = alpha), ``nn.ELU`` (alpha), ``nn.GELU`` (exact, ``approximate="none"``),
``nn.SiLU``, ``nn.Softplus`` (``beta=1, threshold=20``), ``nn.Mish``, ``nn.Hardswish``.

:func:`from_torch` reads the same vocabulary: an ``nn.Sequential`` (nested ``nn.Sequential``
is flattened) of those modules, where a ``Linear`` followed by an activation becomes one
dense layer. Residual blocks are written with :class:`Residual`, an ``nn.Sequential`` whose
forward is ``x + block(x)``. Any other module raises ``TypeError`` naming it.

Importing this module needs PyTorch (``pip install torch``).
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from ._tree import Node, layer_tree, missing_extra

try:
    import torch
    from torch import nn
except ImportError as _exc:  # pragma: no cover - exercised only without torch
    raise missing_extra("torch", "torch", "fastbp.io.torch", _exc) from _exc

__all__ = ["Residual", "from_torch", "to_torch"]

#: A converted layer: (fastbp layer, its parameter arrays, its buffer arrays).
_Converted = Tuple[Any, List[np.ndarray], List[np.ndarray]]


class Residual(nn.Sequential):
    """A residual block, fastbp's convention in PyTorch: ``forward(x) = x + block(x)``,
    where ``block`` is this ``nn.Sequential``'s children applied in order (the width must be
    kept). ``fastbp.from_torch`` turns it into :class:`fastbp.Residual`."""

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":  # noqa: D102
        return x + super().forward(x)


_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _act_module(name: str, alpha: Optional[float]) -> "nn.Module":
    """The torch module computing fastbp's activation ``name``."""
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01 if alpha is None else float(alpha))
    if name == "elu":
        return nn.ELU(1.0 if alpha is None else float(alpha))
    simple = {"identity": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
              "gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus, "mish": nn.Mish,
              "hardswish": nn.Hardswish}
    if name not in simple:
        raise ValueError(f"activation {name!r} has no PyTorch equivalent in fastbp.io.torch")
    return simple[name]()


def _act_of(module: "nn.Module") -> Optional[Tuple[str, Optional[float]]]:
    """(fastbp name, alpha) for a supported torch activation module, else None."""
    from ..layers import ACTIVATIONS

    t = type(module)
    # type(module) is C (not t is C): exact-class tests that mypy narrows on
    if type(module) is nn.LeakyReLU:  # alpha None: fastbp's default, so that specs round-trip
        slope = float(module.negative_slope)
        return "leaky_relu", None if slope == 0.01 else slope
    if type(module) is nn.ELU:
        return "elu", None if float(module.alpha) == 1.0 else float(module.alpha)
    if t is nn.GELU:
        if module.approximate != "none":
            raise ValueError(f"nn.GELU(approximate={module.approximate!r}) is not supported: "
                             "fastbp's gelu is the exact (erf) form")
        return "gelu", None
    if t is nn.Softplus:
        if module.beta != 1 or module.threshold != 20:
            raise ValueError(f"nn.Softplus(beta={module.beta}, threshold={module.threshold}) is "
                             "not supported: fastbp's softplus is beta=1, threshold=20")
        return "softplus", None
    names = {nn.Identity: "identity", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu",
             nn.SiLU: "silu", nn.Mish: "mish", nn.Hardswish: "hardswish"}
    name = names.get(t)
    if name is None or name not in ACTIVATIONS:
        return None
    return name, None


# ------------------------------------------------------------------------------ fastbp -> torch
def _t(a: np.ndarray) -> "torch.Tensor":
    return torch.from_numpy(np.array(a, copy=True))


def _modules(nodes: List[Node]) -> List["nn.Module"]:
    mods: List[nn.Module] = []
    for node in nodes:
        d = node.spec
        kind = node.kind
        if kind == "dense":
            lin = nn.Linear(d["in"], d["out"])
            lin.weight.data = _t(node.params[0].T)
            lin.bias.data = _t(node.params[1])
            mods.append(lin)
            if d.get("activation", "identity") != "identity":
                mods.append(_act_module(d["activation"], d.get("alpha")))
        elif kind == "activation":
            mods.append(_act_module(d["activation"], d.get("alpha")))
        elif kind == "dropout":
            mods.append(nn.Dropout(d["rate"]))
        elif kind == "batchnorm":
            bn = nn.BatchNorm1d(d["dim"], eps=d["eps"], momentum=d["momentum"])
            bn.weight.data, bn.bias.data = _t(node.params[0]), _t(node.params[1])
            # the running statistics exist: track_running_stats defaults to True
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.data, bn.running_var.data = _t(node.buffers[0]), _t(node.buffers[1])
            mods.append(bn)
        elif kind == "layernorm":
            ln = nn.LayerNorm(d["dim"], eps=d["eps"])
            ln.weight.data, ln.bias.data = _t(node.params[0]), _t(node.params[1])
            mods.append(ln)
        elif kind == "residual":
            mods.append(Residual(*_modules(node.children)))
        else:
            raise ValueError(f"layer type {kind!r} has no PyTorch equivalent")
    return mods


def to_torch(model: Any) -> "nn.Sequential":
    """An ``nn.Sequential`` computing ``model.predict`` (see the module docstring).

    Parameters
    ----------
    model : fastbp.Sequential

    Returns
    -------
    torch.nn.Sequential
        In evaluation mode, in the model's dtype, holding copies of the parameters and
        BatchNorm running statistics (Linear weights shaped (out, in)).
    """
    seq = nn.Sequential(*_modules(layer_tree(model)))
    return seq.to(_TORCH_DTYPES[model.dtype]).eval()


# ------------------------------------------------------------------------------ torch -> fastbp
def _flatten(module: "nn.Module") -> List["nn.Module"]:
    out: List[nn.Module] = []
    for m in module.children():
        if type(m) is nn.Sequential:
            out.extend(_flatten(m))
        else:
            out.append(m)
    return out


def _np(t: Optional["torch.Tensor"], dim: int, fill: float) -> np.ndarray:
    if t is None:
        return np.full(dim, fill)
    return t.detach().cpu().numpy()


def _linear(m: "nn.Linear", act: Tuple[str, Optional[float]]) -> _Converted:
    from .. import layers as L

    W = m.weight.detach().cpu().numpy().T
    b = _np(m.bias, m.out_features, 0.0)
    return L.Dense(m.out_features, activation=act[0], alpha=act[1]), [W, b], []


def _batchnorm(m: "nn.BatchNorm1d") -> _Converted:
    from .. import layers as L

    if not m.track_running_stats or m.running_mean is None:
        raise ValueError("nn.BatchNorm1d(track_running_stats=False) is not supported: fastbp's "
                         "BatchNorm uses running statistics for inference")
    if m.momentum is None:
        raise ValueError("nn.BatchNorm1d(momentum=None) (cumulative average) is not supported; "
                         "set a momentum")
    n = m.num_features
    params = [_np(m.weight, n, 1.0), _np(m.bias, n, 0.0)]
    bufs = [_np(m.running_mean, n, 0.0), _np(m.running_var, n, 1.0)]
    return L.BatchNorm(eps=float(m.eps), momentum=float(m.momentum)), params, bufs


def _layernorm(m: "nn.LayerNorm") -> _Converted:
    from .. import layers as L

    if len(m.normalized_shape) != 1:
        raise ValueError(f"nn.LayerNorm(normalized_shape={tuple(m.normalized_shape)}) is not "
                         "supported: fastbp normalises over the last dimension only")
    n = m.normalized_shape[0]
    params = [_np(m.weight, n, 1.0), _np(getattr(m, "bias", None), n, 0.0)]
    return L.LayerNorm(eps=float(m.eps)), params, []


def _convert(mods: List["nn.Module"], where: str) -> _Converted:
    """(fastbp layers, parameter arrays, buffer arrays) for a flat list of torch modules."""
    from .. import layers as L

    layers: List[Any] = []
    params: List[np.ndarray] = []
    bufs: List[np.ndarray] = []
    i = 0
    while i < len(mods):
        m, name = mods[i], f"{where}[{i}]"
        if isinstance(m, nn.Linear) and type(m) is nn.Linear:
            nxt = _act_of(mods[i + 1]) if i + 1 < len(mods) else None
            if nxt is not None and nxt[0] == "identity":
                nxt = None  # a standalone identity stays an activation layer
            layer, p, b = _linear(m, nxt or ("identity", None))
            i += 2 if nxt is not None else 1
        elif type(m) is Residual:
            sub, p, b = _convert(_flatten(m), name)
            layer = L.Residual(sub or [L.Activation("identity")])  # empty: x + x
            i += 1
        else:
            layer, p, b = _single(m, name)
            i += 1
        layers.append(layer)
        params += p
        bufs += b
    return layers, params, bufs


def _single(m: "nn.Module", name: str) -> _Converted:
    from .. import layers as L

    t = type(m)
    if type(m) is nn.BatchNorm1d:  # type(m), not t: mypy narrows m on it
        return _batchnorm(m)
    if type(m) is nn.LayerNorm:
        return _layernorm(m)
    if type(m) is nn.Dropout:
        return L.Dropout(float(m.p)), [], []
    act = _act_of(m)
    if act is not None:
        return L.Activation(act[0], alpha=act[1]), [], []
    raise TypeError(f"fastbp.from_torch: unsupported module {name} {m!r} "
                    f"({t.__module__}.{t.__qualname__}); supported: nn.Linear, nn.BatchNorm1d, "
                    "nn.LayerNorm, nn.Dropout, activations, nn.Sequential and "
                    "fastbp.io.torch.Residual")


def _input_width(mods: List["nn.Module"]) -> Optional[int]:
    for m in mods:
        if isinstance(m, nn.Linear):
            return int(m.in_features)
        if isinstance(m, nn.BatchNorm1d):
            return int(m.num_features)
        if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
            return int(m.normalized_shape[0])
        if type(m) is Residual:
            w = _input_width(_flatten(m))
            if w is not None:
                return w
    return None


def _module_dtype(module: "nn.Module") -> str:
    dts = {t.dtype for t in list(module.parameters()) + list(module.buffers())
           if t.is_floating_point()}
    if not dts:
        return "float32"
    names = {str(d).replace("torch.", "") for d in dts}
    if len(names) != 1 or not names <= {"float32", "float64"}:
        raise ValueError(f"the module's tensors must all be float32 or all float64, got "
                         f"{sorted(names)}")
    return names.pop()


def from_torch(module: "nn.Module", input_dim: Optional[int] = None, seed: int = 0,
               backend: str = "native") -> Any:
    """A :class:`fastbp.Sequential` equal to ``module`` in evaluation mode.

    Parameters
    ----------
    module : torch.nn.Sequential
        Of ``nn.Linear``, activations, ``nn.BatchNorm1d``, ``nn.LayerNorm``, ``nn.Dropout``,
        nested ``nn.Sequential`` and :class:`Residual` (see the module docstring).
    input_dim : int, optional
        Input width; needed only when no layer determines it.
    seed : int
        The fastbp model's seed (dropout masks and shuffling when it is trained further).
    backend : {"native", "reference"}

    Returns
    -------
    fastbp.Sequential
        In the module's dtype (float32 or float64), with copies of its parameters and
        running statistics.

    Raises
    ------
    TypeError
        For a module that is not an ``nn.Sequential`` or holds an unsupported module
        (the message names it).
    ValueError
        For a supported module with settings fastbp cannot represent.
    """
    from ..model import Sequential

    if not isinstance(module, nn.Sequential):
        raise TypeError(f"fastbp.from_torch expects a torch.nn.Sequential, got "
                        f"{type(module).__qualname__}")
    dtype = _module_dtype(module)
    mods = _flatten(module)
    layers, params, bufs = _convert(mods, "module")
    if not layers:
        raise ValueError("the module is empty")
    width = input_dim if input_dim is not None else _input_width(mods)
    if width is None:
        raise ValueError("cannot infer the input width from the module; pass input_dim=")
    model = Sequential(layers, input_dim=int(width), dtype=dtype, seed=seed, backend=backend)
    _assign(model.parameters(), params, "parameter")
    _assign(model.buffers(), bufs, "buffer")
    return model


def _assign(views: List[np.ndarray], arrays: List[np.ndarray], what: str) -> None:
    if len(views) != len(arrays):
        raise ValueError(f"the module has {len(arrays)} {what} arrays, the model {len(views)}")
    for i, (v, a) in enumerate(zip(views, arrays)):
        if v.shape != a.shape:
            raise ValueError(f"{what} {i} has shape {a.shape}, the layer needs {v.shape}")
        v[...] = a

