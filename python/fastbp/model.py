"""The public model classes: ``Sequential`` and ``MLP``, thin over an engine."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import optim as _optim
from .initializers import init_parameters
from .layers import Dense, Layer, build_spec

__all__ = ["Sequential", "MLP", "LOSSES", "set_check_finite", "get_check_finite"]

LOSSES = ("mse", "mae", "huber", "binary_cross_entropy", "softmax_cross_entropy")
_LOSS_PARAMS = ("delta", "l1", "l2")
_DTYPES = {"float32": np.float32, "float64": np.float64}


def _dtype_name(dtype: Any) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in _DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return name


def make_engine(spec: list, dtype: str, seed: int, backend: str):
    """Build the engine for ``backend`` ("native" or "reference")."""
    if backend == "native":
        from . import _core

        cls = _core.Network32 if dtype == "float32" else _core.Network64
        return cls(spec, seed)
    if backend == "reference":
        from .reference import Engine

        return Engine(spec, dtype, seed)
    raise ValueError(f"backend must be 'native' or 'reference', got {backend!r}")


# NaN/Inf in X is rejected by default (a clear ValueError instead of NaN parameters);
# fastbp.set_check_finite(False) skips that scan (the native engine's check_finite=None
# default follows it; the reference backend, the test oracle, always checks).
_CHECK_FINITE = [True]


def set_check_finite(on: bool) -> None:
    """Whether ``predict``/``train_step``/``loss_and_gradients``/``fit`` reject inputs ``X``
    holding NaN or Inf with a ``ValueError`` (default ``True``).

    ``False`` skips the O(n*d) scan: non-finite inputs then propagate into the outputs (and,
    when training, into the parameters). Targets and sample weights are always checked.
    The reference backend always checks. See docs/RELIABILITY.md."""
    on = bool(on)
    from . import _core

    _core.set_check_finite(on)
    _CHECK_FINITE[0] = on


def get_check_finite() -> bool:
    """The current :func:`set_check_finite` setting."""
    return _CHECK_FINITE[0]


def _all_finite(a: np.ndarray) -> bool:
    # min and max propagate NaN and expose +-Inf, without an n*d boolean temporary
    return a.size == 0 or bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def _as_float(name: str, a: Any, dtype: np.dtype, ndim: Tuple[int, ...]) -> np.ndarray:
    """Safe conversion of user data to an aligned, C-contiguous array of the model dtype.

    Real dtypes (bool, ints, float16/32/64) are converted with a copy; so are strided,
    negative-stride, Fortran-ordered, misaligned and byte-swapped arrays. Complex, object,
    string, datetime, structured data -> TypeError; wrong number of dimensions -> ValueError.
    Values too large for the dtype become Inf (caught by the finite check)."""
    if (isinstance(a, np.ndarray) and a.dtype == dtype and a.ndim in ndim
            and a.flags.c_contiguous and a.flags.aligned):
        return a
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested sequences and the like
        raise TypeError(f"{name} must be a numeric array: {exc}") from exc
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in ndim:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in ndim)}, got shape {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.aligned:  # ascontiguousarray keeps a misaligned buffer as it is
        out = out.copy()
    return out


class Sequential:
    """A feed-forward network: a list of layers trained by backpropagation.

    Parameters
    ----------
    layers : sequence of Layer
        e.g. ``[fb.Dense(128, activation="relu"), fb.Dropout(0.1), fb.Dense(10)]``.
    input_dim : int
        Width of the input.
    dtype : {"float32", "float64"}
    seed : int
        Seeds initialisation, dropout masks and shuffling.
    backend : {"native", "reference"}
        The C++ engine, or the NumPy reference (the test oracle).
    """

    def __init__(self, layers: Sequence[Layer], input_dim: int, dtype: Any = "float32",
                 seed: int = 0, backend: str = "native"):
        if isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer)) or input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {input_dim!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("a model needs at least one layer")
        self.input_dim = int(input_dim)
        self.dtype = _dtype_name(dtype)
        self.seed = int(seed)
        self.backend = backend
        self.spec, self.output_dim = build_spec(self.layers, self.input_dim)
        self._np_dtype = np.dtype(self.dtype)
        self._engine = make_engine(self.spec, self.dtype, self.seed, backend)
        init_parameters(self.spec, self._engine.parameters(), self._engine.buffers(), self.seed)
        self.optimizer: Optional[_optim.Optimizer] = None
        self._opt_version = -1
        self.history = None
        self.epochs_trained = 0  # epochs / optimizer steps run by fit (saved in checkpoints)
        self.steps_trained = 0
        self.stop_training = False  # set by a callback to end fit after the current chunk

    # ------------------------------------------------------------------ state
    def parameters(self) -> List[np.ndarray]:
        """Live, writable views of the parameters: ``[W1, b1, W2, b2, ...]``, W shaped
        (in, out). Writing into them changes the model."""
        return self._engine.parameters()

    def buffers(self) -> List[np.ndarray]:
        """Live views of non-trained state (BatchNorm running mean and variance)."""
        return self._engine.buffers()

    @property
    def num_params(self) -> int:
        return int(self._engine.num_params)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_dim={self.input_dim}, output_dim={self.output_dim}, "
                f"layers={len(self.spec)}, params={self.num_params}, dtype={self.dtype}, "
                f"backend={self.backend})")

    # ------------------------------------------------------------------ data
    def _X(self, X: Any, name: str = "X", validate: bool = True) -> np.ndarray:
        """X as an (n, input_dim) array of the model dtype, n >= 1. ``validate``: also scan
        for NaN/Inf (when :func:`get_check_finite`); the engines check again, so the compute
        methods pass False and only callers that change state before the engine call (fit)
        rely on it."""
        arr = _as_float(name, X, self._np_dtype, (2,))
        if arr.shape[1] != self.input_dim:
            raise ValueError(f"{name} must have shape (n, {self.input_dim}), got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty (0 rows)")
        if validate and _CHECK_FINITE[0] and not _all_finite(arr):
            raise ValueError(f"{name} contains NaN or Inf (after conversion to {self.dtype}); "
                             "fastbp.set_check_finite(False) skips this check")
        return arr

    def _y(self, y: Any, loss: str, validate: bool = True) -> np.ndarray:
        """Targets: int64 labels (softmax_cross_entropy, 1-D) or an (n, output_dim) array of
        the model dtype. ``validate``: labels in range, values finite."""
        if loss == "softmax_cross_entropy":
            try:
                arr = np.asarray(y)
            except (ValueError, TypeError) as exc:
                raise TypeError(f"y must be a numeric array: {exc}") from exc
            if arr.ndim == 1:
                if arr.dtype.kind in "iu":
                    if validate and arr.size and (arr.min() < 0 or arr.max() >= self.output_dim):
                        raise ValueError(f"y: labels must be in [0, {self.output_dim}), got min "
                                         f"{arr.min()}, max {arr.max()}")
                    return np.ascontiguousarray(arr, dtype=np.int64)
                if arr.dtype.kind == "b":
                    raise TypeError("y: class labels must be integers, got booleans")
                raise TypeError(
                    f"y: class labels for softmax_cross_entropy must be integers, got dtype "
                    f"{arr.dtype} (pass probabilities as an (n, classes) array)")
        if not isinstance(y, np.ndarray):
            try:
                y = np.asarray(y)
            except (ValueError, TypeError) as exc:
                raise TypeError(f"y must be a numeric array: {exc}") from exc
        if y.dtype.kind == "b":  # as the reference: booleans are not regression targets
            raise TypeError("y must hold real numbers, got booleans")
        arr = _as_float("y", y, self._np_dtype, (1, 2))
        if arr.ndim == 1:
            if self.output_dim != 1:
                raise ValueError(f"y must have shape (n, {self.output_dim}), got {arr.shape}")
            arr = arr.reshape(-1, 1)
        if arr.shape[1] != self.output_dim:
            raise ValueError(f"y must have shape (n, {self.output_dim}), got {arr.shape}")
        if validate and not _all_finite(arr):
            raise ValueError("y contains NaN or Inf")
        return arr

    def _w(self, sample_weight: Any, validate: bool = True) -> Optional[np.ndarray]:
        """sample_weight as a 1-D array of the model dtype. ``validate``: finite, >= 0, with a
        positive sum."""
        if sample_weight is None:
            return None
        w = _as_float("sample_weight", sample_weight, self._np_dtype, (1,))
        if validate and w.size and not (_all_finite(w) and w.min() >= 0 and w.sum() > 0):
            raise ValueError("sample_weight must be finite and >= 0, with a positive sum")
        return w

    @staticmethod
    def _loss_args(loss: str, params: Dict[str, Any]) -> Dict[str, Any]:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        for k in params:
            if k not in _LOSS_PARAMS:
                raise TypeError(f"unexpected loss parameter {k!r}; expected {', '.join(_LOSS_PARAMS)}")
        return params

    def _sync_optimizer(self, optimizer: Any):
        """Configure the engine with ``optimizer`` (None: keep the current one).

        Returns None when nothing changed, else a function that restores the previous
        optimizer and its state (used to undo the change when the call it was made for is
        rejected, so that a rejected call leaves the model as it was)."""
        if optimizer is None:
            if self.optimizer is None:
                raise ValueError("no optimizer: pass optimizer=fb.optim.SGD(...) (or a name)")
            optimizer = self.optimizer
        if self.optimizer is not None and optimizer is self.optimizer and \
                optimizer._version == self._opt_version:
            return None
        opt = _optim.get(optimizer)
        fresh = opt is not self.optimizer
        prev = (self.optimizer, self._opt_version, getattr(self, "_opt_synced", None))
        prev_state = self._engine.optimizer_state() if prev[0] is not None else None
        hyper = opt.hyper()
        self._engine.set_optimizer(opt.name, hyper, fresh)
        self.optimizer = opt
        self._opt_version = opt._version
        self._opt_synced: Any = (opt.name, dict(hyper))

        def undo() -> None:
            if prev[0] is not None:
                name, h = prev[2] if prev[2] is not None else (prev[0].name, prev[0].hyper())
                self._engine.set_optimizer(name, h, True)
                self._engine.set_optimizer_state(prev_state)
            self.optimizer, self._opt_version, self._opt_synced = prev

        return undo

    # ------------------------------------------------------------------ compute
    def predict(self, X: Any) -> np.ndarray:
        """Outputs (logits for classification losses) for X (n, input_dim), inference mode."""
        return self._engine.predict(self._X(X, validate=False))

    def predict_proba(self, X: Any, loss: str = "softmax_cross_entropy") -> np.ndarray:
        """Probabilities: softmax of the outputs (or the sigmoid, for binary_cross_entropy)."""
        z = self.predict(X)
        if loss == "binary_cross_entropy":
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def loss_and_gradients(self, X: Any, y: Any, loss: str = "mse", sample_weight: Any = None,
                           **loss_params: Any) -> Tuple[float, List[np.ndarray]]:
        """Loss and gradients (shaped like ``parameters()``) for one batch, without an update.

        Runs in training mode (dropout active, BatchNorm batch statistics)."""
        self._loss_args(loss, loss_params)
        return self._engine.loss_and_gradients(self._X(X, validate=False),
                                               self._y(y, loss, validate=False), loss,
                                               loss_params, self._w(sample_weight, False))

    def train_step(self, X: Any, y: Any, loss: str = "mse", optimizer: Any = None,
                   sample_weight: Any = None, **loss_params: Any) -> float:
        """One optimizer step on a batch (one native call). Returns the batch loss before the
        update (penalties included)."""
        self._loss_args(loss, loss_params)
        Xa = self._X(X, validate=False)  # the engine validates (and rejects before any change)
        ya = self._y(y, loss, validate=False)
        wa = self._w(sample_weight, validate=False)
        undo = self._sync_optimizer(optimizer)
        try:
            return self._engine.train_step(Xa, ya, loss, loss_params, wa)
        except BaseException:
            if undo is not None:  # rejected: the new optimizer must not stay configured
                undo()
            raise

    def fit(self, X: Any, y: Any, loss: str = "mse", optimizer: Any = None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, sample_weight: Any = None, **kwargs: Any):
        """Train for ``epochs`` over (X, y); see :func:`fastbp.training.fit` for every option
        (``validation_split``, ``validation_data``, ``metrics``, ``callbacks``, ``schedule``,
        ``schedule_per``, ``steps_per_callback``, ``progress``, loss parameters)."""
        from .training import fit

        return fit(self, X, y, loss=loss, optimizer=optimizer, epochs=epochs,
                   batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight, **kwargs)

    # ------------------------------------------------------------------ copies
    def __reduce__(self) -> Tuple[Any, Tuple[bytes]]:
        """Pickle through the checkpoint format (:func:`fastbp.checkpoint.to_bytes`): the
        copy holds everything a checkpoint holds (not ``history``)."""
        from . import checkpoint

        return checkpoint.from_bytes, (checkpoint.to_bytes(self),)

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Sequential":
        from . import checkpoint

        return checkpoint.from_bytes(checkpoint.to_bytes(self))

    def __copy__(self) -> "Sequential":
        """``copy.copy`` is a deep copy: a shallow one would share the engine."""
        return self.__deepcopy__({})

    def save(self, path: Any) -> None:
        """Save architecture, parameters, buffers, optimizer (and its state), epoch count and
        RNG state to ``path`` (an ``.npz``, written atomically); ``fastbp.load(path)`` restores
        it. See :mod:`fastbp.checkpoint`."""
        from .checkpoint import save

        save(self, path)


class MLP(Sequential):
    """A multilayer perceptron from a list of widths.

    ``MLP([64, 128, 10], activation="relu")`` is ``Sequential([Dense(128, "relu"),
    Dense(10)], input_dim=64)``: every hidden layer uses ``activation``, the output layer
    ``output_activation`` (identity: losses take logits).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 output_activation: str = "identity", dtype: Any = "float32", seed: int = 0,
                 backend: str = "native", init: Optional[str] = None):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output width, got {sizes!r}")
        layers: List[Layer] = [Dense(w, activation=activation, init=init) for w in sizes[1:-1]]
        layers.append(Dense(sizes[-1], activation=output_activation, init=init))
        self.sizes = sizes
        super().__init__(layers, input_dim=sizes[0], dtype=dtype, seed=seed, backend=backend)
