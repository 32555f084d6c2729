"""Learning-rate schedules with the formulas of ``torch.optim.lr_scheduler``.

A schedule maps a schedule index ``t`` (an epoch or an optimizer step, see ``schedule_per``
in :func:`fastbp.training.fit`) and the optimizer's *initial* learning rate ``base_lr`` to
the learning rate used at ``t``. The closed-form schedules are pure functions of ``t``, so a
training run split over several ``fit`` calls (or saved and resumed) follows exactly the
schedule of one uninterrupted run:

* ``schedule_per="epoch"``: ``t`` is ``model.epochs_trained`` (epochs trained so far); the
  learning rate is set before each epoch.
* ``schedule_per="step"``: ``t`` is ``model.steps_trained`` (optimizer steps taken by
  ``fit`` so far); ``fit`` computes the whole epoch's per-step rates as one array and hands
  it to the native loop (``engine.fit_epoch(..., lrs=...)``): no Python runs per step.

``base_lr`` is the optimizer's learning rate when a schedule first drives it; it is kept as
``optimizer.initial_lr`` (as torch keeps ``param_group["initial_lr"]``) and saved in
checkpoints.

:class:`ReduceLROnPlateau` is not a function of ``t``: it lowers the rate when a monitored
quantity stops improving, once per epoch.

=====================  ==============================================================
fastbp                 torch.optim.lr_scheduler
=====================  ==============================================================
``StepLR``             ``StepLR(step_size, gamma)``
``ExponentialLR``      ``ExponentialLR(gamma)``
``CosineAnnealingLR``  ``CosineAnnealingLR(T_max, eta_min)`` (its closed form)
``LinearWarmup``       ``LinearLR(start_factor, 1.0, total_iters)``, and with ``then=``
                       ``SequentialLR([LinearLR(...), then], milestones=[warmup_steps])``
``LambdaLR``           ``LambdaLR(lr_lambda)``
``ReduceLROnPlateau``  ``ReduceLROnPlateau(mode, factor, patience, threshold, ...)``
=====================  ==============================================================
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Dict, Optional

import numpy as np

__all__ = ["Schedule", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmup",
           "LambdaLR", "ReduceLROnPlateau"]


def _pos_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _real(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf,
          lo_open: bool = False, hi_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    bad = (not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo)
           or (hi_open and v == hi))
    if bad:
        lb = "(" if lo_open else "["
        hb = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{hb}, got {value!r}")
    return v


class Schedule:
    """Base class of the closed-form schedules: ``lr = f(t, base_lr)``.

    Subclasses implement :meth:`_lrs` on an integer array of indices.
    """

    def _lrs(self, t: np.ndarray, base_lr: float) -> np.ndarray:
        raise NotImplementedError

    def lr(self, t: int, base_lr: float) -> float:
        """Learning rate at schedule index ``t``.

        Parameters
        ----------
        t : int
            Epoch or step index, ``>= 0``.
        base_lr : float
            The optimizer's initial learning rate.

        Returns
        -------
        float
        """
        return float(self.lrs(t, 1, base_lr)[0])

    def lrs(self, start: int, count: int, base_lr: float) -> np.ndarray:
        """Learning rates at indices ``start, start + 1, ..., start + count - 1``.

        Parameters
        ----------
        start : int
            First index, ``>= 0``.
        count : int
            Number of rates, ``>= 0``.
        base_lr : float
            The optimizer's initial learning rate.

        Returns
        -------
        numpy.ndarray
            ``float64`` array of shape ``(count,)``, finite and non-negative.
        """
        if isinstance(start, bool) or not isinstance(start, numbers.Integral) or start < 0:
            raise ValueError(f"start must be a non-negative integer, got {start!r}")
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        base_lr = _real("base_lr", base_lr, 0.0)
        t = np.arange(int(start), int(start) + int(count), dtype=np.int64)
        out = np.asarray(self._lrs(t, base_lr), dtype=np.float64).reshape(t.shape)
        if not np.all(np.isfinite(out)) or np.any(out < 0):
            raise ValueError(f"{type(self).__name__} produced a non-finite or negative "
                             "learning rate")
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class StepLR(Schedule):
    """Decay by ``gamma`` every ``step_size`` indices: ``base_lr * gamma ** (t // step_size)``.

    Parameters
    ----------
    step_size : int
        Period of the decay, ``>= 1``.
    gamma : float
        Multiplicative factor (torch default 0.1).
    """

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = _pos_int("step_size", step_size)
        self.gamma = _real("gamma", gamma, 0.0)

    def _lrs(self, t, base_lr):
        return base_lr * self.gamma ** (t // self.step_size).astype(np.float64)


class ExponentialLR(Schedule):
    """Decay by ``gamma`` every index: ``base_lr * gamma ** t``.

    Parameters
    ----------
    gamma : float
        Multiplicative factor, ``>= 0``.
    """

    def __init__(self, gamma: float):
        self.gamma = _real("gamma", gamma, 0.0)

    def _lrs(self, t, base_lr):
        return base_lr * self.gamma ** t.astype(np.float64)


class CosineAnnealingLR(Schedule):
    """Cosine annealing: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    The closed form of torch's ``CosineAnnealingLR`` (without restarts): the rate reaches
    ``eta_min`` at ``t = T_max`` and, past it, follows the cosine back up, as torch does.

    Parameters
    ----------
    T_max : int
        Half period, ``>= 1``.
    eta_min : float
        Minimum learning rate (default 0).
    """

    def __init__(self, T_max: int, eta_min: float = 0.0):
        self.T_max = _pos_int("T_max", T_max)
        self.eta_min = _real("eta_min", eta_min, 0.0)

    def _lrs(self, t, base_lr):
        return self.eta_min + (base_lr - self.eta_min) * (
            1.0 + np.cos(math.pi * t.astype(np.float64) / self.T_max)) / 2.0


class LambdaLR(Schedule):
    """``base_lr * fn(t)`` for a user function ``fn`` (torch ``LambdaLR``).

    Parameters
    ----------
    fn : callable
        ``fn(t: int) -> float``, a non-negative factor.
    """

    def __init__(self, fn: Callable[[int], float]):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def _lrs(self, t, base_lr):
        return np.array([base_lr * float(self.fn(int(i))) for i in t], dtype=np.float64)


class LinearWarmup(Schedule):
    """Linear warm-up from ``start_factor * base_lr`` to ``base_lr`` over ``warmup_steps``
    indices, then constant or another schedule.

    ``t < warmup_steps``: ``base_lr * (start_factor + (1 - start_factor) * t / warmup_steps)``
    (torch ``LinearLR(start_factor, end_factor=1.0, total_iters=warmup_steps)``);
    ``t >= warmup_steps``: ``base_lr``, or ``then`` evaluated at ``t - warmup_steps`` (torch
    ``SequentialLR([LinearLR(...), then], milestones=[warmup_steps])``), e.g. warm-up then
    cosine annealing::

        LinearWarmup(500, start_factor=0.01, then=CosineAnnealingLR(T_max=9500))

    Parameters
    ----------
    warmup_steps : int
        Length of the warm-up, in schedule indices (epochs or steps, see ``schedule_per``).
    start_factor : float
        Factor of ``base_lr`` at ``t = 0``, in ``(0, 1]`` (torch default 1/3).
    then : Schedule, optional
        The schedule that follows the warm-up.
    """

    def __init__(self, warmup_steps: int, start_factor: float = 1.0 / 3.0,
                 then: Optional[Schedule] = None):
        self.warmup_steps = _pos_int("warmup_steps", warmup_steps)
        self.start_factor = _real("start_factor", start_factor, 0.0, 1.0, lo_open=True)
        if then is not None and not isinstance(then, Schedule):
            raise TypeError("then must be a closed-form fastbp.schedules.Schedule (not "
                            f"ReduceLROnPlateau), got {type(then).__name__}")
        self.then = then

    def _lrs(self, t, base_lr):
        w = self.warmup_steps
        tf = np.minimum(t, w).astype(np.float64)
        out = base_lr * (self.start_factor + (1.0 - self.start_factor) * tf / w)
        if self.then is not None:
            after = t >= w
            if np.any(after):
                ta = t[after] - w
                out[after] = self.then._lrs(ta, base_lr)
        return out


class ReduceLROnPlateau:
    """Lower the learning rate when a monitored quantity stops improving (torch
    ``ReduceLROnPlateau``, evaluated once per epoch by ``fit``).

    After each epoch, with ``current = logs[monitor]``: if ``current`` improves on the best
    value so far (``mode="min"``, ``threshold_mode="rel"``: ``current < best * (1 -
    threshold)``; ``"abs"``: ``current < best - threshold``; mirrored for ``"max"``), the
    count of bad epochs resets, otherwise it grows; when it exceeds ``patience`` the rate
    becomes ``max(lr * factor, min_lr)`` (skipped if the change is below ``eps``), the count
    resets and ``cooldown`` epochs follow in which bad epochs are not counted.

    Parameters
    ----------
    monitor : str
        Key of the epoch logs, e.g. ``"val_loss"`` or ``"loss"``.
    factor : float
        In ``(0, 1)``; torch default 0.1.
    patience : int
        Bad epochs tolerated before lowering (torch default 10).
    min_lr : float
        Lower bound of the rate.
    threshold : float
        Minimum significant improvement (torch default 1e-4).
    mode : {"min", "max"}
        ``"auto"`` picks ``"max"`` for accuracy-like monitors, ``"min"`` otherwise.
    threshold_mode : {"rel", "abs"}
    cooldown : int
        Epochs to wait after a reduction before counting bad epochs again.
    eps : float
        Reductions smaller than this are ignored (torch default 1e-8).

    Notes
    -----
    ``fit`` stores the state (:meth:`state_dict`) on the model after every epoch and
    checkpoints save it; a *fresh* ``ReduceLROnPlateau`` (never stepped) given to ``fit`` on
    a loaded model adopts that state, so a resumed run reduces the rate exactly when the
    uninterrupted run would.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_lr: float = 0.0, threshold: float = 1e-4, mode: str = "auto",
                 threshold_mode: str = "rel", cooldown: int = 0, eps: float = 1e-8):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string, got {type(monitor).__name__}")
        self.monitor = monitor
        self.factor = _real("factor", factor, 0.0, 1.0, lo_open=True, hi_open=True)
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.patience = int(patience)
        self.min_lr = _real("min_lr", min_lr, 0.0)
        self.threshold = _real("threshold", threshold, 0.0)
        if mode == "auto":
            mode = "max" if ("acc" in monitor or "accuracy" in monitor) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.mode = mode
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        if isinstance(cooldown, bool) or not isinstance(cooldown, numbers.Integral) or cooldown < 0:
            raise ValueError(f"cooldown must be a non-negative integer, got {cooldown!r}")
        self.cooldown = int(cooldown)
        self.eps = _real("eps", eps, 0.0)
        self.reset()

    def reset(self) -> None:
        """Forget the best value and the counters."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0  # epochs seen (0: fresh, may adopt a checkpoint's state)

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (1.0 + self.threshold)
        return a > best + self.threshold

    def step(self, metric: float, lr: float) -> float:
        """Record one epoch's ``metric``; return the learning rate for the next epoch.

        Parameters
        ----------
        metric : float
            The monitored value of the epoch just finished.
        lr : float
            The current learning rate.

        Returns
        -------
        float
            The (possibly lowered) learning rate.
        """
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(lr * self.factor, self.min_lr)
            if lr - new_lr > self.eps:
                lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return lr

    def state_dict(self) -> Dict[str, Any]:
        """The mutable state (best value and counters)."""
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.last_epoch = int(state.get("last_epoch", 0))

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, "
                f"patience={self.patience}, min_lr={self.min_lr}, threshold={self.threshold}, "
                f"mode={self.mode!r})")
