"""The NumPy reference engine: the oracle every native result is checked against.

:class:`Engine` implements the engine contract of ``docs/ENGINE.md`` (layer spec, one flat
parameter arena with live views, training/inference forward, backward, losses, penalties,
clipping, torch optimizers, counter-based RNG for dropout and shuffling). It is written for
clarity, not speed; every array operation runs in the engine dtype (float32 or float64).

Conventions that ENGINE.md leaves implicit, fixed here (and expected of the native engine):

* The dropout stream of a training forward pass uses the *current* ``step_counter``, which is
  incremented after the pass (a fresh engine's first training forward uses ``s = 0``); the
  shuffle of an epoch likewise uses the current ``epoch_counter`` and then increments it.
  ``step_counter`` advances on every training forward pass, dropout layers or not.
* ``fit_epoch(..., lrs=...)`` is ``set_lr(lrs[k])`` before mini-batch ``k``: the last rate
  stays set after the epoch. ``len(lrs)`` must equal the number of mini-batches.
* Bad input raises before anything changes (counters, running statistics, parameters).
"""
from __future__ import annotations

import contextlib
import copy
import math
import numbers
import signal
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import initializers
from ..layers import init_parameters
from . import activations as act
from . import losses as losses_mod
from . import optimizers as opt
from . import rng as rng_mod

__all__ = ["Engine", "normalize_spec"]

_LAYER_TYPES = ("dense", "activation", "dropout", "batchnorm", "layernorm", "residual")


# --------------------------------------------------------------------------------------------
# Spec normalisation
# --------------------------------------------------------------------------------------------
def _pos_int(layer: Dict[str, Any], key: str, where: str) -> int:
    if key not in layer:
        raise ValueError(f"spec{where}: layer of type {layer.get('type')!r} needs key {key!r}")
    v = layer[key]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < 1:
        raise ValueError(f"spec{where}[{key!r}] must be a positive integer, got {v!r}")
    return int(v)


def _float(layer: Dict[str, Any], key: str, default: float, where: str) -> float:
    v = layer.get(key, default)
    if v is None:
        v = default
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        raise ValueError(f"spec{where}[{key!r}] must be a finite number, got {v!r}")
    return float(v)


def _activation(layer: Dict[str, Any], where: str) -> Tuple[str, Optional[float]]:
    name = layer.get("activation", "identity")
    if name is None:
        name = "identity"
    if name not in act.ACTIVATIONS:
        raise ValueError(f"spec{where}['activation'] must be one of {act.ACTIVATIONS}, got {name!r}")
    alpha = layer.get("alpha")
    if alpha is None:
        alpha = act.DEFAULT_ALPHA.get(name)
    else:
        alpha = _float(layer, "alpha", 0.0, where)
    return name, alpha


def normalize_spec(spec: Any, where: str = "") -> Tuple[List[Dict[str, Any]], int, int]:
    """Validate a layer spec and fill its defaults.

    Parameters
    ----------
    spec : list of dict
        The layer spec of ENGINE.md. Unknown keys are kept (and ignored).
    where : str
        Location prefix for error messages (used for nested residual blocks).

    Returns
    -------
    spec : list of dict
        A deep copy with defaults filled (activation, alpha, eps, momentum).
    in_dim, out_dim : int
        Input and output widths of the network.

    Raises
    ------
    ValueError
        Unknown layer type, missing or invalid keys, widths that do not chain.
    TypeError
        If ``spec`` is not a list of dicts.
    """
    if not isinstance(spec, (list, tuple)):
        raise TypeError(f"spec must be a list of layer dicts, got {type(spec).__name__}")
    if len(spec) == 0:
        raise ValueError(f"spec{where} must contain at least one layer")
    out: List[Dict[str, Any]] = []
    width: Optional[int] = None
    in_dim: Optional[int] = None
    for i, layer in enumerate(spec):
        w = f"{where}[{i}]"
        if not isinstance(layer, dict):
            raise TypeError(f"spec{w} must be a dict, got {type(layer).__name__}")
        kind = layer.get("type")
        if kind not in _LAYER_TYPES:
            raise ValueError(f"spec{w}['type'] must be one of {_LAYER_TYPES}, got {kind!r}")
        new = copy.deepcopy(layer)
        if kind == "dense":
            lin, lout = _pos_int(layer, "in", w), _pos_int(layer, "out", w)
            new["in"], new["out"] = lin, lout
            new["activation"], new["alpha"] = _activation(layer, w)
            if layer.get("init") is not None and layer["init"] not in initializers.INITIALIZERS:
                raise ValueError(
                    f"spec{w}['init'] must be one of {initializers.INITIALIZERS}, got {layer['init']!r}"
                )
            lw_in, lw_out = lin, lout
        else:
            dim = _pos_int(layer, "dim", w)
            new["dim"] = dim
            lw_in = lw_out = dim
            if kind == "activation":
                new["activation"], new["alpha"] = _activation(layer, w)
            elif kind == "dropout":
                rate = _float(layer, "rate", 0.0, w)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"spec{w}['rate'] must be in [0, 1], got {rate}")
                new["rate"] = rate
            elif kind in ("batchnorm", "layernorm"):
                eps = _float(layer, "eps", 1e-5, w)
                if not eps > 0:
                    raise ValueError(f"spec{w}['eps'] must be positive, got {eps}")
                new["eps"] = eps
                if kind == "batchnorm":
                    if "momentum" in layer and layer["momentum"] is None:
                        raise ValueError(
                            f"spec{w}['momentum'] must be a number in [0, 1] "
                            "(cumulative averaging, torch's momentum=None, is not supported)"
                        )
                    mom = _float(layer, "momentum", 0.1, w)
                    if not 0.0 <= mom <= 1.0:
                        raise ValueError(f"spec{w}['momentum'] must be in [0, 1], got {mom}")
                    new["momentum"] = mom
            elif kind == "residual":
                block, b_in, b_out = normalize_spec(layer.get("layers"), f"{w}['layers']")
                if b_in != dim or b_out != dim:
                    raise ValueError(
                        f"spec{w}: residual block maps {b_in} -> {b_out} features, "
                        f"but both must equal its dim {dim}"
                    )
                new["layers"] = block
        if width is None:
            in_dim = lw_in
        elif lw_in != width:
            raise ValueError(
                f"spec{w}: layer expects {lw_in} input features but the previous layer "
                f"produces {width}"
            )
        width = lw_out
        out.append(new)
    assert in_dim is not None and width is not None
    return out, in_dim, width


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _sigint_between_steps():
    """Ctrl-C as the native engine takes it: between two complete mini-batch steps (never
    inside an update), then KeyboardInterrupt. Only in the main thread with Python's default
    SIGINT handler; otherwise the handler in place runs as usual."""
    fired: List[int] = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield fired
        return
    signal.signal(signal.SIGINT, lambda signum, frame: fired.append(signum))
    try:
        yield fired
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if fired:
        raise KeyboardInterrupt


