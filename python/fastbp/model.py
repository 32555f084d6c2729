"""The public model classes: ``Sequential`` and ``MLP``, thin over an engine."""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import checkpoint as _checkpoint
from . import optim as _optim
from . import training as _training
from ._backend import BACKENDS, make_engine
from ._data import as_model_array, as_target, check_loss_kwargs
from .layers import Dense, Layer, build_spec, from_spec, init_parameters
from .registry import loss_takes_labels, resolve_loss, resolve_loss_labels

__all__ = ["Sequential", "MLP", "from_config", "load", "to_bytes", "from_bytes", "set_check_finite",
           "get_check_finite"]

_DTYPES = {"float32": np.float32, "float64": np.float64}


def _dtype_name(dtype: Any) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in _DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return name


# The process-wide default of check_finite lives in the native module (one store):
# NaN/Inf in X is rejected unless fastbp.set_check_finite(False); the reference backend, the
# test oracle, always checks.


# Set by fastbp.search (its batched searches): ``model.engine`` returns hook(model), the
# model's engine or, in a search's worker thread, a stand-in whose ``fit_epoch`` trains the
# epoch batched with other models' epochs (with the results the engine's own call gives).
_ENGINE_HOOK: list = [None]


def set_check_finite(on: bool) -> None:
    """Whether ``predict``/``train_step``/``loss_and_gradients``/``fit`` reject inputs ``X``
    holding NaN or Inf with a ``ValueError`` (default ``True``).

    ``False`` skips the O(n*d) scan: non-finite inputs then propagate into the outputs (and,
    when training, into the parameters). Targets and sample weights are always checked.
    The reference backend always checks. See docs/RELIABILITY.md."""
    from . import _core

    _core.set_check_finite(bool(on))


