"""safetensors files: ``model.save("m.safetensors")`` and ``fastbp.load("m.safetensors")``.

The file is a standard safetensors file (an 8-byte little-endian header length, a JSON
header, the raw little-endian tensor bytes), written and read here with NumPy alone, so
this path needs no extra dependency; the ``safetensors`` package and PyTorch read it as any
other file.

Tensors
    The state_dict of the module ``model.to_torch()`` returns, with its names and layouts:
    ``torch_module.load_state_dict(safetensors.torch.load_file(path))`` accepts it. Dense
    weights are stored (out, in); BatchNorm's ``num_batches_tracked`` (int64, unused by
    fastbp) holds ``model.steps_trained``.
Metadata
    ``"format": "pt"`` (the convention of the safetensors/PyTorch tools) and ``"fastbp"``:
    JSON with the format name and version, ``"config"`` (``model.get_config()``: class,
    layer spec, input width, dtype, backend, seed) and ``"state"`` (``model.state_dict()``
    without the parameters and buffers, which are the tensors: the optimizer's name,
    hyper-parameters, initial learning rate, step and state arrays — base64-encoded
    little-endian bytes —, ``epochs_trained``, ``steps_trained``, the RNG state and the
    ``ReduceLROnPlateau`` state) — what the ``.npz`` checkpoint stores. Loading restores all
    of it (``from_config`` then ``load_state_dict``): training resumed from this file
    continues exactly as from the ``.npz`` checkpoint.

The optimizer state lives in the metadata rather than as tensors so that the tensors are
exactly the module's state_dict. The ``safetensors`` package refuses headers above 100 MB
(Adam's state for roughly 9 million parameters); ``save(model, path,
training_state=False)`` leaves the optimizer state out. Writes are atomic; a malformed,
truncated or foreign file, or one whose tensors do not match its architecture, raises
``ValueError``.
"""
from __future__ import annotations

import base64
import json
import math
import os
import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._names import as_torch_layout, torch_entries
from ._tree import atomic_write

__all__ = ["save", "load", "read_safetensors", "write_safetensors", "is_safetensors",
           "FORMAT", "FORMAT_VERSION"]

FORMAT = "fastbp-safetensors"
FORMAT_VERSION = 1

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
           "I8": "i1", "U8": "u1", "BOOL": "?"}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


# ------------------------------------------------------------------------------ file format
def write_safetensors(path: Any, tensors: Dict[str, np.ndarray],
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """Write ``tensors`` (name -> array) and ``metadata`` (str -> str) as a safetensors file,
    atomically.

    Parameters
    ----------
    path : str or os.PathLike
    tensors : dict of str to numpy.ndarray
        Arrays of a dtype safetensors names (F64, F32, F16, I64, I32, I16, I8, U8, BOOL).
    metadata : dict of str to str, optional
    """
    header: Dict[str, Any] = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    chunks: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        code = _CODES.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
        if code is None:
            raise TypeError(f"tensor {name!r}: dtype {a.dtype} has no safetensors code")
        raw = np.ascontiguousarray(a, dtype=np.dtype(_DTYPES[code])).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the tensor data starts 8-byte aligned
    atomic_write(path, struct.pack("<Q", len(text)) + text + b"".join(chunks))


def _check_entry(name: str, info: Any, size: int,
                 bad: str) -> Tuple[np.dtype, Tuple[int, ...], int, int]:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"{bad}: tensor {name!r} has a malformed entry")
    code, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
    if code not in _DTYPES:
        raise ValueError(f"{bad}: tensor {name!r} has an unsupported dtype {code!r}")
    ok_shape = isinstance(shape, list) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ok_offs = isinstance(offs, list) and len(offs) == 2 and all(
        isinstance(o, int) and not isinstance(o, bool) for o in offs)
    if not ok_shape or not ok_offs:
        raise ValueError(f"{bad}: tensor {name!r} has a malformed shape or offsets")
    dt = np.dtype(_DTYPES[code])
    begin, end = offs
    if not 0 <= begin <= end <= size or end - begin != math.prod(shape) * dt.itemsize:
        raise ValueError(f"{bad}: tensor {name!r} has offsets {offs} that do not fit its "
                         f"shape {shape} ({code}) in {size} data bytes")
    return dt, tuple(shape), begin, end


