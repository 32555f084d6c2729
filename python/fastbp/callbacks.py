"""Callbacks for :func:`fastbp.training.fit` (Keras-like).

Callbacks run in Python *between* native chunks of work — after each epoch, or, with
``fit(..., steps_per_callback=N)``, after each chunk of ``N`` optimizer steps — never inside a
native training step. Hooks:

* ``on_train_begin(logs)`` / ``on_train_end(logs)``
* ``on_epoch_begin(epoch, logs)`` / ``on_epoch_end(epoch, logs)``: ``epoch`` is the model's
  global epoch index (``model.epochs_trained`` before the epoch); the end-of-epoch ``logs``
  hold ``loss``, ``val_loss``, metrics (``accuracy``, ``val_accuracy``...), ``lr`` and
  ``time``.
* ``on_batch_end(batch, logs)``: only when ``steps_per_callback`` is set; ``batch`` is the
  index of the chunk within the epoch and ``logs`` hold the chunk's mean ``loss``, its
  ``steps`` and ``samples``.

A callback stops training by setting ``self.model.stop_training = True``; ``fit`` checks the
flag after every chunk.
"""
from __future__ import annotations

import math
import os
import string
import sys
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, TextIO

import numpy as np

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "LambdaCallback", "ModelCheckpoint",
           "ProgressBar", "TerminateOnNaN", "check_callbacks", "epoch_log_keys"]


class Callback:
    """Base class: override the hooks you need. ``self.model`` is set by ``fit`` and
    ``self.params`` holds ``epochs``, ``steps`` (per epoch), ``batch_size``, ``samples``."""

    model: Any = None
    params: Dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: Dict[str, Any]) -> None:
        self.params = dict(params)

    def check(self, log_keys: Set[str]) -> None:
        """Called by ``fit`` before anything changes (before the optimizer is set up and the
        first epoch), with the numeric keys the epoch logs of this run will hold: raise
        ``ValueError`` for a setting that cannot work in this run. Accepts everything by
        default."""

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        """Called once after the last epoch (also when training stopped early)."""

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Called before each epoch."""

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Called after each epoch with its logs."""

    def on_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Called after each chunk of ``steps_per_callback`` steps (only when it is set)."""


def _mode(monitor: str, mode: str) -> str:
    if mode == "auto":
        return "max" if ("acc" in monitor or "accuracy" in monitor) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def _monitored(logs: Optional[Dict[str, Any]], monitor: str, who: str) -> float:
    if not logs or monitor not in logs:
        have = ", ".join(sorted(logs or {}))
        hint = (" (pass validation_split= or validation_data= to fit)"
                if monitor.startswith("val_") else "")
        raise ValueError(f"{who}: monitor={monitor!r} is not in the epoch logs "
                         f"(available: {have}){hint}")
    return float(logs[monitor])


def epoch_log_keys(metric_names: Sequence[str], has_validation: bool) -> Set[str]:
    """The numeric keys of ``fit``'s epoch logs: ``loss``, ``lr``, ``time``, the metrics and,
    with validation data, ``val_loss`` and ``val_<metric>``.

    Parameters
    ----------
    metric_names : sequence of str
        The run's metrics (``accuracy``, ``mse``...).
    has_validation : bool
        Whether the run has validation data.

    Returns
    -------
    set of str
    """
    keys = {"loss", "lr", "time", *metric_names}
    if has_validation:
        keys |= {"val_loss", *("val_" + m for m in metric_names)}
    return keys


def check_callbacks(callbacks: Iterable[Callback], log_keys: Set[str]) -> None:
    """Run every callback's :meth:`Callback.check` (``fit`` does, before the first epoch).

    Parameters
    ----------
    callbacks : iterable of Callback
    log_keys : set of str
        From :func:`epoch_log_keys`.
    """
    for cb in callbacks:
        cb.check(log_keys)


def _check_monitor(who: str, monitor: str, log_keys: Set[str]) -> None:
    if monitor not in log_keys:
        hint = (" (pass validation_split= or validation_data= to fit)"
                if monitor.startswith("val_") else "")
        raise ValueError(f"{who}: monitor={monitor!r} will not be in the epoch logs (they "
                         f"hold {', '.join(sorted(log_keys))}){hint}")


def _check_writable_file(who: str, path: str) -> None:
    """``path`` can be created or replaced: its directory exists and accepts a new file."""
    if os.path.isdir(path):
        raise ValueError(f"{who}: {path!r} is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"{who}: directory {directory!r} of {path!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fastbp-check-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"{who}: cannot write in {directory!r}: {e}") from None


class EarlyStopping(Callback):
    """Stop training when a monitored quantity has stopped improving (Keras semantics).

    An epoch improves when ``current < best - min_delta`` (``mode="min"``) or ``current >
    best + min_delta`` (``"max"``). Training stops after ``patience`` epochs without
    improvement. With ``restore_best_weights``, the parameters and buffers of the best epoch
    are restored when training stops early (as in Keras: if it never stops early, the last
    weights stay).

    Parameters
    ----------
    monitor : str
        Key of the epoch logs (``"val_loss"``, ``"loss"``, ``"val_accuracy"``, ...).
    min_delta : float
        Minimum change that counts as an improvement (``>= 0``).
    patience : int
        Epochs without improvement before stopping.
    mode : {"auto", "min", "max"}
        ``"auto"``: ``"max"`` for accuracy-like monitors, ``"min"`` otherwise.
    restore_best_weights : bool
        Restore the best epoch's weights on stopping.
    baseline : float, optional
        Training stops if the monitor does not beat this within ``patience`` epochs.

    Attributes
    ----------
    best, best_epoch, stopped_epoch, wait
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", restore_best_weights: bool = False,
                 baseline: Optional[float] = None):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string, got {type(monitor).__name__}")
        min_delta = float(min_delta)
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        if (isinstance(patience, bool) or not isinstance(patience, (int, np.integer))
                or patience < 0):
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.monitor = monitor
        self.min_delta = min_delta
        self.patience = int(patience)
        self.mode = _mode(monitor, mode)
        self.restore_best_weights = bool(restore_best_weights)
        self.baseline = None if baseline is None else float(baseline)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch: Optional[int] = None
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: Optional[int] = None
        self.best_weights: Optional[tuple] = None

    def _improves(self, current: float, reference: float) -> bool:
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def check(self, log_keys):
        _check_monitor("EarlyStopping", self.monitor, log_keys)

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _snapshot(self.model)
        self.wait += 1
        if math.isfinite(current) and self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and self.wait > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                _restore(self.model, self.best_weights)