def get_check_finite() -> bool:
    """The current :func:`set_check_finite` setting."""
    from . import _core

    return bool(_core.get_check_finite())


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_level() -> int:
    """warnings.warn's stacklevel of the first frame outside fastbp (the user's call)."""
    level, frame = 1, sys._getframe(1)  # type: Tuple[int, Any]
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        level, frame = level + 1, frame.f_back
    return level


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
        #: the last ReduceLROnPlateau state fit recorded (resumed by the next fit; saved)
        self.plateau_state: Optional[Dict[str, Any]] = None
        self._opt_version = -1
        self._fresh_repeats, self._fresh_warned = 0, False  # (_note_fresh)
        self.history = None
        self.epochs_trained = 0  # epochs / optimizer steps run by fit (saved in checkpoints)
        self.steps_trained = 0
        self.stop_training = False  # set by a callback to end fit after the current chunk

    # ------------------------------------------------------------------ state
    @property
    def engine(self) -> Any:
        """The backend engine (``fastbp._core.Network32/64`` or ``fastbp.reference.Engine``):
        the contract of docs/ENGINE.md, for the training loop, metrics and tools."""
        hook = _ENGINE_HOOK[0]
        return self._engine if hook is None else hook(self)

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
    def _X(self, X: Any) -> Any:
        """X converted to the model dtype (checked by the engine that receives it)."""
        return as_model_array(X, self._np_dtype)

    def _y(self, y: Any, loss: str) -> Any:
        """Targets converted for ``loss`` (checked by the engine that receives them)."""
        return as_target(y, self._np_dtype, loss_takes_labels(loss))

    def _w(self, sample_weight: Any) -> Any:
        """sample_weight converted to the model dtype, or None."""
        if sample_weight is None:
            return None
        return as_model_array(sample_weight, self._np_dtype, kinds="fiu")

    def set_optimizer(self, optimizer: Any, undoable: bool = True):
        """Configure the engine with ``optimizer`` (None: keep the current one).

        Returns None when nothing changed or ``undoable`` is False, else a function that
        restores the previous optimizer and its state (used to undo the change when the call
        it was made for is rejected, so that a rejected call leaves the model as it was). The
        undo holds a copy of the optimizer state: callers that never undo pass
        ``undoable=False`` and skip that copy (a per-epoch schedule, an ensemble's members)."""
        if optimizer is None and self.optimizer is None:
            raise ValueError("no optimizer: pass optimizer=fb.optim.SGD(...) (or a name)")
        if self._keeps_optimizer(optimizer):
            return None
        if optimizer is None or _optim.continues(optimizer, self.optimizer):
            optimizer = self.optimizer  # (changed since the engine took it: synced below)
        opt = _optim.get(optimizer)
        fresh = opt is not self.optimizer
        self._note_fresh(opt, fresh)
        prev = (self.optimizer, self._opt_version, getattr(self, "_opt_synced", None))
        prev_state = (self._engine.optimizer_state() if undoable and prev[0] is not None
                      else None)
        hyper = opt.hyper()
        self._engine.set_optimizer(opt.name, hyper, fresh)
        self.optimizer = opt
        self._opt_version = opt._version
        self._opt_synced: Any = (opt.name, dict(hyper))
        if not undoable:
            return None

        def undo() -> None:
            if prev[0] is not None:
                name, h = prev[2] if prev[2] is not None else (prev[0].name, prev[0].hyper())
                self._engine.set_optimizer(name, h, True)
                self._engine.set_optimizer_state(prev_state)
            self.optimizer, self._opt_version, self._opt_synced = prev

        return undo

    def _keeps_optimizer(self, optimizer: Any) -> bool:
        """Whether a call with ``optimizer`` (an object, a name or None) trains with the
        model's optimizer as the engine has it: None, the same object or the name of its kind
        (:func:`fastbp.optim.continues`), unchanged since. Then nothing is to configure."""
        cur = self.optimizer
        return (cur is not None and cur._version == self._opt_version
                and (optimizer is None or optimizer is cur or _optim.continues(optimizer, cur)))

    def _note_fresh(self, opt: Any, fresh: bool) -> None:
        """Warn (once per model) when a third new optimizer in a row has the kind and the
        hyper-parameters of the one it replaces: the sign of ``train_step(...,
        optimizer=fb.optim.Adam(...))`` in a loop, which restarts the state at every call."""
        cur = self.optimizer
        same = (fresh and cur is not None and type(opt) is type(cur)
                and opt.hyper() == cur.hyper())
        self._fresh_repeats = self._fresh_repeats + 1 if same else 0
        if self._fresh_repeats == 2 and not self._fresh_warned:
            self._fresh_warned = True
            warnings.warn(
                f"a new {type(opt).__name__} with the same hyper-parameters replaced the "
                "model's optimizer again: each new optimizer object starts from fresh state "
                "(moments and step count). To continue, pass the same object, its name "
                f"({opt.name!r}) or None.", UserWarning, stacklevel=_caller_level())

    # ------------------------------------------------------------------ compute
    def predict(self, X: Any) -> np.ndarray:
        """Outputs (logits for classification losses) for X (n, input_dim), inference mode."""
        return self._engine.predict(self._X(X))

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
        loss = resolve_loss(loss)
        check_loss_kwargs("loss_and_gradients", loss_params)
        return self._engine.loss_and_gradients(self._X(X), self._y(y, loss), loss, loss_params,
                                               self._w(sample_weight))

    def train_step(self, X: Any, y: Any, loss: str = "mse", optimizer: Any = None,
                   sample_weight: Any = None, comm: Any = None, **loss_params: Any) -> float:
        """One optimizer step on a batch (one native call). Returns the batch loss before the
        update (penalties included).

        ``optimizer``: an Optimizer, a name, or None (the model's). A name continues the
        model's optimizer when it is of that kind, so a loop of
        ``train_step(X, y, optimizer="adam")`` keeps Adam's moments; another kind, or an
        Optimizer object other than the model's, starts from fresh state.

        ``comm`` (an mpi4py communicator): data-parallel step, each rank passing its own rows;
        the loss and the update are those of the concatenated batch (:mod:`fastbp.distributed`)."""
        if comm is not None:
            from .distributed import train_step

            return train_step(self, X, y, loss, optimizer, sample_weight, comm, loss_params)
        # (the per-step path of every Python training loop: _X, _y and _w inlined, and
        # set_optimizer only when the optimizer changes -- ~0.4 us of a 2 us step of a tiny
        # network)
        loss, labels = resolve_loss_labels(loss)
        if loss_params:
            check_loss_kwargs("train_step", loss_params)
        dt = self._np_dtype
        Xa, ya = as_model_array(X, dt), as_target(y, dt, labels)
        wa = None if sample_weight is None else as_model_array(sample_weight, dt, kinds="fiu")
        if self._keeps_optimizer(optimizer):
            return self._engine.train_step(Xa, ya, loss, loss_params, wa)
        undo = self.set_optimizer(optimizer)
        try:
            return self._engine.train_step(Xa, ya, loss, loss_params, wa)
        except BaseException:
            if undo is not None:  # rejected: the new optimizer must not stay configured
                undo()
            raise

    def fit(self, X: Any, y: Any, loss: str = "mse", optimizer: Any = None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, sample_weight: Any = None,
            comm: Any = None, **kwargs: Any):
        """Train for ``epochs`` over (X, y); see :func:`fastbp.training.fit` for every option
        (``validation_split``, ``validation_data``, ``metrics``, ``callbacks``, ``schedule``,
        ``schedule_per``, ``steps_per_callback``, ``progress``, loss parameters).

        ``comm`` (an mpi4py communicator): data-parallel training, (X, y) being this rank's
        shard and ``batch_size`` per rank (:mod:`fastbp.distributed`)."""
        if comm is not None:
            from .distributed import fit as distributed_fit

            return distributed_fit(self, X, y, comm, loss=loss, optimizer=optimizer,
                                   epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                                   sample_weight=sample_weight, **kwargs)
        return _training.fit(self, X, y, loss, optimizer, epochs, batch_size, shuffle,
                             sample_weight, **kwargs)

    # ------------------------------------------------------------------ copies
    def __reduce__(self) -> Tuple[Any, Tuple[bytes]]:
        """Pickle through the checkpoint format (:func:`fastbp.checkpoint.dumps`): the copy
        holds everything a checkpoint holds (not ``history``)."""
        return from_bytes, (to_bytes(self),)

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Sequential":
        return from_bytes(to_bytes(self))

    def __copy__(self) -> "Sequential":
        """``copy.copy`` is a deep copy: a shallow one would share the engine."""
        return self.__deepcopy__({})

    def save(self, path: Any) -> None:
        """Save architecture, parameters, buffers, optimizer (and its state), epoch count and
        RNG state to ``path``, written atomically; ``fastbp.load(path)`` restores it.

        A path ending in ``.safetensors`` is written as a safetensors file with PyTorch's
        state_dict names (:mod:`fastbp.io.safetensors`), any other as an ``.npz`` checkpoint
        (:mod:`fastbp.checkpoint`)."""
        if os.fsdecode(path).endswith(".safetensors"):
            from .io.safetensors import save as save_safetensors

            save_safetensors(self, path)
            return
        _checkpoint.write(path, self.get_config(), self.state_dict())

    def to_onnx(self, path: Any, opset: Optional[int] = None) -> None:
        """Export the inference graph (``predict``) to an ONNX file with a dynamic batch
        dimension; see :func:`fastbp.io.onnx.to_onnx`. Needs the ``onnx`` package."""
        from .io.onnx import to_onnx

        to_onnx(self, path, opset=opset)

    def to_torch(self) -> Any:
        """An equivalent ``torch.nn.Sequential`` (evaluation mode, torch layouts); see
        :func:`fastbp.io.torch.to_torch`. Needs PyTorch."""
        from .io.torch import to_torch

        return to_torch(self)

    # ------------------------------------------------------------------ config and state
    def get_config(self) -> Dict[str, Any]:
        """The architecture as a JSON-able dict: ``class``, ``spec``, ``input_dim``, ``dtype``,
        ``seed``, ``backend`` (and ``sizes`` for an MLP). :func:`from_config` rebuilds it."""
        config: Dict[str, Any] = {
            "class": "MLP" if isinstance(self, MLP) else "Sequential",
            "spec": self.spec, "input_dim": int(self.input_dim), "dtype": self.dtype,
            "seed": int(self.seed), "backend": self.backend}
        if isinstance(self, MLP):
            config["sizes"] = [int(v) for v in self.sizes]
        return config

    def state_dict(self) -> Dict[str, Any]:
        """Copies of everything training changes: ``arena`` (the flat parameters),
        ``buffers``, ``optimizer`` (name, hyper-parameters, ``initial_lr``, ``step`` and its
        state arrays, or None), ``rng_state``, ``epochs_trained``, ``steps_trained`` and
        ``plateau_state``. :meth:`load_state_dict` restores it."""
        eng = self._engine
        opt: Optional[Dict[str, Any]] = None
        if self.optimizer is not None:
            # (the engine holds exactly its hyper-parameters)
            self.set_optimizer(self.optimizer, undoable=False)
            st = eng.optimizer_state()
            opt = {"name": self.optimizer.name, "hyper": self.optimizer.hyper(),
                   "initial_lr": getattr(self.optimizer, "initial_lr", None),
                   "step": int(st["step"]),
                   "state": {k: np.array(v, copy=True) for k, v in st.items() if k != "step"}}
        return {"arena": np.array(eng.arena(), copy=True),
                "buffers": [np.array(b, copy=True) for b in eng.buffers()],
                "optimizer": opt, "rng_state": [int(v) for v in eng.rng_state()],
                "epochs_trained": int(self.epochs_trained),
                "steps_trained": int(self.steps_trained),
                "plateau_state": self.plateau_state}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`. Shapes and dtypes are checked before anything is
        written (ValueError), so a rejected state leaves the model as it was."""
        eng = self._engine
        arena, bufs = eng.arena(), eng.buffers()
        src = np.asarray(state["arena"])
        if src.shape != arena.shape or src.dtype != arena.dtype:
            raise ValueError(f"parameters have shape {src.shape} dtype {src.dtype}, the "
                             f"architecture needs {arena.shape} {arena.dtype}")
        if len(state["buffers"]) != len(bufs) or any(
                np.shape(a) != b.shape for a, b in zip(state["buffers"], bufs)):
            raise ValueError("buffers are missing or have the wrong shapes")
        oh = state.get("optimizer")
        opt = None if oh is None else _optim.from_config(oh["name"], oh["hyper"])
        arena[...] = src
        for dst, a in zip(bufs, state["buffers"]):
            dst[...] = a
        if oh is not None and opt is not None:
            if oh.get("initial_lr") is not None:
                opt.initial_lr = float(oh["initial_lr"])
            self.set_optimizer(opt, undoable=False)
            eng.set_optimizer_state(dict(oh["state"], step=int(oh["step"])))
        eng.set_rng_state(*(int(v) for v in state["rng_state"]))
        self.epochs_trained = int(state.get("epochs_trained", 0))
        self.steps_trained = int(state.get("steps_trained", 0))
        if state.get("plateau_state"):
            self.plateau_state = dict(state["plateau_state"])


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


def from_config(config: Dict[str, Any], backend: Optional[str] = None) -> Sequential:
    """Rebuild a freshly initialised model from :meth:`Sequential.get_config` (``backend``
    overrides the saved one). ValueError when the config is malformed or its spec cannot be
    rebuilt exactly."""
    try:
        layers = from_spec(config["spec"])
        kw = dict(dtype=config["dtype"], seed=int(config["seed"]),
                  backend=backend or config["backend"])
        model: Sequential
        if config.get("class") == "MLP":
            spec = config["spec"]
            model = MLP(list(config["sizes"]), activation=spec[0].get("activation", "relu"),
                        output_activation=spec[-1].get("activation", "identity"),
                        init=spec[0].get("init"), **kw)
        else:
            model = Sequential(layers, input_dim=int(config["input_dim"]), **kw)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise ValueError(f"malformed model config ({type(e).__name__}: {e})") from None
    if model.spec != config["spec"] or model.input_dim != config.get("input_dim"):
        raise ValueError("the rebuilt layer spec differs from the saved one")
    return model


def to_bytes(model: Sequential) -> bytes:
    """The checkpoint of ``model`` as bytes (what ``model.save`` writes)."""
    return _checkpoint.dumps(model.get_config(), model.state_dict())


def from_bytes(data: bytes, backend: Optional[str] = None) -> Sequential:
    """The model held by checkpoint bytes (validated as :func:`load` validates a file);
    unpickling and deep copies use it."""
    return _restore(*_checkpoint.loads(data), name="<bytes>", backend=backend)


def _restore(config: Dict[str, Any], state: Dict[str, Any], name: str,
             backend: Optional[str]) -> Sequential:
    try:
        model = from_config(config, backend)
        model.load_state_dict(state)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{name!r} is not a valid fastbp checkpoint: bad header "
                         f"({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise ValueError(f"{name!r} is not a valid fastbp checkpoint: {e}") from None
    return model


def load(path: Any, backend: Optional[str] = None) -> Sequential:
    """Load a model saved by ``model.save``: an ``.npz`` checkpoint or a ``.safetensors``
    file (see :mod:`fastbp.io.safetensors`).

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"native", "reference"}, optional
        Override the saved backend (e.g. load a native model into the NumPy reference).

    Returns
    -------
    Sequential or MLP
        With its parameters, buffers, optimizer (``model.optimizer``, state included), epoch
        and step counts and RNG state restored: ``model.fit(...)`` without an optimizer
        continues the saved training exactly.

    Raises
    ------
    ValueError
        If the file is truncated, corrupted, not a fastbp checkpoint, or of an unsupported
        format version.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    path = os.fspath(path)
    from .io.safetensors import is_safetensors
    from .io.safetensors import load as load_safetensors

    if is_safetensors(path):  # told apart by content, not by name
        return load_safetensors(path, backend=backend)
    return _restore(*_checkpoint.read(path), name=path, backend=backend)