def read_safetensors(path: Any) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Read a safetensors file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    tensors : dict of str to numpy.ndarray
        Native-endian copies.
    metadata : dict of str to str

    Raises
    ------
    ValueError
        If the file is truncated or malformed (bad header, overlapping or out-of-range
        offsets, unknown dtype).
    """
    path = os.fspath(path)
    bad = f"{path!r} is not a valid safetensors file"
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{bad}: {len(blob)} bytes, shorter than the header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n < 2 or 8 + n > len(blob):
        raise ValueError(f"{bad}: header length {n} does not fit the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{bad}: garbled header ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{bad}: the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{bad}: __metadata__ must map strings to strings")
    data = memoryview(blob)[8 + n:]
    spans = []
    tensors: Dict[str, np.ndarray] = {}
    for name, info in header.items():
        dt, shape, begin, end = _check_entry(name, info, len(data), bad)
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).astype(
            dt.newbyteorder("="), copy=True)
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise ValueError(f"{bad}: tensor {name!r} overlaps another or leaves a gap")
        pos = end
    if pos != len(data):
        raise ValueError(f"{bad}: {len(data) - pos} trailing bytes after the last tensor")
    return tensors, dict(meta)


def is_safetensors(path: Any) -> bool:
    """Whether ``path`` starts like a safetensors file (a plausible header length, then
    ``{``). False for unreadable files."""
    try:
        with open(os.fspath(path), "rb") as f:
            head = f.read(9)
            f.seek(0, os.SEEK_END)
            size = f.tell()
    except OSError:
        return False
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 8 + n <= size


# ------------------------------------------------------------------------------ model <-> file
def _encode(a: np.ndarray) -> Dict[str, Any]:
    a = np.ascontiguousarray(a)
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": le.dtype.str, "shape": list(a.shape),
            "data": base64.b64encode(le.tobytes()).decode("ascii")}


def _decode(d: Any, what: str) -> np.ndarray:
    if not isinstance(d, dict) or not {"dtype", "shape", "data"} <= set(d):
        raise ValueError(f"{what} is malformed")
    dt = np.dtype(d["dtype"])
    if dt.kind not in "fiu":
        raise ValueError(f"{what} has dtype {dt}")
    raw = base64.b64decode(d["data"], validate=True)
    shape = tuple(int(v) for v in d["shape"])
    if len(raw) != math.prod(shape) * dt.itemsize:
        raise ValueError(f"{what} holds {len(raw)} bytes for shape {shape} {dt}")
    return np.frombuffer(raw, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def _json_state(state: Dict[str, Any], training_state: bool) -> Dict[str, Any]:
    """``model.state_dict()`` without its parameter and buffer arrays (they are the tensors),
    optimizer state arrays base64-encoded, an infinite plateau ``best`` spelled as a string."""
    out = {k: v for k, v in state.items() if k not in ("arena", "buffers")}
    opt = state.get("optimizer")
    if opt is not None:
        opt = dict(opt)
        opt["state"] = {k: _encode(v) for k, v in opt["state"].items()} if training_state else {}
        opt["step"] = int(opt["step"]) if training_state else 0
        out["optimizer"] = opt
    ps = state.get("plateau_state")
    if ps and not np.isfinite(ps["best"]):
        out["plateau_state"] = dict(ps, best=repr(float(ps["best"])))
    return out


def save(model: Any, path: Any, training_state: bool = True) -> None:
    """Write ``model`` to ``path`` as a safetensors file (see the module docstring).

    Parameters
    ----------
    model : fastbp.Sequential
    path : str or os.PathLike
        Written as given, atomically.
    training_state : bool
        Include the optimizer's state arrays and step (default). False stores only the
        optimizer's configuration: a loaded model then starts the optimizer afresh.
    """
    from .._version import __version__

    tensors: Dict[str, np.ndarray] = {}
    for name, arr, transposed in torch_entries(model):
        if arr is None:
            tensors[name] = np.array(int(model.steps_trained), dtype=np.int64)
        else:
            tensors[name] = as_torch_layout(arr, transposed)
    header = {"format": FORMAT, "version": FORMAT_VERSION, "fastbp_version": __version__,
              "config": model.get_config(),
              "state": _json_state(model.state_dict(), training_state)}
    write_safetensors(path, tensors, {"format": "pt", "fastbp": json.dumps(header)})


def _spec_size(spec: Any, depth: int = 0) -> int:
    """Number of parameter and buffer values the layer spec needs (before anything is
    allocated, so that a file cannot make fastbp allocate more than it holds)."""
    if depth > 64 or not isinstance(spec, list):
        raise ValueError("the layer spec is malformed")
    total = 0
    for d in spec:
        kind = d["type"]
        if kind == "dense":
            total += (int(d["in"]) + 1) * int(d["out"])
        elif kind in ("batchnorm", "layernorm"):
            total += (4 if kind == "batchnorm" else 2) * int(d["dim"])
        elif kind == "residual":
            total += _spec_size(d["layers"], depth + 1)
    return total


def _check_size(config: Dict[str, Any], tensors: Dict[str, np.ndarray]) -> None:
    held = sum(t.size for name, t in tensors.items() if not name.endswith("num_batches_tracked"))
    need = _spec_size(config["spec"])
    if need != held:
        raise ValueError(f"the layer spec needs {need} values, the file holds {held}")
    first = config["spec"][0] if config["spec"] else {}
    if config["input_dim"] != first.get("in", first.get("dim")):
        raise ValueError(f"input_dim {config['input_dim']!r} does not match the layer spec")


def _fill(model: Any, tensors: Dict[str, np.ndarray]) -> None:
    """Copy the tensors into the (freshly built) model's parameters and buffers."""
    entries = torch_entries(model)
    expected = {name for name, _, _ in entries}
    missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or extra:
        raise ValueError(f"the tensors do not match the architecture: missing {missing}, "
                         f"unexpected {extra}")
    for name, arr, transposed in entries:
        t = tensors[name]
        want = (np.dtype(np.int64), ()) if arr is None else \
            (arr.dtype, arr.T.shape if transposed else arr.shape)
        if (t.dtype, t.shape) != want:
            raise ValueError(f"tensor {name!r} is {t.dtype} {t.shape}, the architecture needs "
                             f"{want[0]} {want[1]}")
    for name, arr, transposed in entries:
        if arr is not None:
            arr[...] = tensors[name].T if transposed else tensors[name]


def _restore(model: Any, js: Dict[str, Any]) -> None:
    """Give the model the training state of the metadata (``model.load_state_dict``)."""
    from .. import optim as _optim

    state = dict(js, arena=np.array(model.engine.arena(), copy=True),
                 buffers=[np.array(b, copy=True) for b in model.buffers()])
    oh = state.get("optimizer")
    fresh_optimizer = None
    if oh is not None and not oh["state"]:  # saved without training state
        fresh_optimizer = _optim.from_config(oh["name"], oh["hyper"])
        if oh.get("initial_lr") is not None:
            fresh_optimizer.initial_lr = float(oh["initial_lr"])
        state["optimizer"] = None
    elif oh is not None:
        state["optimizer"] = dict(oh, state={k: _decode(v, f"optimizer state {k!r}")
                                             for k, v in oh["state"].items()})
    ps = state.get("plateau_state")
    if ps:
        state["plateau_state"] = dict(ps, best=float(ps["best"]))
    model.load_state_dict(state)
    if fresh_optimizer is not None:
        model.set_optimizer(fresh_optimizer)


def load(path: Any, backend: Optional[str] = None) -> Any:
    """Load a model written by :func:`save` (``model.save("m.safetensors")``);
    ``fastbp.load`` calls it for safetensors files.

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"native", "reference"}, optional
        Override the saved backend.

    Returns
    -------
    Sequential or MLP

    Raises
    ------
    ValueError
        If the file is not a valid safetensors file, has no fastbp metadata (e.g. a plain
        torch state_dict: use ``fastbp.from_torch`` on the module instead), or its tensors
        do not match the architecture in its metadata.
    """
    from ..model import from_config

    path = os.fspath(path)
    tensors, meta = read_safetensors(path)
    bad = f"{path!r} is not a fastbp safetensors file"
    if "fastbp" not in meta:
        raise ValueError(f"{bad}: its metadata has no 'fastbp' entry (a plain state_dict? "
                         "load it into the torch module and use fastbp.from_torch)")
    try:
        h = json.loads(meta["fastbp"])
        if not isinstance(h, dict) or h.get("format") != FORMAT:
            raise ValueError(f"the metadata does not name the {FORMAT!r} format")
        if h.get("version") != FORMAT_VERSION:
            raise ValueError(f"format version {h.get('version')!r} is not supported (this "
                             f"fastbp reads version {FORMAT_VERSION})")
        _check_size(h["config"], tensors)
        model = from_config(h["config"], backend)
        _fill(model, tensors)
        _restore(model, h["state"])
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError,
            RecursionError) as e:
        raise ValueError(f"{bad}: bad metadata ({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise ValueError(f"{bad}: {e}") from None
    return model
