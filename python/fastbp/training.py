"""The training loop: whole epochs run natively, Python sees the model between chunks.

``fit`` hands each epoch to the engine in one native call (``engine.fit_epoch``: shuffle,
gather, forward, backward, update for every mini-batch, with the GIL released) and comes back
to Python once per epoch — or, with ``steps_per_callback=N``, once per chunk of ``N``
mini-batches — for validation, metrics, learning-rate schedules, callbacks, the progress
display and the history. Nothing in Python runs per training step: per-step learning-rate
schedules are passed to the native loop as one array of rates per epoch.

Shuffling with ``steps_per_callback``: the epoch's permutation is the one the engine would
draw (``engine.permutation(n)``, after which the engine's epoch counter is advanced as its own
shuffled epoch does); the shuffled data is gathered once per epoch and the chunks are
consecutive slices of it, trained with ``fit_epoch(..., shuffle=False)``. The mini-batches,
the dropout masks and therefore the parameters are bitwise the same as without
``steps_per_callback``; only the reported epoch loss may differ in its last bits (it is summed
per chunk). The gathered copy doubles the data's memory for the epoch — a cost paid only with
``steps_per_callback`` and ``shuffle``.
"""
from __future__ import annotations

import math
import numbers
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import callbacks as _cb
from . import schedules as _sched
from ._data import check_loss_kwargs, no_rescan
from .layers import spec_has
from .metrics import METRICS, check_metrics, evaluate_outputs, parameter_names
from .registry import resolve_loss

__all__ = ["History", "fit"]


class History(_cb.Callback):
    """Per-epoch records of a ``fit`` run (Keras' ``History``).

    ``history.history`` maps each key to a list with one value per epoch:

    * ``loss``: the epoch's training loss (mean over its mini-batches, weighted by their
      sizes, penalties included); ``val_loss`` when there is validation data;
    * metrics: ``accuracy``, ``val_accuracy`` ... (evaluated in inference mode, after the
      epoch, on the whole training / validation set);
    * ``lr``: the learning rate of the epoch's first step; ``time``: seconds for the epoch;
    * ``grad_norm``: for each epoch, a list with the L2 norm of the gradient of each
      parameter (names in ``history.param_names``: ``dense1.W``, ``dense1.b``, ...),
      computed at the end of the epoch by one ``loss_and_gradients`` on a fixed sample of the
      training data (a probe: it leaves the RNG counters and BatchNorm running statistics
      alone, so it changes nothing for training in this or another thread).

    ``history.epoch`` lists the global epoch indices (``model.epochs_trained`` before each).
    """

    def __init__(self) -> None:
        self.history: Dict[str, List[Any]] = {"loss": [], "time": []}
        self.epoch: List[int] = []
        self.param_names: List[str] = []
        self.params: Dict[str, Any] = {}

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.epoch.append(int(epoch))
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key: str) -> List[Any]:
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def keys(self):
        """The recorded keys."""
        return self.history.keys()

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v and k != "grad_norm"}
        return f"History(epochs={len(self.epoch)}, last={last})"


# -------------------------------------------------------------------------- argument checks
def _int_arg(name: str, value: Any, minimum: int) -> int:
    if type(value) is int and value >= minimum:  # (the common case, without the ABC check)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive" if minimum == 1 else "a non-negative"
        raise ValueError(f"{name} must be {what} integer, got {value!r}")
    return int(value)


