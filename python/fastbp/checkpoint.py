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

import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import optim as _optim

__all__ = ["FORMAT", "FORMAT_VERSION", "from_bytes", "layers_from_spec", "load", "save",
           "to_bytes"]

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


def _write(model: Any, f: Any) -> None:
    """Write the checkpoint of ``model`` to the binary file object ``f``."""
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
    np.savez(f, header=blob, **arrays)  # type: ignore[arg-type]


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
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write(model, f)
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


def to_bytes(model: Any) -> bytes:
    """The checkpoint of ``model`` as bytes (what :func:`save` writes); used by pickle and
    ``copy.deepcopy``.

    Parameters
    ----------
    model : Sequential

    Returns
    -------
    bytes
    """
    buf = io.BytesIO()
    _write(model, buf)
    return buf.getvalue()


def from_bytes(data: bytes, backend: Optional[str] = None) -> Any:
    """The model held by checkpoint bytes from :func:`to_bytes` (validated as :func:`load`
    validates a file).

    Parameters
    ----------
    data : bytes
    backend : {"native", "reference"}, optional
        Override the saved backend.

    Returns
    -------
    Sequential or MLP
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _load(io.BytesIO(bytes(data)), "<bytes>", backend)


# ------------------------------------------------------------------------------------ load
# Loading validates before it allocates: the JSON header (bounded size, bounded nesting, every
# field's type), then the sizes the layer spec implies against the header's array list and
# against each member's .npy header and uncompressed size in the zip directory; only then is
# the model built and each array read, never decompressing more than its justified size.
_MAX_HEADER_BYTES = 1 << 24   # a header is a few KB; 16 MiB leaves room for huge specs
_MAX_WIDTH = 1 << 40          # any layer width (products of two stay below 2**80 in Python)
_MAX_NESTING = 64             # residual blocks (the native engine's limit)
_MAX_NPY_HEADER = 4096        # .npy header bytes (numpy writes ~128)
_DTYPES = {"float32": "<f4", "float64": "<f8"}


class _Bad(Exception):
    """A malformed checkpoint (turned into ValueError with the file's name)."""


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise _Bad(msg)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _width(d: Dict[str, Any], key: str, where: str) -> int:
    v = d.get(key)
    _need(_is_int(v) and 1 <= v <= _MAX_WIDTH, f"{where}[{key!r}] must be a width in "
                                                f"[1, 2**40], got {v!r}")
    return int(v)


def _spec_sizes(spec: Any, where: str = "spec", depth: int = 0) -> tuple:
    """(number of parameters, buffer lengths) a layer spec implies; checks its structure."""
    _need(depth <= _MAX_NESTING, f"{where}: residual blocks nested deeper than {_MAX_NESTING}")
    _need(isinstance(spec, list) and len(spec) > 0, f"{where} must be a non-empty list")
    params, buffers = 0, []
    for i, d in enumerate(spec):
        w = f"{where}[{i}]"
        _need(isinstance(d, dict) and isinstance(d.get("type"), str),
              f"{w} must be a dict with a string 'type'")
        kind = d["type"]
        if kind == "dense":
            params += _width(d, "in", w) * _width(d, "out", w) + _width(d, "out", w)
            continue
        dim = _width(d, "dim", w)
        if kind in ("batchnorm", "layernorm"):
            params += 2 * dim
            buffers += [dim, dim] if kind == "batchnorm" else []
        elif kind == "residual":
            p, b = _spec_sizes(d.get("layers"), w + "['layers']", depth + 1)
            params, buffers = params + p, buffers + b
        else:
            _need(kind in ("activation", "dropout"), f"{w}: unknown layer type {kind!r}")
    return params, buffers


def _check_header(h: Any) -> Dict[str, tuple]:
    """Validate the parsed header; return the arrays it implies: name -> (shape, dtype)."""
    _need(isinstance(h, dict) and h.get("format") == FORMAT,
          f"the header does not name the {FORMAT!r} format")
    if h.get("version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint format version {h.get('version')!r} is not supported "
                         f"(this fastbp reads version {FORMAT_VERSION})")
    _need(h.get("class") in ("MLP", "Sequential"), f"unknown model class {h.get('class')!r}")
    _need(h.get("dtype") in _DTYPES, f"dtype must be float32 or float64, got {h.get('dtype')!r}")
    _need(h.get("backend") in ("native", "reference"), f"bad backend {h.get('backend')!r}")
    for k in ("seed", "input_dim", "epochs_trained", "steps_trained"):
        _need(_is_int(h.get(k, 0)) and 0 <= h.get(k, 0) < 2**64, f"{k} must be an int >= 0")
    _need(h["input_dim"] >= 1, "input_dim must be >= 1")
    rng = h.get("rng_state")
    _need(isinstance(rng, list) and len(rng) == 3 and all(_is_int(v) and 0 <= v < 2**64
                                                          for v in rng), "bad rng_state")
    if h["class"] == "MLP":
        sizes = h.get("sizes")
        _need(isinstance(sizes, list) and len(sizes) >= 2 and all(_is_int(v) for v in sizes),
              "MLP sizes must be a list of ints")
    nparams, buffers = _spec_sizes(h.get("spec"))
    dt = _DTYPES[h["dtype"]]
    expected = {"arena": ((nparams,), dt)}
    expected.update({f"buffer_{i}": ((n,), dt) for i, n in enumerate(buffers)})
    oh = h.get("optimizer")
    if oh is not None:
        _need(isinstance(oh, dict) and isinstance(oh.get("name"), str)
              and isinstance(oh.get("hyper"), dict) and _is_int(oh.get("step"))
              and 0 <= oh["step"] < 2**63 and isinstance(oh.get("state"), list),
              "malformed optimizer entry")
        _need(all(isinstance(k, str) and isinstance(v, (int, float, bool, type(None)))
                  for k, v in oh["hyper"].items()), "malformed optimizer hyper-parameters")
        _need(oh.get("initial_lr") is None or isinstance(oh["initial_lr"], (int, float)),
              "malformed initial_lr")
        for k in oh["state"]:
            _need(isinstance(k, str) and k.isidentifier() and len(k) < 64,
                  f"bad optimizer state name {k!r}")
            expected["opt_" + k] = ((nparams,), dt)
    ps = h.get("plateau_state")
    _need(ps is None or (isinstance(ps, dict) and isinstance(ps.get("best"), (int, float, str))),
          "malformed plateau_state")
    arrays = h.get("arrays")
    _need(isinstance(arrays, dict), "the header lacks the array list")
    for name in expected:
        if name not in arrays:
            raise _Bad(f"array {name!r} is missing (truncated or edited?)")
    for name, meta in arrays.items():
        want = expected.get(name)
        _need(want is not None, f"unexpected array {name!r}")
        _need(isinstance(meta, dict) and meta.get("shape") == list(want[0])
              and meta.get("dtype") == want[1],
              f"array {name!r}: the header says {meta!r}, the layer spec implies shape "
              f"{want[0]} dtype {want[1]}")
    return expected


def _member(zf: zipfile.ZipFile, name: str, file_len: int) -> zipfile.ZipInfo:
    """The zip entry of array ``name``, refused unless its sizes are possible: stored or
    deflated, within the file, and its uncompressed size reachable from its compressed one
    (deflate expands at most ~1032 times), so no claim can exceed ~1032 x the file's size."""
    try:
        info = zf.getinfo(name + ".npy")
    except KeyError:
        raise _Bad(f"array {name!r} is missing (truncated or edited?)") from None
    _need(info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED),
          f"array {name!r}: unsupported compression method {info.compress_type}")
    _need(info.header_offset + info.compress_size <= file_len,
          f"array {name!r} extends past the end of the file (truncated?)")
    limit = (info.compress_size if info.compress_type == zipfile.ZIP_STORED
             else 1032 * info.compress_size + 64)
    _need(info.file_size <= limit, f"array {name!r}: {info.file_size} bytes cannot come from "
                                   f"{info.compress_size} compressed bytes")
    return info


