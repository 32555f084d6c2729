"""Ensembles: K models of one architecture trained together, one native call per epoch.

``fb.Ensemble([64, 128, 10], n_models=16, seeds=range(16))`` holds 16 ordinary models
(``ens.models[k]`` is an :class:`fastbp.MLP` or :class:`fastbp.Sequential`). ``ens.fit`` trains
every member for an epoch in one call into the engine (``_core.ensemble_fit_epoch``: the
members run in parallel over the cores with the GIL released, each on its own rows of the
shared data); the reference backend loops over the members and is the test oracle.

The member contract: member k of ``ens.fit(X, y, subsets=S, optimizer=O, l2=L, ...)`` ends
with exactly the parameters, optimizer state and history that
``fb.MLP(..., seed=seeds[k]).fit(X[S[k]], y[S[k]], optimizer=O_k, l2=L[k], ...)`` gives,
where ``O_k`` takes the k-th value of every per-model hyper-parameter
(:meth:`fastbp.optim.Optimizer.split`). Every member shuffles its own rows with its own seed.
"""
from __future__ import annotations

import copy
import json
import numbers
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import callbacks as _cb
from . import optim as _optim
from . import schedules as _sched
from .layers import Dropout, Layer, Residual, spec_has
from .metrics import METRICS, check_metrics, evaluate_outputs, parameter_names
from .model import MLP, Sequential, from_bytes, to_bytes
from .registry import loss_param_names, resolve_loss
from .training import History, _Data, _int_arg, _set_lr, _split

__all__ = ["Ensemble", "load_ensemble"]

FORMAT = "fastbp-ensemble"
FORMAT_VERSION = 1


def _per_model_floats(name: str, value: Any, k: int, low: float = 0.0) -> np.ndarray:
    """A scalar or one value per model, as a float64 array of length k (each finite, >= low)."""
    if isinstance(value, (list, tuple, np.ndarray, range)):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 1 or arr.shape[0] != k:
            raise ValueError(f"{name} must be a number or hold one value per model ({k}), "
                             f"got {len(value)} values")
    else:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number or a sequence, got {value!r}")
        arr = np.full(k, float(value))
    if not (np.all(np.isfinite(arr)) and np.all(arr >= low)):
        raise ValueError(f"{name} must be finite and >= {low}, got {value!r}")
    return arr


def _member_layers(layers: Sequence[Layer], rate: float | None) -> list[Layer]:
    """Deep copies of ``layers`` with every Dropout rate set to ``rate`` (None: unchanged)."""
    out = []
    for layer in layers:
        layer = copy.deepcopy(layer)
        if rate is not None and isinstance(layer, Dropout):
            layer = Dropout(rate)
        elif isinstance(layer, Residual):
            layer.layers = _member_layers(layer.layers, rate)
        out.append(layer)
    return out


def _check_subsets(subsets: Any, n: int, k: int) -> list[np.ndarray]:
    """One sorted-or-not int64 index array per model: non-empty, in [0, n), no duplicates."""
    if subsets is None:
        rows = np.arange(n, dtype=np.int64)
        return [rows] * k
    if isinstance(subsets, np.ndarray) and subsets.ndim == 2:
        subsets = list(subsets)
    if not isinstance(subsets, (list, tuple)):
        raise TypeError("subsets must be a list with one index array per model")
    if len(subsets) != k:
        raise ValueError(f"subsets must hold one index array per model ({k}), got "
                         f"{len(subsets)}")
    out = []
    for i, s in enumerate(subsets):
        a = np.asarray(s)
        if a.size == 0 and a.ndim == 1:
            raise ValueError(f"subsets[{i}] is empty: every model needs at least one row")
        if a.dtype.kind not in "iu" or a.ndim != 1:
            raise TypeError(f"subsets[{i}] must be a 1-D array of integer row indices, got "
                            f"dtype {a.dtype} shape {a.shape}")
        if a.min() < 0 or a.max() >= n:
            raise ValueError(f"subsets[{i}] holds indices out of range [0, {n}): min "
                             f"{a.min()}, max {a.max()}")
        if np.unique(a).size != a.size:
            raise ValueError(f"subsets[{i}] holds duplicate indices (a row may appear once; "
                             "repeat rows in X, or use sample_weight, for a bootstrap)")
        out.append(np.ascontiguousarray(a, dtype=np.int64))
    return out


