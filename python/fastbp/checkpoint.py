"""Checkpoints: the file format behind ``model.save(path)`` / ``fastbp.load(path)``.

This module turns a model's config and state (``model.get_config()``,
``model.state_dict()``) into a file or bytes and back; it knows no model class.

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
from typing import Any, Dict, Literal, Optional, Tuple, overload

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "write", "read", "dumps", "loads", "atomic_write"]

FORMAT = "fastbp-checkpoint"
FORMAT_VERSION = 1

Config = Dict[str, Any]
State = Dict[str, Any]


# ----------------------------------------------------------------------------------- write
def _arrays(state: State) -> Dict[str, np.ndarray]:
    arrays: Dict[str, np.ndarray] = {"arena": np.asarray(state["arena"])}
    for i, b in enumerate(state["buffers"]):
        arrays[f"buffer_{i}"] = np.asarray(b)
    opt = state.get("optimizer")
    if opt is not None:
        for k, v in opt["state"].items():
            arrays["opt_" + k] = np.asarray(v)
    return arrays


def _header(config: Config, state: State, arrays: Dict[str, np.ndarray]) -> Dict[str, Any]:
    from ._version import __version__

    opt = state.get("optimizer")
    opt_h = None if opt is None else {
        "name": opt["name"], "hyper": opt["hyper"], "step": int(opt["step"]),
        "initial_lr": opt.get("initial_lr"), "state": sorted(opt["state"])}
    h: Dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION,
                         "fastbp_version": __version__}
    h.update(config)
    h.update({
        "optimizer": opt_h,
        "epochs_trained": int(state.get("epochs_trained", 0)),
        "steps_trained": int(state.get("steps_trained", 0)),
        "rng_state": [int(v) for v in state["rng_state"]],
        "plateau_state": _json_state(state.get("plateau_state")),
        "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.str} for k, a in arrays.items()},
    })
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


def _write(f: Any, config: Config, state: State) -> None:
    """Write a checkpoint to the binary file object ``f``."""
    arrays = _arrays(state)
    header = _header(config, state, arrays)
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez(f, header=blob, **arrays)  # type: ignore[arg-type]


def write(path: Any, config: Config, state: State) -> None:
    """Write a model's config and state to ``path`` atomically: a temporary file in the
    target directory, flushed and fsynced, then renamed over the target.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; written as given (no suffix is added).
    config : dict
        ``model.get_config()``.
    state : dict
        ``model.state_dict()``.
    """
    atomic_write(path, dumps(config, state))


def atomic_write(path: Any, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the target's directory,
    flushed and fsynced, then renamed over ``path`` (and the rename made durable). On failure
    the temporary file is removed and ``path`` is untouched."""
    path = os.fsdecode(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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


def dumps(config: Config, state: State) -> bytes:
    """The checkpoint bytes :func:`write` would write (for pickle and ``copy.deepcopy``)."""
    buf = io.BytesIO()
    _write(buf, config, state)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ load
# Loading validates before it allocates: the JSON header (bounded size, bounded nesting, every
# field's type), then the sizes the layer spec implies against the header's array list and
# against each member's .npy header and uncompressed size in the zip directory; only then is
# the model built and each array read, never decompressing more than its justified size.
_MAX_HEADER_BYTES = 1 << 24   # a header is a few KB; 16 MiB leaves room for huge specs
_MAX_NPY_HEADER = 4096        # .npy header bytes (numpy writes ~128)
_DTYPES = {"float32": "<f4", "float64": "<f8"}


class _Bad(Exception):
    """A malformed checkpoint (turned into ValueError with the file's name)."""


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise _Bad(msg)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _spec_sizes(spec: Any) -> tuple:
    """(number of parameters, buffer lengths) a layer spec implies, from the engine's layer
    table (``_core.layer_shapes``: parses and checks the spec, allocates nothing)."""
    from . import _core

    _need(isinstance(spec, list) and len(spec) > 0, "spec must be a non-empty list")
    try:
        shapes = _core.layer_shapes(spec)
    except (ValueError, TypeError, OverflowError, MemoryError) as e:
        raise _Bad(f"bad layer spec: {str(e)[:300]}") from None
    params = sum(int(np.prod(s, dtype=object)) for _, s, _ in shapes["params"])
    return params, [int(np.prod(s, dtype=object)) for _, s in shapes["buffers"]]


def _optimizer_state_names(oh: Any) -> list:
    """Check the header's optimizer entry; return the names of its state arrays."""
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
    return list(oh["state"])


_Expected = Dict[str, Tuple[Tuple[int, ...], str]]  # array name -> (shape, dtype)


def _check_header(h: Any) -> _Expected:
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
    expected: _Expected = {"arena": ((nparams,), dt)}
    expected.update({f"buffer_{i}": ((n,), dt) for i, n in enumerate(buffers)})
    oh = h.get("optimizer")
    if oh is not None:
        for k in _optimizer_state_names(oh):
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
        if want is None:
            raise _Bad(f"unexpected array {name!r}")
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


@overload
def _read_member(zf: zipfile.ZipFile, file_len: int, name: str, shape: Tuple[int, ...],
                 dtype: str, data: Literal[True]) -> np.ndarray: ...


@overload
def _read_member(zf: zipfile.ZipFile, file_len: int, name: str, shape: Tuple[int, ...],
                 dtype: str, data: Literal[False]) -> None: ...


def _read_member(zf: zipfile.ZipFile, file_len: int, name: str, shape: Tuple[int, ...],
                 dtype: str, data: bool) -> Optional[np.ndarray]:
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


# Everything a malformed zip, .npy header or header field can raise while being parsed.
_MALFORMED = (_Bad, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError,
              zlib.error, NotImplementedError, RuntimeError, struct.error, OverflowError,
              TypeError, IndexError, AttributeError, RecursionError, SyntaxError, ValueError)

_CONFIG_KEYS = ("class", "spec", "input_dim", "dtype", "seed", "backend", "sizes")


def _state(header: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> State:
    """The model state a validated header and its arrays describe."""
    oh = header.get("optimizer")
    opt = None if oh is None else {
        "name": oh["name"], "hyper": oh["hyper"], "initial_lr": oh.get("initial_lr"),
        "step": int(oh["step"]), "state": {k: arrays["opt_" + k] for k in oh["state"]}}
    ps = header.get("plateau_state")
    n_buf = sum(1 for k in arrays if k.startswith("buffer_"))
    return {"arena": arrays["arena"], "buffers": [arrays[f"buffer_{i}"] for i in range(n_buf)],
            "optimizer": opt, "rng_state": [int(v) for v in header["rng_state"]],
            "epochs_trained": int(header.get("epochs_trained", 0)),
            "steps_trained": int(header.get("steps_trained", 0)),
            "plateau_state": dict(ps, best=float(ps["best"])) if ps else None}


def _read(f: Any, name: str) -> Tuple[Config, State]:
    bad = f"{name!r} is not a valid fastbp checkpoint"
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
        config = {k: header[k] for k in _CONFIG_KEYS if k in header}
        return config, _state(header, arrays)
    except MemoryError:
        raise
    except _MALFORMED as e:
        if isinstance(e, ValueError) and str(e).startswith("checkpoint format version"):
            raise ValueError(f"{name!r}: {e}") from None
        detail = str(e) if isinstance(e, _Bad) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{bad}: {detail[:500]}") from None


def read(path: Any) -> Tuple[Config, State]:
    """Read a checkpoint file: ``(config, state)`` as ``model.get_config()`` and
    ``model.state_dict()`` gave them.

    Raises
    ------
    ValueError
        If the file is truncated, corrupted, malformed, not a fastbp checkpoint, or of an
        unsupported format version. Nothing is allocated for the arrays before the header
        and every array's metadata agree; no member is decompressed beyond the size the
        header justifies.
    FileNotFoundError, PermissionError, IsADirectoryError
        If the file cannot be opened.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _read(f, path)


def loads(data: bytes) -> Tuple[Config, State]:
    """:func:`read` for checkpoint bytes from :func:`dumps`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _read(io.BytesIO(bytes(data)), "<bytes>")
