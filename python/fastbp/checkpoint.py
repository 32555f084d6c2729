"""Checkpoints: ``model.save(path)`` / ``fastbp.load(path)``.

A checkpoint is an uncompressed ``.npz`` archive (a zip of ``.npy`` arrays, CRC-checked)
without any pickle: it is read with ``allow_pickle=False``. It holds

* ``header``: UTF-8 JSON (as a ``uint8`` array) with the format name and version, the
  model class (``Sequential`` or ``MLP``), the layer spec, input width, dtype, backend, seed,
  the optimizer (name, hyper-parameters, initial learning rate, step), ``epochs_trained``,
  ``steps_trained``, the engine's RNG state ``(seed, step_counter, epoch_counter)``, the
  state of the last ``ReduceLROnPlateau`` used by ``fit`` (if any) and the name, shape and
  dtype of every array below;
* ``arena``: all parameters (the engine's flat arena, bitwise);
* ``buffer_<i>``: BatchNorm running statistics;
* ``opt_<name>``: optimizer state arrays (``exp_avg``, ``momentum_buffer``, ...).

Loading restores all of it, so training resumed from a checkpoint is bitwise the training
that never stopped. Writes are atomic: a temporary file in the target directory, flushed and
fsynced, then ``os.replace``-d over the target. A truncated, corrupted or foreign file raises
``ValueError``.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import optim as _optim

__all__ = ["save", "load", "layers_from_spec", "FORMAT", "FORMAT_VERSION"]

FORMAT = "fastbp-checkpoint"
FORMAT_VERSION = 1


# ------------------------------------------------------------------------------- spec → layers
def layers_from_spec(spec: Sequence[Dict[str, Any]]) -> List[Any]:
    """Rebuild the layer objects (``Dense``, ``Dropout``, ...) that produce ``spec``.

    Parameters
    ----------
    spec : list of dict
        A layer spec (``model.spec``, see docs/ENGINE.md).

    Returns
    -------
    list of Layer
        ``Sequential(layers_from_spec(spec), input_dim)`` has the same spec.
    """
    from . import layers as L

    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError("spec must be a non-empty list of layer dicts")
    out: List[Any] = []
    for i, d in enumerate(spec):
        if not isinstance(d, dict) or "type" not in d:
            raise ValueError(f"spec[{i}] must be a dict with a 'type'")
        kind = d["type"]
        try:
            if kind == "dense":
                out.append(L.Dense(int(d["out"]), activation=d.get("activation", "identity"),
                                   init=d.get("init"), alpha=d.get("alpha")))
            elif kind == "activation":
                out.append(L.Activation(d["activation"], alpha=d.get("alpha")))
            elif kind == "dropout":
                out.append(L.Dropout(float(d["rate"])))
            elif kind == "batchnorm":
                out.append(L.BatchNorm(eps=float(d.get("eps", 1e-5)),
                                       momentum=float(d.get("momentum", 0.1))))
            elif kind == "layernorm":
                out.append(L.LayerNorm(eps=float(d.get("eps", 1e-5))))
            elif kind == "residual":
                out.append(L.Residual(layers_from_spec(d["layers"])))
            else:
                raise ValueError(f"unknown layer type {kind!r}")
        except KeyError as e:
            raise ValueError(f"spec[{i}] ({kind}) lacks key {e.args[0]!r}") from None
    return out


# ------------------------------------------------------------------------------------ save
def _header(model: Any, arrays: Dict[str, np.ndarray]) -> Dict[str, Any]:
    from ._version import __version__

    eng = model._engine
    opt = getattr(model, "optimizer", None)
    opt_h: Optional[Dict[str, Any]] = None
    if opt is not None:
        model._sync_optimizer(opt)  # the engine holds exactly opt's hyper-parameters
        st = eng.optimizer_state()
        opt_h = {"name": opt.name, "hyper": opt.hyper(), "step": int(st["step"]),
                 "initial_lr": getattr(opt, "initial_lr", None),
                 "state": sorted(k for k in st if k != "step")}
    cls = type(model).__name__
    h: Dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "fastbp_version": __version__,
        "class": cls if cls in ("MLP", "Sequential") else "Sequential",
        "spec": model.spec,
        "input_dim": int(model.input_dim),
        "dtype": model.dtype,
        "backend": model.backend,
        "seed": int(model.seed),
        "optimizer": opt_h,
        "epochs_trained": int(getattr(model, "epochs_trained", 0)),
        "steps_trained": int(getattr(model, "steps_trained", 0)),
        "rng_state": [int(v) for v in eng.rng_state()],
        "plateau_state": _json_state(getattr(model, "_plateau_state", None)),
        "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.str} for k, a in arrays.items()},
    }
    if h["class"] == "MLP":
        h["sizes"] = [int(s) for s in model.sizes]
    return h


def _json_state(state: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """ReduceLROnPlateau state with its infinite ``best`` spelled as a string (JSON has no
    infinity)."""
    if not state:
        return None
    out = dict(state)
    if not np.isfinite(out["best"]):
        out["best"] = repr(float(out["best"]))
    return out


def save(model: Any, path: Any) -> None:
    """Write ``model`` (architecture, parameters, buffers, optimizer and its state, epoch
    and step counts, RNG state) to ``path`` atomically.

    Parameters
    ----------
    model : Sequential
    path : str or os.PathLike
        Target file; written as given (no suffix is added).
    """
    path = os.fspath(path)
    eng = model._engine
    arrays: Dict[str, np.ndarray] = {"arena": np.array(eng.arena(), copy=True)}
    for i, b in enumerate(eng.buffers()):
        arrays[f"buffer_{i}"] = np.array(b, copy=True)
    if getattr(model, "optimizer", None) is not None:
        model._sync_optimizer(model.optimizer)
        for k, v in eng.optimizer_state().items():
            if k != "step":
                arrays["opt_" + k] = np.asarray(v)
    header = _header(model, arrays)
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=blob, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - e.g. platforms without directory fsync
        pass


# ------------------------------------------------------------------------------------ load
def _read(path: str) -> tuple:
    bad = f"{path!r} is not a valid fastbp checkpoint"
    try:
        with np.load(path, allow_pickle=False) as f:
            names = set(f.files)
            if "header" not in names:
                raise ValueError(f"{bad}: it has no header entry")
            raw = f["header"]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise ValueError(f"{bad}: malformed header entry")
            try:
                header = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{bad}: garbled header ({e})") from None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError(f"{bad}: the header does not name the {FORMAT!r} format")
            if header.get("version") != FORMAT_VERSION:
                raise ValueError(f"{path!r}: checkpoint format version {header.get('version')!r} "
                                 f"is not supported (this fastbp reads version {FORMAT_VERSION})")
            expected = header.get("arrays")
            if not isinstance(expected, dict):
                raise ValueError(f"{bad}: the header lacks the array list")
            arrays = {}
            for name, meta in expected.items():
                if name not in names:
                    raise ValueError(f"{bad}: array {name!r} is missing (truncated or edited?)")
                a = f[name]
                if list(a.shape) != list(meta.get("shape", [])) or a.dtype.str != meta.get("dtype"):
                    raise ValueError(f"{bad}: array {name!r} has shape {a.shape} dtype {a.dtype}, "
                                     f"the header says {meta}")
                arrays[name] = a
    except FileNotFoundError:
        raise
    except ValueError as e:
        if str(e).startswith(repr(path)):
            raise
        raise ValueError(f"{bad}: {e}") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as e:
        raise ValueError(f"{bad} (truncated or corrupted): {type(e).__name__}: {e}") from None
    return header, arrays


def load(path: Any, backend: Optional[str] = None) -> Any:
    """Load a model saved by ``model.save`` / :func:`save`.

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
    from .model import MLP, Sequential

    path = os.fspath(path)
    header, arrays = _read(path)
    try:
        spec = header["spec"]
        dtype = header["dtype"]
        seed = int(header["seed"])
        input_dim = int(header["input_dim"])
        backend = backend or header["backend"]
        layers = layers_from_spec(spec)
        model = None
        if header["class"] == "MLP":
            model = MLP.__new__(MLP)
            model.sizes = list(header["sizes"])
            Sequential.__init__(model, layers, input_dim=input_dim, dtype=dtype, seed=seed,
                                backend=backend)
        else:
            model = Sequential(layers, input_dim=input_dim, dtype=dtype, seed=seed,
                               backend=backend)
        if model.spec != spec:
            raise ValueError("the rebuilt layer spec differs from the saved one")
        eng = model._engine
        arena = eng.arena()
        if arrays["arena"].shape != arena.shape or arrays["arena"].dtype != arena.dtype:
            raise ValueError(f"parameters have shape {arrays['arena'].shape} dtype "
                             f"{arrays['arena'].dtype}, the architecture needs {arena.shape} "
                             f"{arena.dtype}")
        bufs = eng.buffers()
        for i, b in enumerate(bufs):
            key = f"buffer_{i}"
            if key not in arrays or arrays[key].shape != b.shape:
                raise ValueError(f"buffer {i} is missing or has the wrong shape")
        arena[...] = arrays["arena"]
        for i, b in enumerate(bufs):
            b[...] = arrays[f"buffer_{i}"]
        oh = header.get("optimizer")
        if oh is not None:
            opt = _optim.from_config(oh["name"], oh["hyper"])
            if oh.get("initial_lr") is not None:
                opt.initial_lr = float(oh["initial_lr"])
            model._sync_optimizer(opt)
            state: Dict[str, Any] = {"step": int(oh["step"])}
            for k in oh["state"]:
                if "opt_" + k not in arrays:
                    raise ValueError(f"optimizer state {k!r} is missing")
                state[k] = arrays["opt_" + k]
            eng.set_optimizer_state(state)
        eng.set_rng_state(*(int(v) for v in header["rng_state"]))
        model.epochs_trained = int(header.get("epochs_trained", 0))
        model.steps_trained = int(header.get("steps_trained", 0))
        ps = header.get("plateau_state")
        if ps:
            ps = dict(ps)
            ps["best"] = float(ps["best"])
            model._plateau_state = ps
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path!r} is not a valid fastbp checkpoint: bad header "
                         f"({type(e).__name__}: {e})") from None
    return model