def _npy_meta(f: Any) -> tuple:
    """(shape, fortran_order, dtype string, header bytes) from a .npy stream's header."""
    version = np.lib.format.read_magic(f)
    _need(version in ((1, 0), (2, 0), (3, 0)), f"unsupported .npy version {version}")
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read(f, max_header_size=_MAX_NPY_HEADER)
    _need(not dtype.hasobject, "object arrays are refused (they would need pickle)")
    return tuple(shape), bool(fortran), dtype.str


def _read_member(zf: zipfile.ZipFile, file_len: int, name: str, shape: tuple, dtype: str,
                 data: bool) -> Optional[np.ndarray]:
    """Check a member's .npy header and uncompressed size against (shape, dtype); with
    ``data``, read exactly the bytes that justifies (the zip CRC is checked at its end)."""
    info = _member(zf, name, file_len)
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    _need(info.file_size <= nbytes + _MAX_NPY_HEADER + 16,
          f"array {name!r}: member of {info.file_size} bytes for {nbytes} bytes of data")
    with zf.open(info) as f:
        got = _npy_meta(f)
        _need(got[0] == shape and not got[1] and got[2] == dtype,
              f"array {name!r} has shape {got[0]} dtype {got[2]}, expected {shape} {dtype}")
        _need(info.file_size == f.tell() + nbytes,
              f"array {name!r}: member size {info.file_size} does not match its header")
        if not data:
            return None
        raw = f.read(nbytes)
        _need(len(raw) == nbytes and f.read(1) == b"", f"array {name!r} is truncated")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _read_header(zf: zipfile.ZipFile, file_len: int) -> Any:
    if "header.npy" not in zf.NameToInfo:
        raise _Bad("it has no header entry")
    info = _member(zf, "header", file_len)
    _need(info.file_size <= _MAX_HEADER_BYTES, "the header entry is too large")
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_meta(f)
        _need(dtype == "|u1" and len(shape) == 1 and not fortran, "malformed header entry")
        raw = f.read(_MAX_HEADER_BYTES + 1)
    _need(len(raw) == shape[0], "malformed header entry")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _Bad(f"garbled header ({type(e).__name__}: {str(e)[:200]})") from None


