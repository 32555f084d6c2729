"""Hostile checkpoints: every malformed file gives ValueError, found before anything is
allocated for the model, and no member is decompressed beyond the size the header justifies."""
import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastbp as fb
from fastbp.model import from_bytes, to_bytes


def _blob(model):
    return to_bytes(model)


@pytest.fixture(scope="module")
def good():
    m = fb.MLP([6, 8, 3], seed=0)
    X = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    m.fit(X, X[:, :3], optimizer="adam", epochs=1, batch_size=8, progress=False)
    return _blob(m)


def _members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def _zip(members, compress=None):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=(compress or {}).get(name, zipfile.ZIP_STORED))
    return out.getvalue()


def _npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def _header(blob):
    raw = _members(blob)["header.npy"]
    return json.loads(np.load(io.BytesIO(raw)).tobytes().decode())


def _with_header(blob, header, raw=None):
    m = _members(blob)
    text = raw if raw is not None else json.dumps(header).encode()
    m["header.npy"] = _npy(np.frombuffer(text, dtype=np.uint8))
    return m


@pytest.fixture
def no_model_built(monkeypatch):
    """Fails the test if a model (and so an engine and its parameters) is created."""
    from fastbp import model

    def refuse(*a, **k):
        raise AssertionError("a model was built before the checkpoint was validated")

    monkeypatch.setattr(model.Sequential, "__init__", refuse)


def test_header_claiming_a_bigger_network_is_refused_before_building(good, no_model_built):
    h = _header(good)
    # 300M parameters claimed by the spec, against the small arena actually stored
    h["spec"][0]["out"] = 30000
    h["spec"][1]["in"] = 30000
    h["spec"][0]["in"] = 10000
    with pytest.raises(ValueError, match="layer spec implies"):
        from_bytes(_zip(_with_header(good, h)))
    # the header's array list made consistent with the claim: the .npy header disagrees
    n = 10000 * 30000 + 30000 + 30000 * 3 + 3
    for k, meta in h["arrays"].items():
        if k == "arena" or k.startswith("opt_"):
            meta["shape"] = [n]
    with pytest.raises(ValueError, match="expected"):
        from_bytes(_zip(_with_header(good, h)))
    # and the .npy header too: the zip member's size does not match 1.2 GB of data
    m = _with_header(good, h)
    hdr = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    hdr["shape"] = (n,)
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, hdr)
    m["arena.npy"] = b.getvalue() + b"\0" * 64
    with pytest.raises(ValueError, match="bytes"):
        from_bytes(_zip(m))


def test_decompression_is_bounded_by_the_justified_size(good):
    """A deflated member whose directory entry claims the right size but whose stream expands
    to 64 MB: reading stops at the claimed size (then the CRC fails)."""
    m = _members(good)
    arena = m["arena.npy"]
    bomb = arena + b"\0" * (64 << 20)
    data = _zip(dict(m, **{"arena.npy": bomb}), compress={"arena.npy": zipfile.ZIP_DEFLATED})
    # patch the sizes recorded for arena.npy back to the honest ones
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("arena.npy")
    buf = bytearray(data)
    size = len(bomb).to_bytes(4, "little")
    honest = len(arena).to_bytes(4, "little")
    assert buf.count(size) == 2  # local header and central directory
    buf = bytearray(bytes(buf).replace(size, honest))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
            from_bytes(bytes(buf))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"decompressed {peak} bytes for a {info.file_size}-byte member"


def test_claimed_sizes_beyond_the_compression_limit_are_refused(good):
    m = _members(good)
    data = bytearray(_zip(m, compress={"arena.npy": zipfile.ZIP_DEFLATED}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("arena.npy")
    old = info.file_size.to_bytes(4, "little")
    new = (2**31).to_bytes(4, "little")
    data = bytes(data).replace(old, new)
    with pytest.raises(ValueError, match="cannot come from|not a valid"):
        from_bytes(data)


@pytest.mark.parametrize("text", [
    b"[" * 100000 + b"]" * 100000,
    b'{"a":' * 50000 + b"1" + b"}" * 50000,
    b"\xff\xfe{",
    b"null", b"[]", b"5", b'"fastbp-checkpoint"',
])
def test_deep_or_malformed_json_gives_value_error(good, text):
    with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
        from_bytes(_zip(_with_header(good, None, raw=text)))


def _nested_spec(depth):
    spec = [{"type": "activation", "dim": 8, "activation": "relu"}]
    for _ in range(depth):
        spec = [{"type": "residual", "dim": 8, "layers": spec}]
    return spec


@pytest.mark.parametrize("edit", [
    lambda h: h.update(spec=5),
    lambda h: h.update(spec=[]),
    lambda h: h.update(spec=[5]),
    lambda h: h.update(spec=[{"type": 5}]),
    lambda h: h["spec"][0].update(out="8"),
    lambda h: h["spec"][0].update(out=True),
    lambda h: h["spec"][0].update(out=-1),
    lambda h: h["spec"][0].update(out=2**80),
    lambda h: h["spec"][0].update(activation=["relu"]),
    lambda h: h["spec"][0].update(type="conv"),
    lambda h: h.update(spec=_nested_spec(200)),
    lambda h: h.update(spec=_nested_spec(70)),
    lambda h: h.update(arrays=[]),
    lambda h: h["arrays"].update(extra={"shape": [1], "dtype": "<f4"}),
    lambda h: h["arrays"]["arena"].update(dtype="|O"),
    lambda h: h.update(optimizer=5),
    lambda h: h["optimizer"].update(hyper=[1]),
    lambda h: h["optimizer"]["hyper"].update(lr="x"),
    lambda h: h["optimizer"]["hyper"].update(bogus=1),
    lambda h: h["optimizer"].update(name="nope"),
    lambda h: h["optimizer"].update(step=-1),
    lambda h: h["optimizer"].update(state=[1]),
    lambda h: h["optimizer"].update(state=["../x"]),
    lambda h: h.update(rng_state=[1, 2]),
    lambda h: h.update(rng_state=[1, 2, -3]),
    lambda h: h.update(seed="0"),
    lambda h: h.update(input_dim=0),
    lambda h: h.update(input_dim=7),
    lambda h: h.update(dtype="float16"),
    lambda h: h.update(backend="gpu"),
    lambda h: h.update({"class": "Evil"}),
    lambda h: h.update(sizes="6,8,3"),
    lambda h: h.update(plateau_state=[1]),
    lambda h: h.update(epochs_trained=1.5),
    lambda h: h.pop("spec"),
    lambda h: h.pop("arrays"),
])
def test_malformed_header_fields_give_value_error(good, edit):
    h = _header(good)
    edit(h)
    with pytest.raises(ValueError):
        from_bytes(_zip(_with_header(good, h)))


@pytest.mark.parametrize("offset,value", [(10, 99), (10, 12), (8, 1)])
def test_unsupported_compression_and_encryption_flags(good, offset, value):
    """Compression method 99 (AES) or 12 (bzip2), or the encryption flag, in the central
    directory entry of the arena."""
    data = bytearray(_zip(_members(good)))
    at = data.index(b"PK\x01\x02" + b"", data.index(b"arena.npy", data.index(b"PK\x01\x02")) - 46)
    data[at + offset:at + offset + 2] = value.to_bytes(2, "little")
    with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
        from_bytes(bytes(data))


def test_valid_round_trip_still_loads(good):
    m = from_bytes(good)
    assert m.num_params == 6 * 8 + 8 + 8 * 3 + 3
    assert to_bytes(m) == good