def _split(model: Any, data: "_Data", validation_split: Any, validation_data: Any,
           loss: str, loss_params: Dict[str, Any]) -> Tuple["_Data", Optional["_Data"]]:
    """Carve out the validation set: the last fraction (before any shuffling), or the given
    ``validation_data`` (converted, and checked by the engine now, not after an epoch)."""
    if validation_data is not None and validation_split:
        raise ValueError("pass either validation_split or validation_data, not both")
    if type(validation_split) not in (int, float) and (
            isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real)):
        raise TypeError(f"validation_split must be a float in [0, 1), got {validation_split!r}")
    vs = float(validation_split)
    if not 0.0 <= vs < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    if vs > 0:
        n = data.X.shape[0]
        at = int(math.floor(n * (1.0 - vs)))
        if at < 1 or at >= n:
            raise ValueError(f"validation_split={vs} leaves {at} training and "
                             f"{n - at} validation samples out of {n}; both must be >= 1")
        return data.rows(slice(0, at)), data.rows(slice(at, n))
    if validation_data is None:
        return data, None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise TypeError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
                        "sample_weight_val)")
    wv = validation_data[2] if len(validation_data) == 3 else None
    try:
        val = _Data.convert(model, validation_data[0], validation_data[1], wv, loss, loss_params)
    except (ValueError, TypeError) as e:
        raise type(e)(f"validation_data: {e}") from None
    return data, val


class _Data:
    """Training or validation data converted to the model dtype (rows ``X``, targets ``y``,
    optional weights ``w``)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, w: Optional[np.ndarray]):
        self.X, self.y, self.w = X, y, w

    @classmethod
    def convert(cls, model: Any, X: Any, y: Any, w: Any, loss: str,
                loss_params: Dict[str, Any]) -> "_Data":
        """Convert, then let the model's engine check the whole set as one batch."""
        data = cls(model._X(X), model._y(y, loss), model._w(w))
        model.engine.check_batch(data.X, data.y, loss, loss_params, data.w)
        return data

    def rows(self, idx: Any) -> "_Data":
        return _Data(self.X[idx], self.y[idx], None if self.w is None else self.w[idx])


def _grad_norms(model: Any, sample: _Data, loss: str,
                loss_params: Dict[str, Any]) -> List[float]:
    """L2 norm of each parameter's gradient on a fixed sample: a probe, which changes no
    state a training step (in this or another thread) reads. (One engine call: the norms are
    formed where the gradients are, none is copied out.)"""
    return model.engine.gradient_norms(sample.X, sample.y, loss, loss_params, sample.w)[1]


def _grad_sample(model: Any, data: _Data, grad_norm: bool, samples: int) -> Optional[_Data]:
    """The fixed, evenly spaced sample of the training data for the gradient-norm record
    (None when it is off, or when BatchNorm could not train on one row)."""
    n = data.X.shape[0]
    if not grad_norm or n < (2 if spec_has(model.spec, "batchnorm") else 1):
        return None
    idx = np.unique(np.linspace(0, n - 1, min(n, samples)).round().astype(np.int64))
    w = None if data.w is None else np.ascontiguousarray(data.w[idx])
    return _Data(np.ascontiguousarray(data.X[idx]), np.ascontiguousarray(data.y[idx]), w)


def _set_lr(model: Any, opt: Any, lr: float) -> None:
    """Set the optimizer's learning rate (the engine keeps the optimizer state)."""
    if opt.lr != lr:
        opt.lr = lr
    model.set_optimizer(opt, undoable=False)


class _Plan:
    """fit's checked arguments: everything that does not change during the run."""

    def __init__(self, epochs: Any, batch_size: Any, shuffle: bool, schedule: Any,
                 schedule_per: str, steps_per_callback: Any, callbacks: Any,
                 grad_norm_samples: Any, loss_params: Dict[str, Any]):
        check_loss_kwargs("fit", loss_params)
        self.epochs = _int_arg("epochs", epochs, 0)
        self.batch_size = _int_arg("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        self.steps_per_callback = (None if steps_per_callback is None else
                                   _int_arg("steps_per_callback", steps_per_callback, 1))
        self.grad_norm_samples = _int_arg("grad_norm_samples", grad_norm_samples, 1)
        if schedule_per not in ("epoch", "step"):
            raise ValueError(f"schedule_per must be 'epoch' or 'step', got {schedule_per!r}")
        if schedule is not None and not isinstance(schedule, (_sched.Schedule,
                                                              _sched.ReduceLROnPlateau)):
            raise TypeError("schedule must be a fastbp.schedules schedule (StepLR, "
                            "CosineAnnealingLR, ...), got " + type(schedule).__name__)
        if isinstance(schedule, _sched.ReduceLROnPlateau) and schedule_per != "epoch":
            raise ValueError("ReduceLROnPlateau works per epoch: use schedule_per='epoch'")
        self.schedule: Union[_sched.Schedule, _sched.ReduceLROnPlateau, None] = schedule
        self.schedule_per = schedule_per
        self.runner: Any = None  # fastbp.distributed's hooks when fit runs with comm=
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, _cb.Callback):
                raise TypeError(f"callbacks must be fastbp.callbacks.Callback instances, got "
                                f"{type(cb).__name__}")