class _Ctx:
    """Per-forward context: training flag, dtype and dropout stream coordinates."""

    def __init__(self, training: bool, seed: int, step: int, update_state: bool = True):
        self.training = training
        self.seed = seed
        self.step = step
        self.update_state = update_state  # training: BatchNorm updates its running statistics


class _Layer:
    index: int  # position in the flat pre-order walk

    def forward(self, x: np.ndarray, ctx: _Ctx) -> Tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, cache: Any) -> np.ndarray:
        raise NotImplementedError


class _Dense(_Layer):
    def __init__(self, spec, W, b, gW, gb):
        self.activation, self.alpha = spec["activation"], spec["alpha"]
        self.W, self.b, self.gW, self.gb = W, b, gW, gb

    def forward(self, x, ctx):
        z = x @ self.W + self.b
        a = act.act_forward(self.activation, z, self.alpha)
        return a, (x, z, a)

    def backward(self, dy, cache):
        x, z, a = cache
        dz = act.act_backward(self.activation, z, a, dy, self.alpha)
        self.gW[...] = x.T @ dz
        self.gb[...] = dz.sum(axis=0)
        return dz @ self.W.T


class _Activation(_Layer):
    def __init__(self, spec):
        self.activation, self.alpha = spec["activation"], spec["alpha"]

    def forward(self, x, ctx):
        a = act.act_forward(self.activation, x, self.alpha)
        return a, (x, a)

    def backward(self, dy, cache):
        x, a = cache
        return act.act_backward(self.activation, x, a, dy, self.alpha)


class _Dropout(_Layer):
    def __init__(self, spec):
        self.rate = spec["rate"]

    def forward(self, x, ctx):
        if not ctx.training or self.rate == 0.0:
            return x, None
        keep = rng_mod.dropout_mask(ctx.seed, ctx.step, self.index, x.shape, self.rate)
        dt = x.dtype
        scale = dt.type(0.0) if self.rate == 1.0 else dt.type(1.0 / (1.0 - self.rate))
        multiplier = keep.astype(dt) * scale
        return x * multiplier, multiplier

    def backward(self, dy, cache):
        return dy if cache is None else dy * cache


def _norm_backward(dy, xhat, inv_std, gamma, axis):
    """Gradient of ``y = gamma * xhat + beta`` w.r.t. the input of the normalisation."""
    n = xhat.shape[axis]
    dxhat = dy * gamma
    s1 = dxhat.sum(axis=axis, keepdims=True)
    s2 = (dxhat * xhat).sum(axis=axis, keepdims=True)
    return (inv_std / xhat.dtype.type(n)) * (xhat.dtype.type(n) * dxhat - s1 - xhat * s2)


def _norm_layer_backward(layer, dy, cache, axis):
    """Backward of BatchNorm (axis=0) and LayerNorm (axis=1): gamma/beta gradients summed over
    the batch, then the input gradient."""
    xhat, inv_std = cache
    layer.ggamma[...] = (dy * xhat).sum(axis=0)
    layer.gbeta[...] = dy.sum(axis=0)
    return _norm_backward(dy, xhat, inv_std, layer.gamma, axis=axis)