def _snapshot(model: Any) -> tuple:
    return ([p.copy() for p in model.parameters()], [b.copy() for b in model.buffers()])


def _restore(model: Any, snap: tuple) -> None:
    params, bufs = snap
    for dst, src in zip(model.parameters(), params):
        dst[...] = src
    for dst, src in zip(model.buffers(), bufs):
        dst[...] = src


class ModelCheckpoint(Callback):
    """Save the model (``model.save``) after epochs.

    Parameters
    ----------
    path : str or os.PathLike
        File to write; may hold ``str.format`` fields ``{epoch}`` (1-based, as in Keras) and
        any log key, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.
    monitor : str
        Key of the epoch logs used by ``save_best_only``.
    save_best_only : bool
        Save only when ``monitor`` improves on the best value so far.
    mode : {"auto", "min", "max"}
        As for :class:`EarlyStopping`.
    every : int
        Consider saving every ``every`` epochs.

    Attributes
    ----------
    best : float
        Best monitored value so far.
    last_path : str or None
        The file written last.
    """

    def __init__(self, path: Any, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", every: int = 1):
        self.path = os.fspath(path)
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string, got {type(monitor).__name__}")
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _mode(monitor, mode)
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = int(every)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.last_path: Optional[str] = None

    def check(self, log_keys):
        """The format fields exist in this run's logs (``{epoch}`` and log keys, formatted
        with their specs), the monitor too when ``save_best_only``, and the directory of the
        path accepts files."""
        who = "ModelCheckpoint"
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.path) if f is not None]
        except ValueError as e:
            raise ValueError(f"{who}: malformed path template {self.path!r}: {e}") from None
        for field in fields:
            name = field.split(".")[0].split("[")[0]
            if name != "epoch" and name not in log_keys:
                hint = " (no validation data in this fit)" if name.startswith("val_") else ""
                raise ValueError(f"{who}: the path field {{{field}}} will not be in the epoch "
                                 f"logs (they hold epoch, {', '.join(sorted(log_keys))}){hint}")
        try:
            sample = self.path.format(epoch=1, **{k: 0.5 for k in log_keys})
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            raise ValueError(f"{who}: cannot format the path {self.path!r}: "
                             f"{type(e).__name__}: {e}") from None
        if self.save_best_only:
            _check_monitor(who, self.monitor, log_keys)
        _check_writable_file(who, sample)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if (epoch + 1) % self.every:
            return
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            better = current < self.best if self.mode == "min" else current > self.best
            if not (math.isfinite(current) and better):
                return
            self.best = current
        fields = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        path = self.path.format(epoch=epoch + 1, **fields)
        self.model.save(path)
        self.last_path = path


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss is NaN or infinite (checked after every epoch and,
    with ``steps_per_callback``, after every chunk).

    Attributes
    ----------
    terminated_epoch : int or None
    """

    def __init__(self) -> None:
        self.terminated_epoch: Optional[int] = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs) -> None:
        value = (logs or {}).get("loss")
        if value is not None and not math.isfinite(float(value)):
            self.terminated_epoch = self._epoch
            self.model.stop_training = True

    def on_batch_end(self, batch, logs=None):
        self._check(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


_SHOWN = ("loss", "val_loss")


def _summary(logs: Dict[str, Any]) -> Dict[str, str]:
    keys = [k for k in logs if k in _SHOWN]
    keys += [k for k in logs if k not in _SHOWN and k not in ("time", "grad_norm", "lr")
             and isinstance(logs[k], (int, float))]
    if "lr" in logs:
        keys.append("lr")
    return {k: _fmt(logs[k]) for k in keys}


class ProgressBar(Callback):
    """Progress display: a tqdm bar over epochs when tqdm is installed, otherwise one plain
    line per epoch. ``fit(progress=True)`` adds it only when the stream is a terminal.

    Parameters
    ----------
    stream : file-like, optional
        Where to write (default ``sys.stdout``).
    use_tqdm : bool, optional
        Force (True) or forbid (False) tqdm; default: use it when importable.
    """

    def __init__(self, stream: Optional[TextIO] = None, use_tqdm: Optional[bool] = None):
        self.stream = stream
        self.use_tqdm = use_tqdm
        self._bar = None
        self._epochs = 0
        self._done = 0

    def on_train_begin(self, logs=None):
        stream = self.stream if self.stream is not None else sys.stdout
        self._stream = stream
        self._epochs = int(self.params.get("epochs", 0))
        self._first = int(self.params.get("initial_epoch", 0))
        self._done = 0
        self._bar = None
        use = self.use_tqdm
        if use is None or use:
            try:
                from tqdm.auto import tqdm  # optional dependency
            except ImportError:
                if use:
                    raise
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=self._epochs, unit="epoch", file=stream, leave=True,
                                 dynamic_ncols=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._done += 1
        if self._bar is not None:
            self._bar.set_postfix(_summary(logs), refresh=False)
            self._bar.update(1)
            return
        width = len(str(self._epochs))
        parts = "  ".join(f"{k} {v}" for k, v in _summary(logs).items())
        t = logs.get("time")
        tail = f"  {t:.2f}s" if isinstance(t, float) else ""
        self._stream.write(f"epoch {self._done:>{width}}/{self._epochs}  {parts}{tail}\n")
        self._stream.flush()

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LambdaCallback(Callback):
    """A callback from plain functions, e.g.
    ``LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))``.

    Parameters
    ----------
    on_train_begin, on_train_end : callable, optional
        ``f(logs)``.
    on_epoch_begin, on_epoch_end, on_batch_end : callable, optional
        ``f(epoch_or_batch, logs)``.
    """

    def __init__(self, on_train_begin=None, on_train_end=None, on_epoch_begin=None,
                 on_epoch_end=None, on_batch_end=None):
        for name, fn in (("on_train_begin", on_train_begin), ("on_train_end", on_train_end),
                         ("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_batch_end", on_batch_end)):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
                setattr(self, name, fn)


class CSVLogger(Callback):
    """Append each epoch's logs (scalars: loss, val_loss, metrics, lr, time) to a CSV file.

    Parameters
    ----------
    path : str or os.PathLike
    append : bool
        Append to an existing file (no second header) instead of overwriting it.
    """

    def __init__(self, path: Any, append: bool = False):
        self.path = os.fspath(path)
        self.append = bool(append)
        self._keys: Optional[List[str]] = None
        self._file: Any = None

    def check(self, log_keys):
        _check_writable_file("CSVLogger", self.path)

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self._file = open(self.path, "a" if self.append else "w", newline="")
        self._keys = None
        if exists:
            with open(self.path, newline="") as f:
                first = f.readline().strip()
            self._keys = first.split(",")[1:] if first else None

    def on_epoch_end(self, epoch, logs=None):
        import csv

        row = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        writer = csv.writer(self._file)
        if self._keys is None:
            self._keys = list(row)
            writer.writerow(["epoch"] + self._keys)
        writer.writerow([epoch] + [repr(float(row[k])) if k in row else "" for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