def _build(header: Dict[str, Any], arrays: Dict[str, np.ndarray], backend: str) -> Any:
    """The model described by a validated header, with the arrays' contents."""
    from .model import MLP, Sequential

    spec = header["spec"]
    layers = layers_from_spec(spec)
    kw = dict(input_dim=header["input_dim"], dtype=header["dtype"], seed=header["seed"],
              backend=backend)
    if header["class"] == "MLP":
        model: Any = MLP.__new__(MLP)
        model.sizes = list(header["sizes"])
        Sequential.__init__(model, layers, **kw)
    else:
        model = Sequential(layers, **kw)
    _need(model.spec == spec, "the rebuilt layer spec differs from the saved one")
    eng = model._engine
    _need(eng.arena().shape == arrays["arena"].shape, "the parameters do not fit the spec")
    eng.arena()[...] = arrays["arena"]
    for i, b in enumerate(eng.buffers()):
        b[...] = arrays[f"buffer_{i}"]
    oh = header.get("optimizer")
    if oh is not None:
        opt = _optim.from_config(oh["name"], oh["hyper"])
        if oh.get("initial_lr") is not None:
            opt.initial_lr = float(oh["initial_lr"])
        model._sync_optimizer(opt)
        state: Dict[str, Any] = {"step": oh["step"]}
        state.update({k: arrays["opt_" + k] for k in oh["state"]})
        eng.set_optimizer_state(state)
    eng.set_rng_state(*header["rng_state"])
    model.epochs_trained = header.get("epochs_trained", 0)
    model.steps_trained = header.get("steps_trained", 0)
    ps = header.get("plateau_state")
    if ps:
        model._plateau_state = dict(ps, best=float(ps["best"]))
    return model


# Everything a malformed zip, .npy header or header field can raise while being parsed.
_MALFORMED = (_Bad, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError,
              zlib.error, NotImplementedError, RuntimeError, struct.error, OverflowError,
              TypeError, IndexError, AttributeError, RecursionError, SyntaxError, ValueError)


def _load(f: Any, name: str, backend: Optional[str]) -> Any:
    bad = f"{name!r} is not a valid fastbp checkpoint"
    if backend is not None and backend not in ("native", "reference"):
        raise ValueError(f"backend must be 'native' or 'reference', got {backend!r}")
    try:
        file_len = f.seek(0, io.SEEK_END)
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            header = _read_header(zf, file_len)
            expected = _check_header(header)
            for key, (shape, dtype) in expected.items():  # metadata only: nothing allocated
                _read_member(zf, file_len, key, shape, dtype, data=False)
            arrays = {key: _read_member(zf, file_len, key, shape, dtype, data=True)
                      for key, (shape, dtype) in expected.items()}
        return _build(header, arrays, backend or header["backend"])
    except MemoryError:
        raise
    except _MALFORMED as e:
        if isinstance(e, ValueError) and str(e).startswith("checkpoint format version"):
            raise ValueError(f"{name!r}: {e}") from None
        detail = str(e) if isinstance(e, _Bad) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{bad}: {detail[:500]}") from None


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
        If the file is truncated, corrupted, malformed, not a fastbp checkpoint, or of an
        unsupported format version. Nothing is allocated for the model before the header
        and every array's metadata agree; no member is decompressed beyond the size the
        header justifies.
    FileNotFoundError, PermissionError, IsADirectoryError
        If the file cannot be opened.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _load(f, path, backend)