class _BatchNorm(_Layer):
    def __init__(self, spec, gamma, beta, ggamma, gbeta, running_mean, running_var):
        self.eps, self.momentum = spec["eps"], spec["momentum"]
        self.gamma, self.beta, self.ggamma, self.gbeta = gamma, beta, ggamma, gbeta
        self.running_mean, self.running_var = running_mean, running_var

    def forward(self, x, ctx):
        dt = x.dtype
        eps = dt.type(self.eps)
        if not ctx.training:
            xhat = (x - self.running_mean) / np.sqrt(self.running_var + eps)
            return self.gamma * xhat + self.beta, None
        n = x.shape[0]
        if n < 2:  # the engine checks this before the pass; kept as a safety net
            raise ValueError("batchnorm needs more than 1 sample per batch in training mode")
        mean = x.mean(axis=0)
        xc = x - mean
        var = (xc * xc).mean(axis=0)  # biased: used to normalise
        inv_std = dt.type(1) / np.sqrt(var + eps)
        xhat = xc * inv_std
        m = dt.type(self.momentum)
        one = dt.type(1)
        unbiased = var * dt.type(n / (n - 1))
        if not ctx.update_state:
            return self.gamma * xhat + self.beta, (xhat, inv_std)
        self.running_mean[...] = (one - m) * self.running_mean + m * mean
        self.running_var[...] = (one - m) * self.running_var + m * unbiased
        return self.gamma * xhat + self.beta, (xhat, inv_std)

    def backward(self, dy, cache):
        return _norm_layer_backward(self, dy, cache, axis=0)


class _LayerNorm(_Layer):
    def __init__(self, spec, gamma, beta, ggamma, gbeta):
        self.eps = spec["eps"]
        self.gamma, self.beta, self.ggamma, self.gbeta = gamma, beta, ggamma, gbeta

    def forward(self, x, ctx):
        dt = x.dtype
        mean = x.mean(axis=1, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=1, keepdims=True)
        inv_std = dt.type(1) / np.sqrt(var + dt.type(self.eps))
        xhat = xc * inv_std
        return self.gamma * xhat + self.beta, (xhat, inv_std)

    def backward(self, dy, cache):
        return _norm_layer_backward(self, dy, cache, axis=1)


class _Residual(_Layer):
    def __init__(self, block: List[_Layer]):
        self.block = block

    def forward(self, x, ctx):
        h = x
        caches = []
        for layer in self.block:
            h, c = layer.forward(h, ctx)
            caches.append(c)
        return x + h, caches

    def backward(self, dy, caches):
        dh = dy
        for layer, c in zip(reversed(self.block), reversed(caches)):
            dh = layer.backward(dh, c)
        return dy + dh


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------
def _parse_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _parse_seed(seed: Any, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed}")
    return seed


