"""The training loop: whole epochs run natively, Python sees the model between chunks.

``fit`` hands each epoch to the engine in one native call (``engine.fit_epoch``: shuffle,
gather, forward, backward, update for every mini-batch, with the GIL released) and comes back
to Python once per epoch — or, with ``steps_per_callback=N``, once per chunk of ``N``
mini-batches — for validation, metrics, learning-rate schedules, callbacks, the progress
display and the history. Nothing in Python runs per training step: per-step learning-rate
schedules are passed to the native loop as one array of rates per epoch.

Shuffling with ``steps_per_callback``: the epoch's permutation is the one the engine would
draw (``fastbp.reference.rng.shuffle_permutation(seed, epoch_counter, n)``, the engine's
counter advanced as the engine does); the shuffled data is gathered once per epoch and the
chunks are consecutive slices of it, trained with ``fit_epoch(..., shuffle=False)``. The
mini-batches, the dropout masks and therefore the parameters are bitwise the same as
without ``steps_per_callback``; only the reported epoch loss may differ in its last bits
(it is summed per chunk). The permutation is computed in Python (a Fisher–Yates loop: about
0.2 s per 100 000 samples per epoch) and the gathered copy doubles the data's memory for the
epoch — a cost paid only with ``steps_per_callback`` and ``shuffle``.
"""
from __future__ import annotations

import math
import numbers
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import callbacks as _cb
from . import metrics as _metrics
from . import schedules as _sched

__all__ = ["History", "fit"]

_LOSS_PARAMS = ("delta", "l1", "l2")


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
      training data (it does not change the training: the RNG counters and BatchNorm running
      statistics are restored afterwards).

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
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive" if minimum == 1 else "a non-negative"
        raise ValueError(f"{name} must be {what} integer, got {value!r}")
    return int(value)


def _split(model: Any, Xa: np.ndarray, ya: np.ndarray, wa: Optional[np.ndarray],
           validation_split: Any, validation_data: Any, loss: str):
    """Carve out the validation set: the last fraction (before any shuffling), or the given
    ``validation_data``."""
    if validation_data is not None and validation_split:
        raise ValueError("pass either validation_split or validation_data, not both")
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
        raise TypeError(f"validation_split must be a float in [0, 1), got {validation_split!r}")
    vs = float(validation_split)
    if not 0.0 <= vs < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    if vs > 0:
        n = Xa.shape[0]
        split_at = int(math.floor(n * (1.0 - vs)))
        if split_at < 1 or split_at >= n:
            raise ValueError(f"validation_split={vs} leaves {split_at} training and "
                             f"{n - split_at} validation samples out of {n}; both must be >= 1")
        val = (Xa[split_at:], ya[split_at:], None if wa is None else wa[split_at:])
        return (Xa[:split_at], ya[:split_at], None if wa is None else wa[:split_at]), val
    if validation_data is None:
        return (Xa, ya, wa), None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise TypeError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
                        "sample_weight_val)")
    Xv = model._X(validation_data[0], "validation_data[0]")
    try:
        yv = model._y(validation_data[1], loss)
    except (ValueError, TypeError) as e:
        raise type(e)(f"validation_data: {e}") from None
    if len(yv) != Xv.shape[0]:
        raise ValueError(f"validation_data: X has {Xv.shape[0]} rows but y has {len(yv)}")
    if Xv.shape[0] == 0:
        raise ValueError("validation_data is empty")
    wv = model._w(validation_data[2]) if len(validation_data) == 3 else None
    if wv is not None and wv.shape[0] != Xv.shape[0]:
        raise ValueError(f"validation_data: X has {Xv.shape[0]} rows but sample_weight has "
                         f"{wv.shape[0]}")
    # check the targets now (labels in range, finite values), not after the first epoch
    from .reference import losses as _losses

    try:
        _losses.check_target(loss, (Xv.shape[0], model.output_dim), yv, Xv.dtype)
        if wv is not None:
            _losses.check_sample_weight(wv, Xv.shape[0], Xv.dtype)
    except (ValueError, TypeError) as e:
        raise type(e)(f"validation_data: {e}") from None
    return (Xa, ya, wa), (Xv, yv, wv)


def _grad_norms(model: Any, Xs: np.ndarray, ys: np.ndarray, ws: Optional[np.ndarray],
                loss: str, loss_params: Dict[str, Any]) -> List[float]:
    """L2 norm of each parameter's gradient on a fixed sample, without side effects on the
    training (RNG counters and BatchNorm running statistics are restored)."""
    eng = model._engine
    rng = tuple(eng.rng_state())
    bufs = [b.copy() for b in eng.buffers()]
    try:
        _, grads = eng.loss_and_gradients(Xs, ys, loss, loss_params, ws)
    finally:
        eng.set_rng_state(*rng)
        for dst, src in zip(eng.buffers(), bufs):
            dst[...] = src
    return [float(np.sqrt(np.square(g, dtype=np.float64).sum())) for g in grads]