def _member_callbacks(callbacks: Any, k: int) -> list[list[_cb.Callback]]:
    """Callbacks per member: a list of K lists, or one list whose callbacks are copied per
    member (so that an EarlyStopping watches every member on its own)."""
    callbacks = list(callbacks or [])
    per_member = len(callbacks) == k and k > 0 and all(isinstance(c, (list, tuple))
                                                       for c in callbacks)
    lists = [list(c) for c in callbacks] if per_member else [
        [copy.deepcopy(cb) for cb in callbacks] for _ in range(k)]
    for cbs in lists:
        for cb in cbs:
            if not isinstance(cb, _cb.Callback):
                raise TypeError("callbacks must be fastbp.callbacks.Callback instances (or "
                                f"one list of them per model), got {type(cb).__name__}")
    return lists


class Ensemble:
    """K models of one architecture, trained together.

    Parameters
    ----------
    layers : sequence of int or sequence of Layer
        Widths ``[in, hidden..., out]`` (members are :class:`fastbp.MLP`), or layers as for
        :class:`fastbp.Sequential` (then ``input_dim`` is required).
    n_models : int, optional
        Number of members K (default: ``len(seeds)``, or 1).
    input_dim : int, optional
        Input width, with a list of layers.
    activation, output_activation, init : str
        As for :class:`fastbp.MLP` (widths only).
    dtype : {"float32", "float64"}
    seeds : sequence of int, optional
        One seed per member (default ``range(K)``): initialisation, shuffling, dropout.
    backend : {"native", "reference"}
    dropout : float or sequence of float, optional
        Overrides the rate of every Dropout layer: one rate, or one per member.

    Attributes
    ----------
    models : list
        The members, ordinary fastbp models (parameters, optimizer and its state, history).
    history : list of History
        One per member, from the last ``fit``.
    """

    def __init__(self, layers: Sequence[Any], n_models: int | None = None, *,
                 input_dim: int | None = None, activation: str = "relu",
                 output_activation: str = "identity", dtype: Any = "float32",
                 seeds: Sequence[int] | None = None, backend: str = "native",
                 init: str | None = None, dropout: Any = None):
        layers = list(layers)
        if seeds is not None:
            seeds = [int(s) if isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                     else s for s in seeds]
        if n_models is None:
            n_models = len(seeds) if seeds is not None else 1
        k = _int_arg("n_models", n_models, 1)
        if seeds is None:
            seeds = list(range(k))
        if len(seeds) != k:
            raise ValueError(f"seeds must hold one seed per model ({k}), got {len(seeds)}")
        rates: list[float | None] = [None] * k
        if dropout is not None:
            rates = [float(r) for r in _per_model_floats("dropout", dropout, k)]
        is_layers = bool(layers) and all(isinstance(x, Layer) for x in layers)
        if is_layers:
            if input_dim is None:
                raise ValueError("input_dim is required with a list of layers")
            self.models: list[Any] = [
                Sequential(_member_layers(layers, rates[i]), input_dim=input_dim, dtype=dtype,
                           seed=seeds[i], backend=backend) for i in range(k)]
        else:
            if dropout is not None:
                raise ValueError("dropout needs a list of layers holding Dropout layers")
            self.models = [MLP(layers, activation=activation, output_activation=output_activation,
                               dtype=dtype, seed=seeds[i], backend=backend, init=init)
                           for i in range(k)]
        self._set_common()
        self.history: list[History] | None = None

    def _set_common(self) -> None:
        m0 = self.models[0]
        self.seeds = [m.seed for m in self.models]
        self.dtype, self.backend = m0.dtype, m0.backend
        self.input_dim, self.output_dim = m0.input_dim, m0.output_dim

    @property
    def n_models(self) -> int:
        """The number of members K."""
        return len(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __copy__(self) -> "Ensemble":
        """``copy.copy`` is a deep copy: a shallow one would share the members' engines.
        (``pickle`` and ``copy.deepcopy`` copy each member through the checkpoint format.)"""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        return (f"Ensemble(n_models={self.n_models}, input_dim={self.input_dim}, "
                f"output_dim={self.output_dim}, dtype={self.dtype}, backend={self.backend})")

    # ------------------------------------------------------------------ inference
    def predict(self, X: Any) -> np.ndarray:
        """Every member's outputs (logits for classification losses): shape (K, n, out)."""
        Xa = self.models[0]._X(X)
        return np.stack([m.predict(Xa) for m in self.models])

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any, loss: str = "mse", optimizer: Any = None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, sample_weight: Any = None, *,
            subsets: Any = None, validation_data: Any = None,
            metrics: Sequence[str] | None = None, callbacks: Any = None,
            schedule: Any = None, schedule_per: str = "epoch",
            **loss_params: Any) -> list[History]:
        """Train every member for ``epochs`` epochs, one native call per epoch.

        Parameters
        ----------
        X, y : array_like
            The shared data, as for :meth:`fastbp.Sequential.fit`.
        loss : str
            Loss name.
        optimizer : Optimizer or str, optional
            Every hyper-parameter a scalar or one value per model (``Adam(lr=[...])``); a new
            optimizer starts every member from fresh state. The same object again, unchanged,
            continues the members' optimizers, as does a name (``"adam"``) when they are all
            of that kind, as for one model (an object changed since, e.g. a new ``lr``, is
            split afresh). Default: continue with each member's optimizer.
        epochs, batch_size, shuffle, sample_weight
            As for ``fit``; ``sample_weight`` has one weight per row of X.
        subsets : list of array_like, optional
            One array of row indices per model: the rows it trains on (no duplicates).
            Default: every model trains on every row.
        validation_data : tuple, optional
            ``(X_val, y_val[, w_val])``, evaluated for every member after each epoch.
        metrics : list of str, optional
            As for ``fit`` (on each member's training rows and the validation data).
        callbacks : list, optional
            Callbacks copied for every member (an ``EarlyStopping`` stops each member on its
            own; a stopped member costs no more compute), or one list per model.
        schedule, schedule_per
            A learning-rate schedule applied to every member relative to its own initial
            learning rate (a ``ReduceLROnPlateau`` watches every member on its own).
        **loss_params
            ``delta`` (scalar), ``l1``, ``l2`` (scalars or one value per model).

        Returns
        -------
        list of History
            One per member (also ``ens.history`` and ``ens.models[k].history``).
        """
        plan = self._plan(X, y, loss, optimizer, epochs, batch_size, sample_weight, subsets,
                          validation_data, metrics, callbacks, schedule, schedule_per,
                          loss_params)
        self._apply_optimizers(plan)
        histories = self._setup_callbacks(plan)
        try:
            for _ in range(plan["epochs"]):
                active = [i for i in range(self.n_models) if not self.models[i].stop_training]
                if not active:
                    break
                self._epoch(plan, active, shuffle)
        finally:
            for cbs in plan["cbs"]:
                for cb in cbs:
                    cb.on_train_end({})
        for m, h in zip(self.models, histories):
            m.history = h
        self.history = histories
        return histories

    # ---- validation (nothing changes before it has passed)
    def _plan(self, X, y, loss, optimizer, epochs, batch_size, sample_weight, subsets,
              validation_data, metrics, callbacks, schedule, schedule_per, loss_params):
        k = self.n_models
        m0 = self.models[0]
        for key in loss_params:
            if key not in loss_param_names():
                raise TypeError(f"fit() got an unexpected keyword argument {key!r} (loss "
                                f"parameters are {', '.join(loss_param_names())})")
        loss = resolve_loss(loss)
        delta = float(loss_params.get("delta", 1.0))
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"delta must be a finite number > 0, got {delta!r}")
        l1 = _per_model_floats("l1", loss_params.get("l1", 0.0), k)
        l2 = _per_model_floats("l2", loss_params.get("l2", 0.0), k)
        epochs = _int_arg("epochs", epochs, 0)
        batch_size = _int_arg("batch_size", batch_size, 1)
        if schedule_per not in ("epoch", "step"):
            raise ValueError(f"schedule_per must be 'epoch' or 'step', got {schedule_per!r}")
        if schedule is not None and not isinstance(schedule, (_sched.Schedule,
                                                              _sched.ReduceLROnPlateau)):
            raise TypeError("schedule must be a fastbp.schedules schedule, got "
                            + type(schedule).__name__)
        plateau = isinstance(schedule, _sched.ReduceLROnPlateau)
        if plateau and schedule_per != "epoch":
            raise ValueError("ReduceLROnPlateau works per epoch: use schedule_per='epoch'")
        names = check_metrics(metrics, loss)
        data = _Data.convert(m0, X, y, sample_weight, loss, {"delta": delta})
        Xa, ya, wa = data.X, data.y, data.w
        n = Xa.shape[0]
        _, val = _split(m0, data, 0.0, validation_data, loss, {"delta": delta})
        subs = _check_subsets(subsets, n, k)
        if wa is not None:
            for i, s in enumerate(subs):
                if not wa[s].sum() > 0:
                    raise ValueError(f"sample_weight is zero on every row of subsets[{i}]")
        if spec_has(m0.spec, "batchnorm"):
            for i, s in enumerate(subs):
                bs = min(batch_size, s.size)
                if bs < 2 or s.size % bs == 1:
                    raise ValueError(f"batchnorm: model {i}'s last mini-batch would hold 1 "
                                     "sample; choose another batch_size")
        opts = self._optimizers(optimizer)
        source = optimizer if isinstance(optimizer, _optim.Optimizer) else None
        cbs = _member_callbacks(callbacks, k)
        scheds = [None if schedule is None else copy.deepcopy(schedule) for _ in range(k)]
        return {"X": Xa, "y": ya, "w": wa, "val": val, "subsets": subs, "loss": loss,
                "delta": delta, "l1": l1, "l2": l2, "epochs": epochs, "batch_size": batch_size,
                "metrics": names, "opts": opts, "source": source, "cbs": cbs, "scheds": scheds,
                "plateau": plateau, "per_step": schedule is not None and not plateau
                and schedule_per == "step"}

    def _optimizers(self, optimizer: Any) -> list[_optim.Optimizer | None]:
        k = self.n_models
        if optimizer is None:
            if any(m.optimizer is None for m in self.models):
                raise ValueError("fit: the members have no optimizer yet; pass optimizer= "
                                 "(e.g. fb.optim.Adam(lr=[1e-3, 3e-3, ...]) or 'adam')")
            return [None] * k
        if all(_optim.continues(optimizer, m.optimizer) for m in self.models):
            return [None] * k  # (the members' kind, by name: as for one model)
        last = getattr(self, "_source_opt", None)
        if (last is not None and last[0] is optimizer and last[1] == optimizer._version
                and all(type(m.optimizer) is type(optimizer) for m in self.models)):
            return [None] * k  # the object the members' optimizers were split from, unchanged
        if isinstance(optimizer, str):
            optimizer = _optim.get(optimizer)
        if not isinstance(optimizer, _optim.Optimizer):
            raise TypeError("optimizer must be a fastbp.optim.Optimizer or a name, got "
                            f"{type(optimizer).__name__}")
        return list(optimizer.split(k))

    # ---- state changes
    def _apply_optimizers(self, plan: dict[str, Any]) -> None:
        if any(o is not None for o in plan["opts"]):  # new optimizers: remember their source
            source = plan["source"]  # (an object: passed again unchanged, it continues them)
            self._source_opt = None if source is None else (source, source._version)
        for m, opt, sched in zip(self.models, plan["opts"], plan["scheds"]):
            m.set_optimizer(opt, undoable=False)
            if sched is not None and getattr(m.optimizer, "initial_lr", None) is None:
                m.optimizer.initial_lr = float(m.optimizer.lr)
                m.set_optimizer(m.optimizer, undoable=False)
            if isinstance(sched, _sched.ReduceLROnPlateau) and getattr(m, "plateau_state",
                                                                       None):
                saved = m.plateau_state
                if saved.get("monitor") == sched.monitor and saved.get("mode") == sched.mode:
                    sched.load_state_dict(saved)

    def _setup_callbacks(self, plan: dict[str, Any]) -> list[History]:
        histories = []
        bs = plan["batch_size"]
        for i, m in enumerate(self.models):
            n = plan["subsets"][i].size
            h = History()
            h.param_names = parameter_names(m.spec)
            params = {"epochs": plan["epochs"], "steps": -(-n // bs), "batch_size": bs,
                      "samples": n, "initial_epoch": m.epochs_trained,
                      "metrics": plan["metrics"], "do_validation": plan["val"] is not None}
            h.params = params
            plan["cbs"][i] = [h] + plan["cbs"][i]
            for cb in plan["cbs"][i]:
                cb.set_model(m)
                cb.set_params(params)
            m.stop_training = False
            histories.append(h)
        for cbs in plan["cbs"]:
            for cb in cbs:
                cb.on_train_begin({})
        return histories

    def _member_lrs(self, plan: dict[str, Any], i: int) -> tuple[np.ndarray | None, float]:
        """Set member i's learning rate for this epoch; returns (per-step rates, first rate)."""
        m, sched = self.models[i], plan["scheds"][i]
        opt = m.optimizer
        lrs = None
        if sched is not None and not plan["plateau"]:
            if plan["per_step"]:
                steps = -(-plan["subsets"][i].size // plan["batch_size"])
                lrs = np.ascontiguousarray(sched.lrs(m.steps_trained, steps, opt.initial_lr),
                                           dtype=np.float64)
            else:
                _set_lr(m, opt, sched.lr(m.epochs_trained, opt.initial_lr))
        return lrs, float(lrs[0]) if lrs is not None else float(opt.lr)

    def _epoch(self, plan: dict[str, Any], active: list[int], shuffle: bool) -> None:
        epochs = {}
        lrs: dict[int, Any] = {}
        lr0 = {}
        for i in active:
            m = self.models[i]
            epochs[i] = m.epochs_trained
            for cb in plan["cbs"][i]:
                cb.on_epoch_begin(epochs[i], {})
            lrs[i], lr0[i] = self._member_lrs(plan, i)
        t0 = time.perf_counter()
        values = self._train(plan, active, [lrs[i] for i in active], shuffle)
        elapsed = time.perf_counter() - t0
        for i, value in zip(active, values):
            self._end_epoch(plan, i, epochs[i], float(value), lrs[i], lr0[i], elapsed)

    def _train(self, plan: dict[str, Any], active: list[int], lrs: list[Any],
               shuffle: bool) -> np.ndarray | list[float]:
        """One epoch of the active members: one native call, or the reference's loop."""
        subs = [plan["subsets"][i] for i in active]
        bs = plan["batch_size"]
        X, y, w = plan["X"], plan["y"], plan["w"]
        if self.backend == "native":
            from . import _core

            return _core.ensemble_fit_epoch(
                [self.models[i].engine for i in active], X, y, plan["loss"], plan["delta"],
                np.ascontiguousarray(plan["l1"][active]), np.ascontiguousarray(plan["l2"][active]),
                w, subs, bs, bool(shuffle), lrs)
        out = []
        for i, s, lr in zip(active, subs, lrs):
            lp = {"delta": plan["delta"], "l1": float(plan["l1"][i]),
                  "l2": float(plan["l2"][i])}
            out.append(self.models[i].engine.fit_epoch(
                X[s], y[s], plan["loss"], lp, None if w is None else w[s], bs, bool(shuffle),
                lr))
        return out

    def _end_epoch(self, plan: dict[str, Any], i: int, epoch: int, value: float,
                   lrs: np.ndarray | None, lr0: float, elapsed: float) -> None:
        m = self.models[i]
        opt = m.optimizer
        steps = -(-plan["subsets"][i].size // plan["batch_size"])
        m.steps_trained += steps
        if lrs is not None:
            _set_lr(m, opt, float(lrs[-1]))
        m.epochs_trained += 1
        loss_params = {"delta": plan["delta"], "l1": float(plan["l1"][i]),
                       "l2": float(plan["l2"][i])}
        logs: dict[str, Any] = {"loss": value}
        if plan["metrics"]:
            s = plan["subsets"][i]
            out = m.predict(plan["X"][s])
            for name in plan["metrics"]:
                logs[name] = METRICS[name](out, plan["y"][s], plan["loss"])
        val = plan["val"]
        if val is not None:
            vlogs = evaluate_outputs(m, m.predict(val.X), val.y, val.w, plan["loss"],
                                     plan["metrics"], loss_params)
            for key, v in vlogs.items():
                logs["val_" + key] = v
        logs["lr"] = lr0
        logs["time"] = elapsed
        sched = plan["scheds"][i]
        if plan["plateau"]:
            new_lr = sched.step(_cb._monitored(logs, sched.monitor, "ReduceLROnPlateau"),
                                opt.lr)
            _set_lr(m, opt, new_lr)
            m.plateau_state = dict(sched.state_dict(), monitor=sched.monitor, mode=sched.mode)
        for cb in plan["cbs"][i]:
            cb.on_epoch_end(epoch, logs)

    # ------------------------------------------------------------------ files
    def save(self, path: Any) -> None:
        """Write every member (architecture, parameters, optimizer and its state, counters,
        RNG state) to one ``.npz`` file, atomically; :func:`load_ensemble` restores it."""
        path = os.fspath(path)
        arrays = {f"member_{i}": np.frombuffer(to_bytes(m), dtype=np.uint8)
                  for i, m in enumerate(self.models)}
        header = {"format": FORMAT, "version": FORMAT_VERSION, "n_models": self.n_models}
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp_path = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_path, path)
        except BaseException:
            try:
                os.unlink(tmp_path)
            except OSError:
                pass
            raise


def load_ensemble(path: Any, backend: str | None = None) -> Ensemble:
    """Load an ensemble written by :meth:`Ensemble.save`.

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"native", "reference"}, optional
        Override the saved backend.

    Returns
    -------
    Ensemble
        Every member as ``fastbp.load`` restores a model: ``fit`` continues exactly.

    Raises
    ------
    ValueError
        If the file is not a valid ensemble file (each member is validated as
        ``fastbp.load`` validates a checkpoint).
    """
    path = os.fspath(path)
    bad = f"{path!r} is not a valid fastbp ensemble file"
    try:
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(f["header"].tobytes().decode("utf-8"))
            if (not isinstance(header, dict) or header.get("format") != FORMAT
                    or header.get("version") != FORMAT_VERSION):
                raise ValueError("unknown format or version")
            k = _int_arg("n_models", header.get("n_models"), 1)
            blobs = [f[f"member_{i}"].tobytes() for i in range(k)]
    except FileNotFoundError:
        raise
    except (KeyError, OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{bad}: {e}") from None
    models = [from_bytes(b, backend=backend) for b in blobs]
    if len({(json.dumps(m.spec), m.dtype, m.backend) for m in models}) != 1:
        raise ValueError(f"{bad}: the members do not share one architecture")
    ens = Ensemble.__new__(Ensemble)
    ens.models = models
    ens._set_common()
    ens.history = None
    return ens