def _start_schedule(model: Any, plan: _Plan, opt: Any) -> None:
    """Resume a ReduceLROnPlateau from the model's saved state; fix the initial rate."""
    schedule = plan.schedule
    if (isinstance(schedule, _sched.ReduceLROnPlateau) and schedule.last_epoch == 0
            and getattr(model, "plateau_state", None)):
        saved = model.plateau_state
        if saved.get("monitor") == schedule.monitor and saved.get("mode") == schedule.mode:
            schedule.load_state_dict(saved)
    if schedule is not None and getattr(opt, "initial_lr", None) is None:
        opt.initial_lr = float(opt.lr)
        model.set_optimizer(opt, undoable=False)


def _parameter_names(model: Any) -> List[str]:
    """parameter_names(model.spec), computed once per spec object (a fit call's setup)."""
    cached = model.__dict__.get("_parameter_names_cache")
    if cached is None or cached[0] is not model.spec:
        cached = (model.spec, parameter_names(model.spec))
        model._parameter_names_cache = cached
    return list(cached[1])


def _callbacks(model: Any, plan: _Plan, n: int, metric_names: List[str], has_val: bool,
               progress: bool) -> Tuple[History, List[_cb.Callback]]:
    """The History and the callback list of one fit run, set up with the run's parameters."""
    history = History()
    history.param_names = _parameter_names(model)
    params = {"epochs": plan.epochs, "steps": -(-n // plan.batch_size),
              "batch_size": plan.batch_size, "samples": n,
              "initial_epoch": model.epochs_trained, "metrics": metric_names,
              "do_validation": has_val}
    cbs: List[_cb.Callback] = [history] + plan.callbacks
    if progress and _is_terminal(sys.stdout):
        cbs.append(_cb.ProgressBar())
    if plan.runner is not None:
        cbs = plan.runner.callbacks(cbs)
    for cb in cbs:
        cb.set_model(model)
        cb.set_params(params)
    history.params = params
    return history, cbs


def _epoch_lrs(model: Any, plan: _Plan, opt: Any, steps: int) -> Optional[np.ndarray]:
    """Set the epoch's learning rate; returns the per-step rates (or None)."""
    schedule = plan.schedule
    if schedule is None or isinstance(schedule, _sched.ReduceLROnPlateau):
        return None
    if plan.schedule_per == "epoch":
        _set_lr(model, opt, schedule.lr(model.epochs_trained, opt.initial_lr))
        return None
    return schedule.lrs(model.steps_trained, steps, opt.initial_lr)


def _epoch_logs(model: Any, train: _Data, val: Optional[_Data], gsample: Optional[_Data],
                loss: str, loss_params: Dict[str, Any], metric_names: List[str]
                ) -> Dict[str, Any]:
    """Metrics on the training set, loss and metrics on the validation set, gradient norms."""
    logs: Dict[str, Any] = {}
    if metric_names:
        out = model.predict(train.X)
        for m in metric_names:
            logs[m] = METRICS[m](out, train.y, loss)
    if val is not None:
        vlogs = evaluate_outputs(model, model.predict(val.X), val.y, val.w, loss,
                                 metric_names, loss_params)
        for k, v in vlogs.items():
            logs["val_" + k] = v
    if gsample is not None:
        logs["grad_norm"] = _grad_norms(model, gsample, loss, loss_params)
    return logs


def _counted(model: Any, opt: Any, lrs: Any, train: Any, *args: Any) -> Tuple[float, int]:
    """Run one epoch's training, then advance the model's epoch and step counters (and the
    learning rate of a per-step schedule). On KeyboardInterrupt (Ctrl-C stops the engine
    between mini-batches) the counters take what the engine did -- its steps, and the epoch
    if it started -- so they agree with the engine's and a checkpoint resumes exactly."""
    steps0, epochs0 = model.steps_trained, model.epochs_trained
    before = model.engine.rng_state()  # (seed, step counter, epoch counter)
    try:
        value, steps_done = train(*args)
    except KeyboardInterrupt:
        after = model.engine.rng_state()
        steps = int(after[1]) - int(before[1])
        _advance(model, opt, lrs, steps0, steps, epochs0,
                 steps > 0 or int(after[2]) != int(before[2]))
        raise
    _advance(model, opt, lrs, steps0, steps_done, epochs0, True)
    return value, steps_done


def _advance(model: Any, opt: Any, lrs: Any, steps0: int, steps: int, epochs0: int,
             epoch_started: bool) -> None:
    """The counters after ``steps`` optimizer steps of an epoch (see _counted)."""
    model.steps_trained = steps0 + steps
    if lrs is not None and steps:
        _set_lr(model, opt, float(lrs[steps - 1]))
    model.epochs_trained = epochs0 + int(epoch_started)


def _run_epoch(model: Any, plan: _Plan, opt: Any, train: _Data, val: Optional[_Data],
               gsample: Optional[_Data], loss: str, loss_params: Dict[str, Any],
               metric_names: List[str], cbs: List[_cb.Callback]) -> None:
    """One epoch: learning rate, native training, evaluation, schedule, callbacks."""
    epoch = model.epochs_trained
    for cb in cbs:
        cb.on_epoch_begin(epoch, {})
    runner = plan.runner
    steps = -(-train.X.shape[0] // plan.batch_size) if runner is None else runner.steps
    lrs = _epoch_lrs(model, plan, opt, steps)
    lr0 = float(lrs[0]) if lrs is not None else float(opt.lr)
    t0 = time.perf_counter()
    if runner is None:
        value, _ = _counted(model, opt, lrs, _train_epoch, model, train, loss, loss_params, plan,
                            lrs, cbs)
    else:
        value, _ = _counted(model, opt, lrs, runner.train_epoch, model, model.engine, train.X,
                            train.y, train.w, loss, loss_params, plan.batch_size, plan.shuffle,
                            lrs)
    elapsed = time.perf_counter() - t0
    logs: Dict[str, Any] = {"loss": value}
    logs.update(_epoch_logs(model, train, val, gsample, loss, loss_params, metric_names))
    logs["lr"] = lr0
    logs["time"] = elapsed
    if runner is not None:  # the same logs on every rank
        logs = runner.reduce_logs(logs)
    plateau = plan.schedule
    if isinstance(plateau, _sched.ReduceLROnPlateau):
        monitored = _cb._monitored(logs, plateau.monitor, "ReduceLROnPlateau")
        _set_lr(model, opt, plateau.step(monitored, opt.lr))
        model.plateau_state = dict(plateau.state_dict(), monitor=plateau.monitor,
                                   mode=plateau.mode)
    for cb in cbs:
        cb.on_epoch_end(epoch, logs)


# ------------------------------------------------------------------------------------ fit
def fit(model: Any, X: Any, y: Any, loss: str = "mse", optimizer: Any = None, epochs: int = 1,
        batch_size: int = 32, shuffle: bool = True, sample_weight: Any = None, *,
        validation_split: float = 0.0, validation_data: Any = None,
        metrics: Optional[Sequence[str]] = None, callbacks: Optional[Sequence[Any]] = None,
        schedule: Any = None, schedule_per: str = "epoch",
        steps_per_callback: Optional[int] = None, progress: bool = True,
        grad_norm: bool = True, grad_norm_samples: int = 256, _runner: Any = None,
        **loss_params: Any) -> History:
    """Train ``model`` on (X, y) for ``epochs`` epochs of mini-batches.

    Each epoch is one native call (shuffle with the model's seeded stream, gather, forward,
    backward, update for every mini-batch) with the GIL released; Python runs between epochs
    (or between chunks of ``steps_per_callback`` steps) for validation, schedules, callbacks,
    progress and history.

    Parameters
    ----------
    model : Sequential
        The model to train (``model.fit`` calls this).
    X : array_like
        ``(n, input_dim)`` inputs.
    y : array_like
        Targets: integer labels (or probabilities) for ``softmax_cross_entropy``, else
        ``(n, output_dim)`` (or ``(n,)`` for one output).
    loss : str
        ``mse``, ``mae``, ``huber``, ``binary_cross_entropy``, ``softmax_cross_entropy``.
    optimizer : Optimizer or str, optional
        Default: continue with ``model.optimizer`` (its state included); a ValueError if the
        model has none. A different optimizer object starts from fresh state; a name
        continues the model's optimizer when it is of that kind (so ``fit(...,
        optimizer="adam")`` called again keeps Adam's state), else starts a fresh one with
        the defaults.
    epochs : int
        Number of epochs to run in this call.
    batch_size : int
        Mini-batch size (the last mini-batch of an epoch may be smaller).
    shuffle : bool
        Shuffle the training data every epoch (the engine's seeded RNG).
    sample_weight : array_like, optional
        ``(n,)`` non-negative per-sample weights of the loss.
    validation_split : float
        Fraction in ``[0, 1)`` of the data held out for validation: the *last* samples,
        taken before any shuffling (as Keras does).
    validation_data : tuple, optional
        ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``; exclusive with
        ``validation_split``.
    metrics : list of str, optional
        ``"accuracy"`` (classification losses), ``"mse"``, ``"mae"`` (regression losses),
        evaluated after each epoch in inference mode on the training set (``accuracy``) and
        the validation set (``val_accuracy``).
    callbacks : list of Callback, optional
        e.g. ``[fb.callbacks.EarlyStopping(patience=5), fb.callbacks.ModelCheckpoint(p)]``.
    schedule : Schedule or ReduceLROnPlateau, optional
        Learning-rate schedule (:mod:`fastbp.schedules`), relative to the optimizer's
        initial learning rate (``optimizer.initial_lr``, set on first use).
    schedule_per : {"epoch", "step"}
        ``"epoch"``: the rate is set before each epoch from ``model.epochs_trained``;
        ``"step"``: one rate per optimizer step from ``model.steps_trained``, passed to the
        native loop as an array. ``ReduceLROnPlateau`` works per epoch only.
    steps_per_callback : int, optional
        Return to Python every this many mini-batches (``on_batch_end`` callbacks,
        ``TerminateOnNaN`` mid-epoch, ``stop_training`` honoured mid-epoch). Results are
        bitwise those of whole-epoch calls (see the module docstring).
    progress : bool
        Show progress (tqdm if installed, else one line per epoch) — only when stdout is a
        terminal (or a Jupyter notebook). For other streams add
        ``fb.callbacks.ProgressBar(stream=...)`` to ``callbacks``.
    grad_norm : bool
        Record ``history["grad_norm"]`` (one extra forward/backward on
        ``grad_norm_samples`` training samples per epoch).
    grad_norm_samples : int
        Size of the fixed, evenly spaced sample of the training data for ``grad_norm``.
    **loss_params
        ``delta`` (huber), ``l1``, ``l2`` (penalties on dense weights).

    Returns
    -------
    History
        Also stored as ``model.history``.

    Notes
    -----
    When a callback sets ``model.stop_training`` in ``on_batch_end``, the epoch ends there:
    it still counts as an epoch (``on_epoch_end`` runs and the history records it, its loss
    averaged over the samples trained), as in Keras.

    ``model.epochs_trained`` and ``model.steps_trained`` count the epochs and optimizer steps
    taken by ``fit`` over the model's life (saved in checkpoints); schedules are functions
    of them, so ``fit(epochs=2)`` twice (or with a save/load in between) trains exactly as
    ``fit(epochs=4)``.
    """
    # everything is checked before anything changes
    loss = resolve_loss(loss)
    plan = _Plan(epochs, batch_size, shuffle, schedule, schedule_per, steps_per_callback,
                 callbacks, grad_norm_samples, loss_params)
    metric_names = check_metrics(metrics, loss)
    data = _Data.convert(model, X, y, sample_weight, loss, loss_params)
    train, val = _split(model, data, validation_split, validation_data, loss, loss_params)
    if plan.callbacks:
        _cb.check_callbacks(plan.callbacks, _cb.epoch_log_keys(metric_names, val is not None))
    if optimizer is None and getattr(model, "optimizer", None) is None:
        raise ValueError("fit: the model has no optimizer yet; pass optimizer= (e.g. "
                         "fb.optim.Adam(lr=1e-3) or 'adam')")
    model.set_optimizer(optimizer, undoable=False)
    opt = model.optimizer
    _start_schedule(model, plan, opt)
    if _runner is not None:  # data-parallel (fastbp.distributed): the ranks agree here
        plan.runner = _runner
        _runner.begin(model, train.X.shape[0], 0 if val is None else val.X.shape[0],
                      plan.batch_size)
    gsample = _grad_sample(model, train, grad_norm, plan.grad_norm_samples)
    history, cbs = _callbacks(model, plan, train.X.shape[0], metric_names, val is not None,
                              progress)
    model.stop_training = False
    for cb in cbs:
        cb.on_train_begin({})
    try:
        for _ in range(plan.epochs):
            if model.stop_training:
                break
            _run_epoch(model, plan, opt, train, val, gsample, loss, loss_params, metric_names,
                       cbs)
    finally:
        for cb in cbs:
            cb.on_train_end({})
    model.history = history
    return history


def _is_terminal(stream: Any) -> bool:
    """A terminal, or a Jupyter kernel's output stream (which says it is not a tty but is
    shown to a person)."""
    if type(stream).__module__.split(".")[0] == "ipykernel":
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _train_epoch(model: Any, data: _Data, loss: str, loss_params: Dict[str, Any],
                 plan: _Plan, lrs: Optional[np.ndarray], cbs: List[_cb.Callback]
                 ) -> Tuple[float, int]:
    """One epoch, in one native call or in chunks of ``steps_per_callback`` mini-batches.
    Returns (epoch loss, optimizer steps taken)."""
    eng = model.engine
    X, y, w = data.X, data.y, data.w
    n, bs = X.shape[0], plan.batch_size
    steps = -(-n // bs)
    spc = plan.steps_per_callback
    quiet = no_rescan(model)  # (fit checked the data once: _Data.convert)
    if spc is None or spc >= steps:
        value = eng.fit_epoch(X, y, loss, loss_params, w, bs, plan.shuffle, lrs, *quiet)
        if spc is not None:
            logs = {"loss": float(value), "steps": steps, "samples": n}
            for cb in cbs:
                cb.on_batch_end(0, logs)
        return float(value), steps
    if plan.shuffle:
        # the permutation the engine's own shuffled epoch would use, then its counter advanced
        perm = eng.permutation(n)
        seed, step_counter, epoch_counter = (int(v) for v in eng.rng_state())
        eng.set_rng_state(seed, step_counter, epoch_counter + 1)
        X, y = X[perm], y[perm]
        w = None if w is None else w[perm]
    chunk_rows = spc * bs
    total = 0.0
    done = 0
    for c, start in enumerate(range(0, n, chunk_rows)):
        stop = min(n, start + chunk_rows)
        k0, k1 = start // bs, -(-stop // bs)
        value = eng.fit_epoch(X[start:stop], y[start:stop], loss, loss_params,
                              None if w is None else w[start:stop], bs, False,
                              None if lrs is None else lrs[k0:k1], *quiet)
        total += float(value) * (stop - start)
        done = k1
        logs = {"loss": float(value), "steps": k1 - k0, "samples": stop - start}
        for cb in cbs:
            cb.on_batch_end(c, logs)
        if model.stop_training:
            return total / stop, done
    return total / n, done
