"""Data-parallel training over MPI: ``model.train_step(..., comm=)``, ``model.fit(..., comm=)``.

Every rank holds a full copy of the model and its own rows of the data. One step:

1. each rank runs the training forward/backward on its own rows (the gradients land in the
   engine's flat gradient arena, ``engine.compute_gradients``);
2. each rank scales its gradient by ``W_r / W`` (``W_r``: its rows, or its sample-weight sum;
   ``W``: the sum over ranks), so that the sum over ranks is the gradient of the loss averaged
   as if the batch were the concatenation of all ranks' rows;
3. ONE in-place ``Allreduce`` (sum) of the whole gradient arena;
4. each rank applies the optimizer to the reduced gradient (``engine.apply_gradients``: clip,
   update). Every rank applies the same update to the same parameters, so the ranks stay
   bitwise identical (given an MPI whose allreduce hands every rank the same bits, as Open MPI
   and MPICH do for sums: with 2 ranks ``a + b == b + a`` exactly; :func:`check_identical`
   verifies it).

At the start (the first ``train_step`` with a communicator, every ``fit``) the ranks first agree:
an ``allgather`` of a fingerprint (architecture, dtype, backend, optimizer, and for ``fit``
every argument that decides how many collective calls follow) and of each rank's local
validation error. A mismatch or an error on any rank raises on EVERY rank (the rank at fault
re-raises its own exception, the others a ``ValueError`` naming it) and leaves every model as
it was; nothing can hang there. Then rank 0's parameters, BatchNorm statistics, optimizer
state, RNG state and counters are broadcast.

Details (docs/SCALING.md has the full rules and the measured costs):

* ``fit``: ``batch_size`` is per rank (global batch ``R * batch_size``). Every rank runs the
  same number of steps per epoch, ``ceil(max_r n_r / batch_size)``; a rank whose shard is used
  up contributes zero rows (a zero gradient with weight 0) to the remaining steps. So each epoch
  visits every row of every shard exactly once. Each rank shuffles its own shard with its own
  stream. The epoch loss is the global one: ``sum_steps loss_step * rows_step / rows``.
* Dropout masks and shuffles use a per-rank stream (the seed offset by the rank; rank 0 uses
  the model's seed), so masks are independent across ranks; the RNG counters advance as in a
  single process and are identical on every rank.
* BatchNorm normalises with each rank's own batch statistics (as PyTorch's
  DistributedDataParallel without SyncBatchNorm); the running statistics are replaced by their
  mean over ranks after every ``train_step`` and at the end of every ``fit`` epoch.
* Validation and metrics are computed by each rank on its own data; the scalars in the logs
  are averaged over ranks weighted by each rank's row count (exact for accuracy, mse, mae and
  unweighted losses), ``time`` is the slowest rank's, ``grad_norm`` is the mean over ranks. All
  ranks see the same logs, so callbacks decide the same way. ``ModelCheckpoint``,
  ``CSVLogger`` and ``ProgressBar`` (any callback with ``rank_zero_only = True``) run on rank 0
  only. :func:`save` writes a checkpoint from rank 0.
* Threads: the first agreement sets the engine's threads to :func:`threads_per_rank` unless the
  user chose a count (``fastbp.set_num_threads`` or ``OMP_NUM_THREADS``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .registry import resolve_loss

__all__ = [
    "apply_thread_rule",
    "budget_dask_threads",
    "check_identical",
    "local_size",
    "save",
    "threads_per_rank",
]

_RANK_STRIDE = 0x9E3779B97F4A7C15  # odd: distinct ranks get distinct seeds mod 2**64


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - mpi4py is in the mpi and test extras
        return None
    return MPI


def _check_comm(comm: Any) -> Any:
    """``comm`` if it is a usable mpi4py intra-communicator, else TypeError."""
    if "mpi4py.MPI" not in sys.modules:  # no communicator can exist: don't start MPI here
        raise TypeError(f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), got "
                        f"{type(comm).__name__}")
    MPI = _mpi()
    if not isinstance(comm, MPI.Intracomm) or comm == MPI.COMM_NULL:
        raise TypeError(f"comm must be an mpi4py intra-communicator (e.g. MPI.COMM_WORLD), "
                        f"got {type(comm).__name__}")
    return comm


# ------------------------------------------------------------------------------ threads
def local_size(comm: Any) -> int:
    """Number of ranks of ``comm`` on this machine (collective: every rank must call it)."""
    MPI = _mpi()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return int(node.Get_size())
    finally:
        node.Free()


def threads_per_rank(local_ranks: int) -> int:
    """The thread rule: ``max(1, cores // local_ranks)``, and never more than the cores this
    process may run on (an MPI that binds each rank to a core leaves it 1).

    Parameters
    ----------
    local_ranks : int
        Processes sharing this machine (MPI ranks, or dask worker threads).

    Returns
    -------
    int
        Threads for each of them.
    """
    cores = os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = cores
    return max(1, min(allowed, cores // max(1, int(local_ranks))))


def apply_thread_rule(local_ranks: int) -> int | None:
    """Set the engine's threads to :func:`threads_per_rank` unless the user chose a count
    (``fastbp.set_num_threads`` was called, or ``OMP_NUM_THREADS`` is set).

    Returns
    -------
    int or None
        The count set, or None when the user's choice was kept.
    """
    from . import _runtime

    if _runtime.threads_chosen_by_user() or os.environ.get("OMP_NUM_THREADS"):
        return None
    n = threads_per_rank(local_ranks)
    _runtime._set_threads(n)
    return n


def _host(address: str) -> str:
    """The machine of a dask address: ``tcp://10.0.0.5:4567`` -> ``10.0.0.5``,
    ``inproc://10.0.0.5/123/4`` (a worker thread of process 123) -> ``10.0.0.5``."""
    return address.split("://")[-1].split("/")[0].rsplit(":", 1)[0]


def budget_dask_threads(client: Any) -> dict[str, int]:
    """Register :class:`ThreadBudget` on a dask ``client``: each worker process runs
    ``threads_per_rank(worker threads on its host)`` engine threads, so that the tasks running
    side by side on a machine never ask for more threads than it has cores.

    Parameters
    ----------
    client : dask.distributed.Client

    Returns
    -------
    dict
        Host -> worker threads counted on it.
    """
    from ._dask import ThreadBudget

    per_host: dict[str, int] = {}
    for addr, w in client.scheduler_info()["workers"].items():
        per_host[_host(addr)] = per_host.get(_host(addr), 0) + int(w.get("nthreads", 1))
    client.register_plugin(ThreadBudget(per_host))
    return per_host


# ------------------------------------------------------------------------------ session
def _fingerprint(model: Any, extra: Any = None) -> str:
    opt = getattr(model, "optimizer", None)
    payload = {
        "class": type(model).__name__, "spec": model.spec, "dtype": model.dtype,
        "backend": model.backend, "num_params": model.num_params,
        "optimizer": None if opt is None else [opt.name, sorted(opt.hyper().items())],
        "args": extra,
    }
    return json.dumps(payload, sort_keys=True, default=repr)


def _plain(v: Any) -> Any:
    """A JSON-able, address-free description of an argument (for the fingerprint)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if hasattr(v, "hyper") and hasattr(v, "name"):  # an optimizer
        return [v.name, _plain(v.hyper())]
    attrs = sorted(vars(v).items()) if hasattr(v, "__dict__") else []
    fields = {k: _plain(x) for k, x in attrs if isinstance(x, (bool, int, float, str, type(None)))}
    return [type(v).__name__, fields]


def _differences(fp0: str, fp1: str) -> str:
    """What differs between two fingerprints, e.g. ``dtype: float64 vs float32``."""
    a, b = json.loads(fp0), json.loads(fp1)
    flat_a = dict(a, **{f"argument {k}": v for k, v in (a.pop("args") or {}).items()})
    flat_b = dict(b, **{f"argument {k}": v for k, v in (b.pop("args") or {}).items()})
    out = []
    for k in sorted(set(flat_a) | set(flat_b)):
        va, vb = flat_a.get(k), flat_b.get(k)
        if va != vb:
            out.append(f"{k}: {'(layer list)' if k == 'spec' else va} vs "
                       f"{'(layer list)' if k == 'spec' else vb}")
    return "; ".join(out)


def _error_text(err: BaseException | None) -> str | None:
    return None if err is None else f"{type(err).__name__}: {err}"


class _Session:
    """The state of one model on one communicator (kept on the model as ``_dist``)."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank = int(comm.Get_rank())
        self.size = int(comm.Get_size())
        self.ready = False  # first agreement + state broadcast done (train_step)
        self.shard_rows: list[int] = []
        self.val_rows: list[int] = []

    def rank_seed(self, seed: int) -> int:
        return (int(seed) + self.rank * _RANK_STRIDE) % (1 << 64)

    # -- agreement ----------------------------------------------------------------------
    def agree(self, model: Any, err: BaseException | None, fingerprint: str,
              what: str, extra: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
        """Collective: raise on every rank if any rank failed or the fingerprints differ.
        Returns every rank's ``extra``."""
        got = self.comm.allgather((fingerprint, _error_text(err), tuple(extra)))
        if err is not None:
            raise err
        for r, (_, msg, _) in enumerate(got):
            if msg is not None:
                raise ValueError(f"{what} failed on rank {r} of {self.size}: {msg}")
        if any(fp != got[0][0] for fp, _, _ in got):
            bad = next(r for r, (fp, _, _) in enumerate(got) if fp != got[0][0])
            raise ValueError(
                f"{what}: the model or the arguments differ across ranks (every rank must "
                f"pass the same architecture, dtype, backend, optimizer and arguments); "
                f"rank 0 vs rank {bad}: {_differences(got[0][0], got[bad][0])}")
        _apply_threads_once(self.comm)
        return [e for _, _, e in got]

    def broadcast_state(self, model: Any) -> None:
        """Collective: every rank takes rank 0's parameters, buffers, optimizer state, RNG
        state and counters."""
        comm, eng = self.comm, model._engine
        comm.Bcast(eng.arena(), root=0)
        for b in eng.buffers():
            comm.Bcast(b, root=0)
        state = eng.optimizer_state()
        for k in sorted(state):
            if k != "step":
                comm.Bcast(state[k], root=0)
        opt = model.optimizer
        meta = comm.bcast((int(state["step"]), tuple(int(v) for v in eng.rng_state()),
                           int(model.seed), int(model.epochs_trained), int(model.steps_trained),
                           None if opt is None else getattr(opt, "initial_lr", None)), root=0)
        state["step"] = meta[0]
        eng.set_optimizer_state(state)
        eng.set_rng_state(*meta[1])
        model.seed, model.epochs_trained, model.steps_trained = meta[2], meta[3], meta[4]
        if opt is not None and meta[5] is not None:
            opt.initial_lr = meta[5]

    # -- per-step pieces ----------------------------------------------------------------
    def local_gradients(self, model: Any, X: np.ndarray, y: np.ndarray,
                        w: np.ndarray | None, loss: str, lp: dict[str, Any]) -> float:
        """Forward/backward on this rank's rows into the gradient arena, with this rank's
        dropout stream; the RNG step counter ends one step on, with the common seed."""
        eng = model._engine
        seed, step, epoch = (int(v) for v in eng.rng_state())
        eng.set_rng_state(self.rank_seed(seed), step, epoch)
        try:
            return float(eng.compute_gradients(X, y, loss, lp, w))
        finally:
            eng.set_rng_state(seed, step + 1, epoch)

    def allreduce_gradients(self, model: Any, scale: float) -> None:
        """Scale this rank's gradient by ``scale`` and sum the arena over ranks, in place."""
        g = model._engine.grad_arena()
        if scale == 0.0:
            g.fill(0)
        elif scale != 1.0:
            np.multiply(g, g.dtype.type(scale), out=g)
        if self.size > 1:
            self.comm.Allreduce(_mpi().IN_PLACE, g, op=_mpi().SUM)

    def sync_buffers(self, model: Any) -> None:
        """Replace the BatchNorm running statistics by their mean over ranks."""
        bufs = model._engine.buffers()
        if not bufs or self.size == 1:
            return
        flat = np.concatenate([b.ravel() for b in bufs])
        self.comm.Allreduce(_mpi().IN_PLACE, flat, op=_mpi().SUM)
        flat *= flat.dtype.type(1.0 / self.size)
        off = 0
        for b in bufs:
            b[...] = flat[off:off + b.size].reshape(b.shape)
            off += b.size


_THREADS_DONE = [False]


def _apply_threads_once(comm: Any) -> None:
    if not _THREADS_DONE[0]:
        _THREADS_DONE[0] = True
        apply_thread_rule(local_size(comm))


def _session(model: Any, comm: Any) -> _Session:
    _check_comm(comm)
    s = getattr(model, "_dist", None)
    if s is None or s.comm != comm:
        s = _Session(comm)
        model._dist = s
    return s


# ------------------------------------------------------------------------------ train_step
def train_step(model: Any, X: Any, y: Any, loss: str, optimizer: Any, sample_weight: Any,
               comm: Any, loss_params: dict[str, Any]) -> float:
    """``model.train_step(..., comm=comm)``: one data-parallel step (module docstring).

    Returns the loss of the global batch (all ranks' rows), penalties included; identical on
    every rank."""
    s = _session(model, comm)
    eng = model._engine
    err: BaseException | None = None
    undo = None
    Xa = ya = wa = None
    try:
        loss = resolve_loss(loss)
        Xa, ya, wa = model._X(X), model._y(y, loss), model._w(sample_weight)
        if wa is not None and wa.ndim == 1 and not wa.sum(dtype=np.float64) > 0:
            # a rank may hold only zero weights: its rows then count for nothing
            if not (np.all(np.isfinite(wa)) and wa.min(initial=0) >= 0):
                raise ValueError("sample_weight must be finite and >= 0")
            if wa.shape[0] != Xa.shape[0]:
                raise ValueError(f"X has {Xa.shape[0]} rows but sample_weight has "
                                 f"{wa.shape[0]}")
            eng.check_batch(Xa, ya, loss, loss_params, None)
        else:
            eng.check_batch(Xa, ya, loss, loss_params, wa)
        undo = model.set_optimizer(optimizer)
    except Exception as e:  # noqa: BLE001 -- agreed with the other ranks, then re-raised
        err = e
    if not s.ready:
        try:
            s.agree(model, err, _fingerprint(model), "train_step")
        except BaseException:
            if undo is not None:
                undo()
            raise
        s.broadcast_state(model)
        s.ready = True
    rng = tuple(eng.rng_state())
    saved = [b.copy() for b in eng.buffers()]
    value, weight = 0.0, 0.0
    if err is None and wa is not None and not wa.sum(dtype=np.float64) > 0:
        eng.set_rng_state(rng[0], rng[1] + 1, rng[2])  # no rows that count on this rank
    elif err is None:
        try:
            assert Xa is not None and ya is not None  # converted above, as err is None
            value = s.local_gradients(model, Xa, ya, wa, loss, loss_params)
            weight = float(Xa.shape[0]) if wa is None else float(wa.sum(dtype=np.float64))
        except Exception as e:  # noqa: BLE001 -- agreed with the other ranks, then re-raised
            err = e
    red = np.array([0.0 if err is None else 1.0, weight, weight * value])
    if s.size > 1:
        comm.Allreduce(_mpi().IN_PLACE, red, op=_mpi().SUM)
    if red[0] == 0 and not red[1] > 0:
        err = ValueError("sample_weight must have a positive sum over all ranks")
    if red[0] > 0 or err is not None:  # every rank leaves its model as it was and raises
        eng.set_rng_state(*rng)
        for b, v in zip(eng.buffers(), saved):
            b[...] = v
        if undo is not None:
            undo()
        _raise_collective(s, err, "train_step")
    s.allreduce_gradients(model, weight / red[1])
    eng.apply_gradients()
    s.sync_buffers(model)
    return float(red[2] / red[1])


def _raise_collective(s: _Session, err: BaseException | None, what: str) -> None:
    msgs = s.comm.allgather(_error_text(err))
    if err is not None:
        raise err
    r = next(i for i, m in enumerate(msgs) if m)
    raise ValueError(f"{what} failed on rank {r} of {s.size}: {msgs[r]}")


# ------------------------------------------------------------------------------ fit
_RANK_ZERO_ONLY = ("ModelCheckpoint", "CSVLogger", "ProgressBar")


def _has_batchnorm(spec: Sequence[dict[str, Any]]) -> bool:
    return any(layer["type"] == "batchnorm"
               or (layer["type"] == "residual" and _has_batchnorm(layer["layers"]))
               for layer in spec)


class _FitRunner:
    """The hooks ``training.fit`` calls when ``comm`` is given."""

    def __init__(self, session: _Session, fingerprint: str) -> None:
        self.s = session
        self.fingerprint = fingerprint
        self.pending = True  # the agreement has not run yet
        self.started = False
        self.total_rows = 0
        self.steps = 0  # per epoch, the same on every rank (set by begin)

    # -- called by training.fit after its validation, before any training ----------------
    def begin(self, model: Any, n: int, n_val: int, batch_size: int) -> int:
        """Agree (collective), broadcast rank 0's state; returns the steps per epoch."""
        self.pending = False
        err: BaseException | None = None
        b = batch_size
        if _has_batchnorm(model.spec) and (b < 2 or n % b == 1):
            err = ValueError(f"batchnorm: this rank's shard of {n} rows leaves a mini-batch "
                             f"of 1 row with batch_size={b}; choose another batch_size")
        extras = self.s.agree(model, err, self.fingerprint, "fit", (n, n_val))
        self.s.shard_rows = [e[0] for e in extras]
        self.s.val_rows = [e[1] for e in extras]
        self.total_rows = sum(self.s.shard_rows)
        self.s.broadcast_state(model)
        self.s.ready = True
        self.started = True
        self.steps = -(-max(self.s.shard_rows) // b)
        return self.steps

    def callbacks(self, cbs: Sequence[Any]) -> list[Any]:
        """The callbacks this rank runs (file writers and progress on rank 0 only)."""
        if self.s.rank == 0:
            return list(cbs)
        return [cb for cb in cbs if not (getattr(cb, "rank_zero_only", False)
                                         or type(cb).__name__ in _RANK_ZERO_ONLY)]

    # -- one epoch --------------------------------------------------------------------
    def train_epoch(self, model: Any, eng: Any, X: np.ndarray, y: np.ndarray,
                    w: np.ndarray | None, loss: str, loss_params: dict[str, Any],
                    batch_size: int, shuffle: bool, lrs: np.ndarray | None
                    ) -> tuple[float, int]:
        """One data-parallel epoch (per step: local gradients, one allreduce, the update).
        Returns (global epoch loss, steps)."""
        s, b, n = self.s, batch_size, X.shape[0]
        steps = -(-max(s.shard_rows) // b)
        seed, step0, epoch = (int(v) for v in eng.rng_state())
        if shuffle:  # the engine's shuffle, with this rank's seed
            eng.set_rng_state(s.rank_seed(seed), step0, epoch)
            perm = eng.permutation(n)
            eng.set_rng_state(seed, step0, epoch)
            X, y = X[perm], y[perm]
            w = None if w is None else w[perm]
        rows = np.array([[max(0, min(b, m - k * b)) for m in s.shard_rows]
                         for k in range(steps)], dtype=np.float64)  # (steps, ranks)
        step_rows = rows.sum(axis=1)
        if w is None:
            mine, total = rows[:, s.rank], step_rows
        else:
            mine = np.array([w[k * b:(k + 1) * b].sum(dtype=np.float64) for k in range(steps)])
            total = mine.copy()
            if s.size > 1:
                s.comm.Allreduce(_mpi().IN_PLACE, total, op=_mpi().SUM)
        saved_lr = float(model.optimizer.lr)
        acc = 0.0
        for k in range(steps):
            lo, hi = k * b, min(n, (k + 1) * b)
            # a global batch of zero weight applies a zero gradient (as one process does
            # without penalties)
            scale = mine[k] / total[k] if total[k] > 0 else 0.0
            if hi > lo and mine[k] > 0:
                v = s.local_gradients(model, X[lo:hi], y[lo:hi], None if w is None else w[lo:hi],
                                      loss, loss_params)
                acc += v * scale * step_rows[k] / self.total_rows
            else:
                eng.set_rng_state(seed, step0 + k + 1, epoch)
            s.allreduce_gradients(model, scale)
            if lrs is not None:
                eng.set_lr(float(lrs[k]))
            eng.apply_gradients()
        eng.set_rng_state(seed, step0 + steps, epoch + (1 if shuffle else 0))
        if lrs is not None:
            eng.set_lr(saved_lr)
        s.sync_buffers(model)
        return float(sum(s.comm.allgather(acc))), steps

    # -- logs -------------------------------------------------------------------------
    def reduce_logs(self, logs: dict[str, Any]) -> dict[str, Any]:
        """The same logs on every rank: scalars averaged over ranks weighted by their rows
        (``val_*`` by their validation rows), ``time`` the maximum, ``grad_norm`` the mean,
        ``loss`` and ``lr`` as they are (already global)."""
        s = self.s
        everyone = s.comm.allgather(logs)
        keys = list(dict.fromkeys(k for d in everyone for k in d))
        out: dict[str, Any] = {}
        for key in keys:
            have = [(r, d[key]) for r, d in enumerate(everyone) if key in d]
            first = have[0][1]
            if key in ("loss", "lr"):
                out[key] = first
            elif key == "time":
                out[key] = max(v for _, v in have)
            elif key == "grad_norm":
                out[key] = [float(np.mean(col)) for col in zip(*(v for _, v in have))]
            elif isinstance(first, (int, float, np.floating)):
                rows = s.val_rows if key.startswith("val_") else s.shard_rows
                tot = sum(rows[r] for r, _ in have)
                out[key] = (float(sum(float(v) * rows[r] for r, v in have) / tot) if tot
                            else float(first))
            else:
                out[key] = first
        return out


def fit(model: Any, X: Any, y: Any, comm: Any, **kwargs: Any) -> Any:
    """``model.fit(X_shard, y_shard, ..., comm=comm)``: data-parallel ``fit`` (module
    docstring). Every rank must call it with the same arguments except the data."""
    from . import training

    s = _session(model, comm)
    snapshot = _snapshot(model)
    args = {k: v for k, v in kwargs.items()
            if k not in ("validation_data", "callbacks", "progress", "sample_weight")}
    args["sample_weight"] = kwargs.get("sample_weight") is not None
    args["validation_data"] = kwargs.get("validation_data") is not None
    runner = _FitRunner(s, _fingerprint(model, {k: _plain(v) for k, v in args.items()}))
    try:
        if kwargs.get("steps_per_callback") is not None:
            raise ValueError("steps_per_callback is not supported with comm: a data-parallel "
                             "epoch returns to Python at every step already")
        return training.fit(model, X, y, _runner=runner, **kwargs)
    except BaseException as e:
        if runner.pending:  # this rank failed before the agreement: tell the others
            runner.pending = False
            with contextlib.suppress(BaseException):  # re-raises e, raised below anyway
                s.agree(model, e, runner.fingerprint, "fit")
        if not runner.started:
            _restore(model, snapshot)
        raise


def _snapshot(model: Any) -> tuple[Any, ...]:
    eng = model._engine
    opt = model.optimizer
    state = eng.optimizer_state() if opt is not None else None
    return (opt, model._opt_version, getattr(model, "_opt_synced", None), state)


def _restore(model: Any, snap: tuple[Any, ...]) -> None:
    opt, version, synced, state = snap
    if model.optimizer is opt and model._opt_version == version:
        return
    if opt is not None:
        name, hyper = synced if synced is not None else (opt.name, opt.hyper())
        model._engine.set_optimizer(name, hyper, True)
        model._engine.set_optimizer_state(state)
    model.optimizer, model._opt_version, model._opt_synced = opt, version, synced


# ------------------------------------------------------------------------------ utilities
def check_identical(model: Any, comm: Any) -> bool:
    """Collective: whether parameters, buffers, optimizer state and RNG state are bitwise
    identical on every rank of ``comm``.

    Parameters
    ----------
    model : Sequential
    comm : mpi4py.MPI.Intracomm

    Returns
    -------
    bool
        The same answer on every rank.
    """
    _check_comm(comm)
    eng = model._engine
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(eng.arena()).tobytes())
    for b in eng.buffers():
        h.update(np.ascontiguousarray(b).tobytes())
    state = eng.optimizer_state()
    for k in sorted(state):
        h.update(k.encode())
        h.update(np.ascontiguousarray(state[k]).tobytes())
    h.update(repr((tuple(int(v) for v in eng.rng_state()), model.epochs_trained,
                   model.steps_trained)).encode())
    digests = comm.allgather(h.hexdigest())
    return all(d == digests[0] for d in digests)


def save(model: Any, path: Any, comm: Any) -> None:
    """Collective: rank 0 writes the checkpoint (``model.save(path)``); every rank returns
    once the file is complete, so ``fastbp.load(path)`` works on all of them afterwards.

    Parameters
    ----------
    model : Sequential
    path : str or os.PathLike
    comm : mpi4py.MPI.Intracomm
    """
    _check_comm(comm)
    err = None
    if comm.Get_rank() == 0:
        try:
            model.save(path)
        except Exception as e:  # noqa: BLE001 -- reported to every rank, then re-raised
            err = e
    msg = comm.bcast(_error_text(err), root=0)
    if err is not None:
        raise err
    if msg is not None:
        raise OSError(f"save failed on rank 0: {msg}")