def _has_batchnorm(spec: Sequence[Dict[str, Any]]) -> bool:
    for layer in spec:
        if layer["type"] == "batchnorm":
            return True
        if layer["type"] == "residual" and _has_batchnorm(layer["layers"]):
            return True
    return False


def _set_lr(model: Any, opt: Any, lr: float) -> None:
    """Set the optimizer's learning rate (the engine keeps the optimizer state)."""
    if opt.lr != lr:
        opt.lr = lr
    model._sync_optimizer(opt)


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
        model has none. A different optimizer object starts from fresh state.
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
    # ---- validate everything before anything changes
    for k in loss_params:
        if k not in _LOSS_PARAMS:
            raise TypeError(f"fit() got an unexpected keyword argument {k!r} (loss parameters "
                            f"are {', '.join(_LOSS_PARAMS)})")
    epochs = _int_arg("epochs", epochs, 0)
    batch_size = _int_arg("batch_size", batch_size, 1)
    if steps_per_callback is not None:
        steps_per_callback = _int_arg("steps_per_callback", steps_per_callback, 1)
    grad_norm_samples = _int_arg("grad_norm_samples", grad_norm_samples, 1)
    if schedule_per not in ("epoch", "step"):
        raise ValueError(f"schedule_per must be 'epoch' or 'step', got {schedule_per!r}")
    if schedule is not None and not isinstance(schedule, (_sched.Schedule,
                                                          _sched.ReduceLROnPlateau)):
        raise TypeError("schedule must be a fastbp.schedules schedule (StepLR, "
                        "CosineAnnealingLR, ...), got " + type(schedule).__name__)
    plateau = isinstance(schedule, _sched.ReduceLROnPlateau)
    if plateau and schedule_per != "epoch":
        raise ValueError("ReduceLROnPlateau works per epoch: use schedule_per='epoch'")
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, _cb.Callback):
            raise TypeError(f"callbacks must be fastbp.callbacks.Callback instances, got "
                            f"{type(cb).__name__}")
    model._loss_args(loss, loss_params)
    metric_names = _metrics.check_metrics(metrics, loss)
    Xa = model._X(X)
    ya = model._y(y, loss)
    wa = model._w(sample_weight)
    if len(ya) != Xa.shape[0]:
        raise ValueError(f"X has {Xa.shape[0]} rows but y has {len(ya)}")
    if wa is not None and wa.shape[0] != Xa.shape[0]:
        raise ValueError(f"X has {Xa.shape[0]} rows but sample_weight has {wa.shape[0]}")
    if Xa.shape[0] == 0:
        raise ValueError("X is empty")
    # targets and weights checked up front (the engine checks them again per epoch), so a
    # bad held-out part fails before any training, not at the end of the first epoch
    from .reference import losses as _losses

    _losses.check_target(loss, (Xa.shape[0], model.output_dim), ya, Xa.dtype)
    if wa is not None:
        _losses.check_sample_weight(wa, Xa.shape[0], Xa.dtype)
    (Xt, yt, wt), val = _split(model, Xa, ya, wa, validation_split, validation_data, loss)
    if optimizer is None and getattr(model, "optimizer", None) is None:
        raise ValueError("fit: the model has no optimizer yet; pass optimizer= (e.g. "
                         "fb.optim.Adam(lr=1e-3) or 'adam')")
    model._sync_optimizer(optimizer)
    opt = model.optimizer

    n = Xt.shape[0]
    if _runner is None:
        steps_per_epoch = -(-n // batch_size)
    else:  # data-parallel (fastbp.distributed): the ranks agree here, rank 0's state is shared
        steps_per_epoch = _runner.begin(model, n, 0 if val is None else val[0].shape[0],
                                        batch_size)
    if not hasattr(model, "epochs_trained"):
        model.epochs_trained = 0
    if not hasattr(model, "steps_trained"):
        model.steps_trained = 0
    if (isinstance(schedule, _sched.ReduceLROnPlateau) and schedule.last_epoch == 0
            and getattr(model, "_plateau_state", None)):
        saved = model._plateau_state
        if saved.get("monitor") == schedule.monitor and saved.get("mode") == schedule.mode:
            schedule.load_state_dict(saved)
    if schedule is not None and getattr(opt, "initial_lr", None) is None:
        opt.initial_lr = float(opt.lr)
        model._sync_optimizer(opt)

    # fixed sample for the gradient-norm diagnostic
    gsample = None
    if grad_norm and n >= (2 if _has_batchnorm(model.spec) else 1):
        k = min(n, grad_norm_samples)
        idx = np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
        gsample = (np.ascontiguousarray(Xt[idx]), np.ascontiguousarray(yt[idx]),
                   None if wt is None else np.ascontiguousarray(wt[idx]))

    history = History()
    history.param_names = _metrics.parameter_names(model.spec)
    params = {"epochs": epochs, "steps": steps_per_epoch, "batch_size": batch_size,
              "samples": n, "initial_epoch": model.epochs_trained,
              "metrics": metric_names, "do_validation": val is not None}
    cbs: List[_cb.Callback] = [history] + callbacks
    if progress and _is_terminal(sys.stdout):
        cbs.append(_cb.ProgressBar())
    if _runner is not None:
        cbs = _runner.callbacks(cbs)
    for cb in cbs:
        cb.set_model(model)
        cb.set_params(params)
    history.params = params

    eng = model._engine
    model.stop_training = False
    for cb in cbs:
        cb.on_train_begin({})
    try:
        for _ in range(epochs):
            if model.stop_training:
                break
            epoch = model.epochs_trained
            for cb in cbs:
                cb.on_epoch_begin(epoch, {})
            # ---- learning rate(s) for this epoch
            lrs = None
            if schedule is not None and not plateau:
                if schedule_per == "epoch":
                    _set_lr(model, opt, schedule.lr(epoch, opt.initial_lr))
                else:
                    lrs = schedule.lrs(model.steps_trained, steps_per_epoch, opt.initial_lr)
            lr0 = float(lrs[0]) if lrs is not None else float(opt.lr)
            # ---- train (native)
            t0 = time.perf_counter()
            if _runner is None:
                value, steps_done = _train_epoch(model, eng, Xt, yt, wt, loss, loss_params,
                                                 batch_size, shuffle, lrs, steps_per_callback,
                                                 cbs)
            else:
                value, steps_done = _runner.train_epoch(model, eng, Xt, yt, wt, loss,
                                                        loss_params, batch_size, shuffle, lrs)
            elapsed = time.perf_counter() - t0
            model.steps_trained += steps_done
            if lrs is not None and steps_done:
                _set_lr(model, opt, float(lrs[steps_done - 1]))
            model.epochs_trained += 1
            # ---- evaluate
            logs: Dict[str, Any] = {"loss": value}
            if metric_names:
                out = model.predict(Xt)
                for m in metric_names:
                    logs[m] = _metrics.METRICS[m](out, yt, loss)
            if val is not None:
                vlogs = _metrics._evaluate_outputs(model, model.predict(val[0]), val[1], val[2],
                                                   loss, metric_names, loss_params)
                for k, v in vlogs.items():
                    logs["val_" + k] = v
            logs["lr"] = lr0
            logs["time"] = elapsed
            if gsample is not None:
                logs["grad_norm"] = _grad_norms(model, *gsample, loss, loss_params)
            if _runner is not None:
                logs = _runner.reduce_logs(logs)
            if plateau:
                new_lr = schedule.step(_cb._monitored(logs, schedule.monitor,
                                                      "ReduceLROnPlateau"), opt.lr)
                _set_lr(model, opt, new_lr)
                model._plateau_state = dict(schedule.state_dict(), monitor=schedule.monitor,
                                            mode=schedule.mode)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
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


def _train_epoch(model, eng, X, y, w, loss, loss_params, batch_size, shuffle, lrs,
                 steps_per_callback, cbs) -> Tuple[float, int]:
    """One epoch, in one native call or in chunks of ``steps_per_callback`` mini-batches.
    Returns (epoch loss, optimizer steps taken)."""
    n = X.shape[0]
    steps = -(-n // batch_size)
    if steps_per_callback is None or steps_per_callback >= steps:
        value = eng.fit_epoch(X, y, loss, loss_params, w, batch_size, bool(shuffle), lrs)
        if steps_per_callback is not None:
            logs = {"loss": float(value), "steps": steps, "samples": n}
            for cb in cbs:
                cb.on_batch_end(0, logs)
        return float(value), steps
    if shuffle:
        from .reference.rng import shuffle_permutation

        seed, step_counter, epoch_counter = (int(v) for v in eng.rng_state())
        perm = shuffle_permutation(seed, epoch_counter, n)
        eng.set_rng_state(seed, step_counter, epoch_counter + 1)
        X, y = X[perm], y[perm]
        w = None if w is None else w[perm]
    chunk_rows = steps_per_callback * batch_size
    total = 0.0
    done = 0
    for c, start in enumerate(range(0, n, chunk_rows)):
        stop = min(n, start + chunk_rows)
        k0 = start // batch_size
        k1 = -(-stop // batch_size)
        value = eng.fit_epoch(X[start:stop], y[start:stop], loss, loss_params,
                              None if w is None else w[start:stop], batch_size, False,
                              None if lrs is None else lrs[k0:k1])
        total += float(value) * (stop - start)
        done = k1
        logs = {"loss": float(value), "steps": k1 - k0, "samples": stop - start}
        for cb in cbs:
            cb.on_batch_end(c, logs)
        if model.stop_training:
            return total / stop, done
    return total / n, done