class Engine:
    """NumPy reference implementation of the fastbp engine contract (``docs/ENGINE.md``).

    Parameters
    ----------
    spec : list of dict
        Layer spec (types ``dense``, ``activation``, ``dropout``, ``batchnorm``,
        ``layernorm``, ``residual``).
    dtype : {"float32", "float64"}
        Compute and storage dtype.
    seed : int
        Seed of parameter initialisation (:func:`fastbp.layers.init_parameters`) and of
        the dropout / shuffle streams.

    Attributes
    ----------
    dtype : numpy.dtype
    spec : list of dict
        Normalised copy of the spec (defaults filled).
    num_params : int
        Number of scalar parameters (length of :meth:`arena`).
    in_dim, out_dim : int
        Input and output widths.
    """

    PREDICT_CHUNK_ROWS = 4096  # rows per predict chunk (bounded memory)

    def __init__(self, spec: List[Dict[str, Any]], dtype: str = "float32", seed: int = 0):
        self._dtype = _parse_dtype(dtype)
        self._spec, self.in_dim, self.out_dim = normalize_spec(spec)
        self._seed = _parse_seed(seed)
        self._step_counter = 0
        self._epoch_counter = 0

        # Size the arenas, then build layers holding views into them.
        n_params, n_buffers = self._count(self._spec)
        self._arena = np.zeros(n_params, dtype=self._dtype)
        self._grad = np.zeros(n_params, dtype=self._dtype)
        self._buffer_arena = np.zeros(n_buffers, dtype=self._dtype)
        self._param_views: List[np.ndarray] = []
        self._grad_views: List[np.ndarray] = []
        self._buffer_views: List[np.ndarray] = []
        self._dense_weights: List[Tuple[np.ndarray, np.ndarray]] = []  # (W, gW)
        self._has_batchnorm = False
        self._p_off = 0
        self._b_off = 0
        self._counter = 0
        self._layers = self._build(self._spec)
        assert self._p_off == n_params and self._b_off == n_buffers

        init_parameters(self._spec, self._param_views, self._buffer_views, self._seed)

        self._opt_name: Optional[str] = None
        self._opt_hyper: Dict[str, Any] = {}
        self._opt_state: Dict[str, Any] = {}

    # ---------------------------------------------------------------- construction helpers
    @staticmethod
    def _count(spec) -> Tuple[int, int]:
        p = b = 0
        for layer in spec:
            if layer["type"] == "dense":
                p += layer["in"] * layer["out"] + layer["out"]
            elif layer["type"] in ("batchnorm", "layernorm"):
                p += 2 * layer["dim"]
                if layer["type"] == "batchnorm":
                    b += 2 * layer["dim"]
            elif layer["type"] == "residual":
                pp, bb = Engine._count(layer["layers"])
                p, b = p + pp, b + bb
        return p, b

    def _take(self, shape) -> Tuple[np.ndarray, np.ndarray]:
        size = int(np.prod(shape))
        sl = slice(self._p_off, self._p_off + size)
        self._p_off += size
        view, gview = self._arena[sl].reshape(shape), self._grad[sl].reshape(shape)
        self._param_views.append(view)
        self._grad_views.append(gview)
        return view, gview

    def _take_buffer(self, dim: int) -> np.ndarray:
        view = self._buffer_arena[self._b_off:self._b_off + dim]
        self._b_off += dim
        self._buffer_views.append(view)
        return view

    def _build(self, spec) -> List[_Layer]:
        layers: List[_Layer] = []
        for s in spec:
            index = self._counter
            self._counter += 1
            kind = s["type"]
            if kind == "dense":
                W, gW = self._take((s["in"], s["out"]))
                b, gb = self._take((s["out"],))
                self._dense_weights.append((W, gW))
                layer: _Layer = _Dense(s, W, b, gW, gb)
            elif kind == "activation":
                layer = _Activation(s)
            elif kind == "dropout":
                layer = _Dropout(s)
            elif kind == "batchnorm":
                g, gg = self._take((s["dim"],))
                be, gbe = self._take((s["dim"],))
                rm, rv = self._take_buffer(s["dim"]), self._take_buffer(s["dim"])
                layer = _BatchNorm(s, g, be, gg, gbe, rm, rv)
                self._has_batchnorm = True
            elif kind == "layernorm":
                g, gg = self._take((s["dim"],))
                be, gbe = self._take((s["dim"],))
                layer = _LayerNorm(s, g, be, gg, gbe)
            else:  # residual: counted before its block (pre-order)
                layer = _Residual([])
                layer.block = self._build(s["layers"])
            layer.index = index
            layers.append(layer)
        return layers

    # ---------------------------------------------------------------- properties and views
    @property
    def dtype(self) -> np.dtype:
        """Engine dtype (``numpy.dtype``; compares equal to the string ``"float32"``/``"float64"``)."""
        return self._dtype

    @property
    def spec(self) -> List[Dict[str, Any]]:
        """Normalised copy of the layer spec (JSON-serialisable)."""
        return copy.deepcopy(self._spec)

    @property
    def num_params(self) -> int:
        """Number of scalar parameters."""
        return int(self._arena.size)

    def arena(self) -> np.ndarray:
        """Return the flat parameter arena (a live, writable 1-D view).

        Returns
        -------
        numpy.ndarray
            Length :attr:`num_params`, dtype :attr:`dtype`.
        """
        return self._arena[:]

    def parameters(self) -> List[np.ndarray]:
        """Return live, writable views of every parameter in traversal order.

        Returns
        -------
        list of numpy.ndarray
            ``[W1 (in, out), b1 (out,), ..., gamma, beta, ...]``.
        """
        return [v[...] for v in self._param_views]

    def buffers(self) -> List[np.ndarray]:
        """Return live, writable views of the batchnorm running statistics.

        Returns
        -------
        list of numpy.ndarray
            ``[running_mean, running_var, ...]`` per batchnorm layer in traversal order.
        """
        return [v[...] for v in self._buffer_views]

    # ---------------------------------------------------------------- validation helpers
    def _check_X(self, X: Any, name: str = "X") -> np.ndarray:
        return self._check_X_width(X, self.in_dim, name)

    def _check_X_width(self, X: Any, width: int, name: str) -> np.ndarray:
        if not isinstance(X, np.ndarray):
            try:
                X = np.asarray(X)
            except Exception as exc:  # ragged lists and the like
                raise TypeError(f"{name} must be a 2-D numeric array: {exc}") from exc
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, {width}), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{name} must contain at least one sample, got shape {X.shape}")
        if X.shape[1] != width:
            raise ValueError(f"{name} must have {width} columns, got shape {X.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            X = np.ascontiguousarray(X, dtype=self._dtype)
        if not np.all(np.isfinite(X)):
            raise ValueError(
                f"{name} contains NaN or infinite values (or values too large for {self._dtype})"
            )
        return X

    def _check_loss(self, loss: Any, loss_params: Any) -> Dict[str, float]:
        if loss not in losses_mod.LOSSES:
            raise ValueError(f"loss must be one of {losses_mod.LOSSES}, got {loss!r}")
        if loss_params is None:
            loss_params = {}
        if not isinstance(loss_params, dict):
            raise TypeError(f"loss_params must be a dict or None, got {type(loss_params).__name__}")
        unknown = sorted(set(loss_params) - {"delta", "l1", "l2"})
        if unknown:
            raise ValueError(f"loss_params has unknown key(s) {unknown}; allowed: delta, l1, l2")
        out: Dict[str, float] = {}
        for key, default in (("delta", 1.0), ("l1", 0.0), ("l2", 0.0)):
            v = loss_params.get(key, default)
            if v is None:
                v = default
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
                raise ValueError(f"loss_params[{key!r}] must be a finite number, got {v!r}")
            out[key] = float(v)
        if out["delta"] <= 0:
            raise ValueError(f"loss_params['delta'] must be positive, got {out['delta']}")
        if out["l1"] < 0 or out["l2"] < 0:
            raise ValueError("loss_params['l1'] and loss_params['l2'] must be non-negative")
        return out

    def _check_batch(self, X, y, loss, loss_params, sample_weight):
        lp = self._check_loss(loss, loss_params)
        X = self._check_X(X)
        n = X.shape[0]
        y = losses_mod.check_target(loss, (n, self.out_dim), y, self._dtype)
        w = losses_mod.check_sample_weight(sample_weight, n, self._dtype)
        return X, y, lp, w

    def _check_bn_batch(self, batch_size: int, what: str) -> None:
        if self._has_batchnorm and batch_size < 2:
            raise ValueError(
                f"batchnorm needs more than 1 sample per batch in training mode "
                f"(torch raises too); {what} has {batch_size}"
            )

    # ---------------------------------------------------------------- forward / backward
    def _forward(self, X: np.ndarray, training: bool, update_state: bool = True):
        ctx = _Ctx(training, self._seed, self._step_counter, update_state)
        h = X
        caches = []
        for layer in self._layers:
            h, c = layer.forward(h, ctx)
            caches.append(c)
        return h, caches

    def _backward(self, dout: np.ndarray, caches) -> None:
        self._grad[...] = 0
        d = dout
        for layer, c in zip(reversed(self._layers), reversed(caches)):
            d = layer.backward(d, c)

    def _loss_and_grad(self, X, y, loss, lp, w, probe: bool = False) -> float:
        """Training forward + loss + penalties + backward into ``self._grad``; advances the step
        (unless ``probe``: then no counter or BatchNorm running statistic changes)."""
        out, caches = self._forward(X, training=True, update_state=not probe)
        if not probe:
            self._step_counter += 1
        value, dout = losses_mod.compute_loss(loss, out, y, w, lp)
        self._backward(dout, caches)
        l1, l2 = lp["l1"], lp["l2"]
        if l1 != 0 or l2 != 0:
            dt = self._dtype
            penalty = dt.type(0)
            for W, gW in self._dense_weights:
                if l1 != 0:
                    penalty = penalty + dt.type(l1) * np.abs(W).sum()
                    gW += dt.type(l1) * np.sign(W)
                if l2 != 0:
                    penalty = penalty + dt.type(0.5 * l2) * (W * W).sum()
                    gW += dt.type(l2) * W
            value = float(dt.type(value) + penalty)
        return value

    def _update(self) -> None:
        grad = self._grad.copy()
        assert self._opt_name is not None
        opt.clip_gradient(grad, self._opt_hyper["clip_value"], self._opt_hyper["clip_norm"])
        opt.optimizer_step(self._opt_name, self._opt_hyper, self._arena, grad, self._opt_state)

    # ---------------------------------------------------------------- public methods
    def predict(self, X: Any) -> np.ndarray:
        """Inference-mode forward pass (dropout off, batchnorm running statistics).

        Parameters
        ----------
        X : array_like
            ``(n, in_dim)`` inputs (converted to the engine dtype).

        Returns
        -------
        numpy.ndarray
            ``(n, out_dim)`` network outputs (logits for classification losses).
        """
        X = self._check_X(X)
        # bounded chunks: the intermediate activations never grow with n
        rows = self.PREDICT_CHUNK_ROWS
        if X.shape[0] <= rows:
            return self._forward(X, training=False)[0]
        out = np.empty((X.shape[0], self.out_dim), dtype=self._dtype)
        for start in range(0, X.shape[0], rows):
            out[start:start + rows] = self._forward(X[start:start + rows], training=False)[0]
        return out

    def loss_and_gradients(
        self,
        X: Any,
        y: Any,
        loss: str,
        loss_params: Optional[Dict[str, float]] = None,
        sample_weight: Any = None,
        probe: bool = False,
    ) -> Tuple[float, List[np.ndarray]]:
        """Training-mode forward and backward, without an update.

        Dropout is active (stream ``step_counter``), batchnorm uses batch statistics and
        updates its running statistics; ``step_counter`` is incremented. With ``probe``
        (diagnostics) neither the step counter nor the running statistics change.

        Parameters
        ----------
        X : array_like
            ``(n, in_dim)`` inputs.
        y : array_like
            Targets (see :func:`fastbp.reference.losses.check_target`).
        loss : str
            Loss name.
        loss_params : dict, optional
            ``delta`` (huber), ``l1``, ``l2`` (penalties on dense weights).
        sample_weight : array_like, optional
            ``(n,)`` non-negative weights.
        probe : bool
            Change no state a training step reads.

        Returns
        -------
        loss : float
            Loss including penalties.
        grads : list of numpy.ndarray
            Copies, shaped like :meth:`parameters`.
        """
        X, y, lp, w = self._check_batch(X, y, loss, loss_params, sample_weight)
        self._check_bn_batch(X.shape[0], "X")
        value = self._loss_and_grad(X, y, loss, lp, w, probe=bool(probe))
        return value, [g.copy() for g in self._grad_views]

    def gradient_norms(self, X: Any, y: Any, loss: str,
                       loss_params: Optional[Dict[str, float]] = None,
                       sample_weight: Any = None) -> Tuple[float, List[float]]:
        """:meth:`loss_and_gradients` with ``probe``, returning the L2 norm of each
        parameter's gradient (in float64) instead of copies of the gradients."""
        X, y, lp, w = self._check_batch(X, y, loss, loss_params, sample_weight)
        self._check_bn_batch(X.shape[0], "X")
        value = self._loss_and_grad(X, y, loss, lp, w, probe=True)
        return value, [float(np.linalg.norm(g.astype(np.float64, copy=False).reshape(-1)))
                       for g in self._grad_views]

    def set_optimizer(self, name: str, hyper: Optional[Dict[str, Any]] = None,
                      reset: bool = False) -> None:
        """(Re)configure the optimizer.

        A different ``name`` resets the state (``step = 0``, fresh arrays); the same name keeps
        it (state arrays that the new hyper-parameters need are created, unused ones dropped).

        Parameters
        ----------
        name : {"sgd", "adam", "adamw", "rmsprop", "adagrad"}
        hyper : dict, optional
            torch hyper-parameter names and defaults (see
            :mod:`fastbp.reference.optimizers`), plus ``clip_norm`` and ``clip_value``.
        reset : bool
            Start from fresh state even if the name is the same (a new optimizer object).
        """
        h = opt.normalize_hyper(name, hyper)
        names = opt.state_names(name, h)
        if reset or name != self._opt_name:
            state: Dict[str, Any] = {"step": 0}
        else:
            state = {"step": self._opt_state["step"]}
            if "_fresh_momentum" in self._opt_state:
                state["_fresh_momentum"] = self._opt_state["_fresh_momentum"]
            for key in names:
                if key in self._opt_state:
                    state[key] = self._opt_state[key]
        for key in names:
            if key not in state:
                state[key] = opt.init_state(name, h, self.num_params, self._dtype, key)
                if name == "sgd" and key == "momentum_buffer":
                    state["_fresh_momentum"] = True
        self._opt_name, self._opt_hyper, self._opt_state = name, h, state

    def _require_optimizer(self, what: str) -> str:
        """The current optimizer's name; RuntimeError if none is configured."""
        if self._opt_name is None:
            raise RuntimeError(f"{what}: no optimizer configured; call set_optimizer first")
        return self._opt_name

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of the current optimizer.

        Parameters
        ----------
        lr : float
            Non-negative, finite.
        """
        self._require_optimizer("set_lr")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(float(lr)) or lr < 0:
            raise ValueError(f"lr must be a non-negative finite number, got {lr!r}")
        self._opt_hyper["lr"] = float(lr)

    def optimizer_state(self) -> Dict[str, Any]:
        """Return a copy of the optimizer state.

        Returns
        -------
        dict
            ``{"step": int, <torch state name>: 1-D array over the arena, ...}``;
            ``{"step": 0}`` when no optimizer is configured.
        """
        if self._opt_name is None:
            return {"step": 0}
        out: Dict[str, Any] = {"step": int(self._opt_state["step"])}
        for key in opt.state_names(self._opt_name, self._opt_hyper):
            out[key] = self._opt_state[key].copy()
        return out

    def set_optimizer_state(self, state: Dict[str, Any]) -> None:
        """Restore optimizer state saved by :meth:`optimizer_state` (same optimizer configured).

        Parameters
        ----------
        state : dict
            Must hold ``step`` and exactly the state arrays of the current optimizer.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        if self._opt_name is None:
            if set(state) - {"step"}:
                raise RuntimeError("set_optimizer_state: no optimizer configured; call set_optimizer first")
            return
        step = state.get("step")
        if isinstance(step, np.ndarray) and step.ndim == 0:
            step = step.item()
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
            raise ValueError(f"state['step'] must be a non-negative int, got {step!r}")
        names = opt.state_names(self._opt_name, self._opt_hyper)
        if set(state) != set(names) | {"step"}:
            raise ValueError(
                f"state must have keys {['step'] + names} for optimizer {self._opt_name!r}, "
                f"got {sorted(state)}"
            )
        new: Dict[str, Any] = {"step": int(step)}
        for key in names:
            arr = np.asarray(state[key])
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"state[{key!r}] must be a real numeric array, got dtype {arr.dtype}")
            if arr.shape != (self.num_params,):
                raise ValueError(f"state[{key!r}] must have shape ({self.num_params},), got {arr.shape}")
            new[key] = np.array(arr, dtype=self._dtype, copy=True)
        if "momentum_buffer" in names and self._opt_name == "sgd":
            new["_fresh_momentum"] = int(step) == 0
        self._opt_state = new

    def grad_arena(self) -> np.ndarray:
        """Return the flat gradient arena (a live, writable 1-D view, layout of :meth:`arena`).

        Returns
        -------
        numpy.ndarray
            Length :attr:`num_params`, dtype :attr:`dtype`.
        """
        return self._grad[:]

    def compute_gradients(
        self,
        X: Any,
        y: Any,
        loss: str,
        loss_params: Optional[Dict[str, float]] = None,
        sample_weight: Any = None,
    ) -> float:
        """:meth:`loss_and_gradients` without copies: the gradients stay in :meth:`grad_arena`.

        Parameters
        ----------
        X, y, loss, loss_params, sample_weight
            As in :meth:`loss_and_gradients`.

        Returns
        -------
        float
            The loss (including penalties).
        """
        X, y, lp, w = self._check_batch(X, y, loss, loss_params, sample_weight)
        self._check_bn_batch(X.shape[0], "X")
        return self._loss_and_grad(X, y, loss, lp, w)

    def apply_gradients(self) -> None:
        """Clip the gradient in :meth:`grad_arena` and take one optimizer step with it (the
        second half of :meth:`train_step`). The arena's content afterwards is unspecified."""
        name = self._require_optimizer("apply_gradients")
        opt.clip_gradient(self._grad, self._opt_hyper["clip_value"], self._opt_hyper["clip_norm"])
        opt.optimizer_step(name, self._opt_hyper, self._arena, self._grad,
                           self._opt_state)

    def train_step(
        self,
        X: Any,
        y: Any,
        loss: str,
        loss_params: Optional[Dict[str, float]] = None,
        sample_weight: Any = None,
    ) -> float:
        """One training step: forward (training), loss + penalties, backward, clip, update.

        Parameters
        ----------
        X, y, loss, loss_params, sample_weight
            As in :meth:`loss_and_gradients`.

        Returns
        -------
        float
            The loss (including penalties) before the update.
        """
        self._require_optimizer("train_step")
        value = self.compute_gradients(X, y, loss, loss_params, sample_weight)
        self._update()
        return value

    def fit_epoch(
        self,
        X: Any,
        y: Any,
        loss: str,
        loss_params: Optional[Dict[str, float]] = None,
        sample_weight: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        lrs: Any = None,
    ) -> float:
        """One epoch of mini-batch training steps.

        Mini-batch ``k`` holds samples ``perm[k*batch_size:(k+1)*batch_size]`` (the last one may
        be smaller), where ``perm`` is :func:`fastbp.reference.rng.shuffle_permutation`
        ``(seed, epoch_counter, n)`` when ``shuffle`` (``epoch_counter`` is then incremented),
        else ``arange(n)``.

        Parameters
        ----------
        X, y, loss, loss_params, sample_weight
            As in :meth:`loss_and_gradients`, for the whole data set.
        batch_size : int
            Positive mini-batch size.
        shuffle : bool
            Shuffle with the engine's RNG.
        lrs : array_like, optional
            One learning rate per mini-batch (``ceil(n / batch_size)`` values); rate ``k`` is
            set (as by :meth:`set_lr`) before step ``k``.

        Returns
        -------
        float
            ``sum_b loss_b * n_b / n``.

        Notes
        -----
        A mini-batch whose sample weights are all zero has loss 0 and a zero loss gradient
        (penalties still apply); the optimizer step still runs.
        """
        self._require_optimizer("fit_epoch")
        X, y, lp, w = self._check_batch(X, y, loss, loss_params, sample_weight)
        n = X.shape[0]
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        batch_size = int(batch_size)
        n_steps = -(-n // batch_size)
        last = n - (n_steps - 1) * batch_size
        self._check_bn_batch(min(batch_size, last), "the smallest mini-batch")
        if lrs is not None:
            lrs = np.asarray(lrs)
            if lrs.dtype.kind not in "iuf":
                raise TypeError(f"lrs must be a real numeric array, got dtype {lrs.dtype}")
            lrs = lrs.astype(np.float64)
            if lrs.shape != (n_steps,):
                raise ValueError(
                    f"lrs must have shape ({n_steps},) (one rate per mini-batch), got {lrs.shape}"
                )
            if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
                raise ValueError("lrs must be finite and non-negative")
        return self._epoch(X, y, loss, lp, w, batch_size, shuffle, lrs)

    def _epoch(self, X, y, loss, lp, w, batch_size, shuffle, lrs) -> float:
        """The mini-batch loop of :meth:`fit_epoch` (checked arguments; X dense or CSR)."""
        n = X.shape[0]
        n_steps = -(-n // batch_size)
        if shuffle:
            perm = rng_mod.shuffle_permutation(self._seed, self._epoch_counter, n)
            self._epoch_counter += 1
        else:
            perm = np.arange(n)
        total = 0.0
        with _sigint_between_steps() as interrupted:
            for k in range(n_steps):
                if interrupted:
                    break
                idx = perm[k * batch_size:(k + 1) * batch_size]
                wb = None if w is None else w[idx]
                if lrs is not None:
                    self._opt_hyper["lr"] = float(lrs[k])
                value = self._loss_and_grad(X[idx], y[idx], loss, lp, wb)
                self._update()
                total += value * len(idx)
        return total / n

    # ---------------------------------------------------------------- sparse (CSR) input
    def _check_csr(self, data: Any, indices: Any, indptr: Any) -> Any:
        """A ``scipy.sparse.csr_matrix`` of the engine dtype from CSR arrays, checked as the
        native engine checks them; the first layer must be dense."""
        import scipy.sparse

        if not isinstance(self._layers[0], _Dense):
            raise ValueError("sparse input needs a network whose first layer is dense")
        indptr = np.asarray(indptr)
        indices = np.asarray(indices)
        data = np.asarray(data)
        if indptr.ndim != 1 or indices.ndim != 1 or data.ndim != 1:
            raise ValueError("X.data, X.indices and X.indptr must be 1-D")
        if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
            raise TypeError("X.indices and X.indptr must hold integers")
        if data.dtype.kind not in "biuf":
            raise TypeError(f"X.data must hold real numbers, got dtype {data.dtype}")
        n = indptr.shape[0] - 1
        if n < 1:
            raise ValueError("X is empty (0 rows)")
        if indices.shape != data.shape or indptr[0] != 0 or indptr[-1] != data.shape[0] \
                or np.any(np.diff(indptr) < 0):
            raise ValueError("X.indptr must start at 0, be non-decreasing and end at the "
                             "number of non-zeros (the length of X.indices and X.data)")
        if indices.size and (indices.min() < 0 or indices.max() >= self.in_dim):
            raise ValueError(f"X.indices: a column is out of range [0, {self.in_dim})")
        with np.errstate(over="ignore", invalid="ignore"):
            data = data.astype(self._dtype)
        if not np.all(np.isfinite(data)):
            raise ValueError("X contains NaN or Inf")
        return scipy.sparse.csr_matrix((data, indices.astype(np.int64), indptr.astype(np.int64)),
                                       shape=(n, self.in_dim))

    def predict_csr(self, data: Any, indices: Any, indptr: Any) -> np.ndarray:
        """:meth:`predict` for CSR input rows (scipy.sparse's data, indices, indptr)."""
        X = self._check_csr(data, indices, indptr)
        rows = self.PREDICT_CHUNK_ROWS
        out = np.empty((X.shape[0], self.out_dim), dtype=self._dtype)
        for start in range(0, X.shape[0], rows):
            out[start:start + rows] = self._forward(X[start:start + rows], training=False)[0]
        return out

    def loss_and_gradients_csr(self, data: Any, indices: Any, indptr: Any, y: Any, loss: str,
                               loss_params: Optional[Dict[str, float]] = None,
                               sample_weight: Any = None) -> Tuple[float, np.ndarray]:
        """:meth:`loss_and_gradients` for CSR input rows; the gradient is returned flat, laid
        out as :meth:`arena`."""
        X = self._check_csr(data, indices, indptr)
        lp = self._check_loss(loss, loss_params)
        y = losses_mod.check_target(loss, (X.shape[0], self.out_dim), y, self._dtype)
        w = losses_mod.check_sample_weight(sample_weight, X.shape[0], self._dtype)
        self._check_bn_batch(X.shape[0], "X")
        value = self._loss_and_grad(X, y, loss, lp, w)
        return value, self._grad.copy()

    def fit_epoch_csr(self, data: Any, indices: Any, indptr: Any, y: Any, loss: str,
                      loss_params: Optional[Dict[str, float]] = None, sample_weight: Any = None,
                      batch_size: int = 32, shuffle: bool = True) -> float:
        """:meth:`fit_epoch` for CSR input rows (the same mini-batches and shuffle)."""
        self._require_optimizer("fit_epoch")
        X = self._check_csr(data, indices, indptr)
        lp = self._check_loss(loss, loss_params)
        n = X.shape[0]
        y = losses_mod.check_target(loss, (n, self.out_dim), y, self._dtype)
        w = losses_mod.check_sample_weight(sample_weight, n, self._dtype)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        batch_size = min(int(batch_size), n)
        last = n - (-(-n // batch_size) - 1) * batch_size
        self._check_bn_batch(min(batch_size, last), "the smallest mini-batch")
        return self._epoch(X, y, loss, lp, w, batch_size, shuffle, None)

    def check_batch(self, X: Any, y: Any, loss: str, loss_params: Optional[Dict[str, Any]] = None,
                    sample_weight: Any = None) -> None:
        """Check a batch exactly as :meth:`train_step` would, computing nothing.

        Raises
        ------
        TypeError, ValueError
            As :meth:`train_step` does for the same arguments.
        """
        self._check_batch(X, y, loss, loss_params, sample_weight)

    def loss_value(self, outputs: Any, y: Any, loss: str,
                   loss_params: Optional[Dict[str, Any]] = None,
                   sample_weight: Any = None) -> float:
        """The loss (without penalties) of given ``outputs`` (n, out_dim) against ``y``."""
        lp = self._check_loss(loss, loss_params)
        out = self._check_X_width(outputs, self.out_dim, "outputs")
        n = out.shape[0]
        y = losses_mod.check_target(loss, (n, self.out_dim), y, self._dtype)
        w = losses_mod.check_sample_weight(sample_weight, n, self._dtype)
        value, _ = losses_mod.compute_loss(loss, out, y, w, lp)
        return float(value)

    def permutation(self, n: int) -> np.ndarray:
        """The row order the next shuffled :meth:`fit_epoch` over ``n`` rows uses."""
        return rng_mod.shuffle_permutation(self._seed, self._epoch_counter, n)

    def rng_state(self) -> Tuple[int, int, int]:
        """Return ``(seed, step_counter, epoch_counter)``."""
        return (self._seed, self._step_counter, self._epoch_counter)

    def set_rng_state(self, *state: Any) -> None:
        """Restore ``(seed, step_counter, epoch_counter)``: one tuple or three ints."""
        if len(state) == 1 and isinstance(state[0], (tuple, list)):
            state = tuple(state[0])
        if len(state) != 3:
            raise ValueError("set_rng_state expects (seed, step_counter, epoch_counter)")
        seed = _parse_seed(state[0], "seed")
        step = _parse_seed(state[1], "step_counter")
        epoch = _parse_seed(state[2], "epoch_counter")
        self._seed, self._step_counter, self._epoch_counter = seed, step, epoch
