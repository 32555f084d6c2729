"""Fuzz target for the checkpoint loader over bytes (hypothesis): byte flips, truncations and
splices of valid checkpoints, random JSON headers, random zip members. The property: loading
either returns a model or raises ValueError -- never another exception, a crash or a hang.

Small example counts in the suite; .ci/fuzz.sh runs it with FASTBP_FUZZ_EXAMPLES and a fixed
seed (bounded to ~30 s).
"""
import io
import json
import os
import zipfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastbp as fb  # noqa: E402
from fastbp.model import from_bytes, to_bytes  # noqa: E402

EXAMPLES = int(os.environ.get("FASTBP_FUZZ_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), print_blob=True)


def _checkpoints():
    rng = np.random.default_rng(0)
    out = []
    for backend in ("native", "reference"):
        m = fb.Sequential([fb.Dense(5, "tanh"), fb.BatchNorm(), fb.Residual([fb.Dense(5)]),
                           fb.Dense(2)], input_dim=3, backend=backend, dtype="float64")
        X = rng.normal(size=(16, 3))
        m.fit(X, X[:, :2], optimizer="adam", epochs=1, batch_size=8, progress=False)
        out.append(to_bytes(m))
    m = fb.MLP([4, 3, 2], seed=1)  # no optimizer
    out.append(to_bytes(m))
    return out


VALID = _checkpoints()


def _load(data):
    try:
        m = from_bytes(data)
    except ValueError:
        return None
    assert isinstance(m, fb.Sequential)
    return m


@SETTINGS
@given(base=st.sampled_from(range(len(VALID))), data=st.data())
def test_fuzz_mutated_checkpoint_bytes(base, data):
    blob = bytearray(VALID[base])
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice", "insert"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "splice":
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i + data.draw(st.integers(0, 64))] = data.draw(st.binary(max_size=64))
    else:
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=64))
    _load(bytes(blob))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=4),
    max_leaves=20)


def _header(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return json.loads(np.load(io.BytesIO(z.read("header.npy"))).tobytes())


def _replace_header(blob, text):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as zin, zipfile.ZipFile(out, "w") as z:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "header.npy":
                b = io.BytesIO()
                np.save(b, np.frombuffer(text, dtype=np.uint8))
                data = b.getvalue()
            z.writestr(info, data)
    return out.getvalue()


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@SETTINGS
@given(base=st.sampled_from(range(len(VALID))), data=st.data())
def test_fuzz_header_fields(base, data):
    """One field anywhere in a valid header replaced by random JSON (or removed)."""
    h = _header(VALID[base])
    paths = [p for p in _paths(h) if p]
    path = data.draw(st.sampled_from(paths))
    parent = h
    for k in path[:-1]:
        parent = parent[k]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON)
    _load(_replace_header(VALID[base], json.dumps(h).encode()))


@SETTINGS
@given(base=st.sampled_from(range(len(VALID))), header=JSON | st.binary(max_size=64))
def test_fuzz_whole_header(base, header):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    _load(_replace_header(VALID[base], text))


@SETTINGS
@given(members=st.dictionaries(st.sampled_from(["header.npy", "arena.npy", "buffer_0.npy",
                                                "x.npy"]), st.binary(max_size=200), max_size=4),
       deflate=st.booleans())
def test_fuzz_random_zip_members(members, deflate):
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    _load(out.getvalue())


def test_valid_checkpoints_load():
    for blob in VALID:
        assert _load(blob) is not None
