"""safetensors: model.save("m.safetensors") / fb.load restore everything the .npz checkpoint
does; the tensors are the state_dict of to_torch()'s module; hostile files raise ValueError."""
import json
import os
import struct

import numpy as np
import pytest
from exchange_models import data, zoo

import fastbp as fb
from fastbp.io.safetensors import read_safetensors, save, write_safetensors


def trained(dtype="float64", backend="native"):
    return zoo("gelu", dtype, backend=backend)


def state(model):
    eng = model._engine
    opt = {k: np.asarray(v).copy() for k, v in eng.optimizer_state().items()}
    return (eng.arena().copy(), [b.copy() for b in model.buffers()], opt,
            tuple(eng.rng_state()), model.epochs_trained, model.steps_trained)


def assert_same_state(a, b):
    sa, sb = state(a), state(b)
    np.testing.assert_array_equal(sa[0], sb[0])
    for x, y in zip(sa[1], sb[1]):
        np.testing.assert_array_equal(x, y)
    assert sa[2].keys() == sb[2].keys()
    for k in sa[2]:
        np.testing.assert_array_equal(sa[2][k], sb[2][k])
    assert sa[3:] == sb[3:]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_round_trip_restores_training_state(tmp_path, dtype, backend):
    model = trained(dtype, backend)
    model.save(tmp_path / "m.safetensors")
    model.save(tmp_path / "m.npz")
    back = fb.load(tmp_path / "m.safetensors")
    assert back.spec == model.spec and back.dtype == dtype and back.backend == backend
    assert type(back.optimizer) is type(model.optimizer)
    assert back.optimizer.hyper() == model.optimizer.hyper()
    assert_same_state(back, model)
    # training resumed from the safetensors file is bitwise the one resumed from the .npz
    from_npz = fb.load(tmp_path / "m.npz")
    X, y = data(dtype, n=34)
    for m in (back, from_npz):
        m.fit(X, y, epochs=2, batch_size=8)
    np.testing.assert_array_equal(back._engine.arena(), from_npz._engine.arena())
    assert_same_state(back, from_npz)


def test_mlp_class_and_plateau_state(tmp_path):
    model = fb.MLP([3, 5, 2], activation="leaky_relu", dtype="float32", seed=4)
    model.plateau_state = {"best": float("inf"), "num_bad": 2, "cooldown": 0}
    model.save(tmp_path / "m.safetensors")
    back = fb.load(tmp_path / "m.safetensors")
    assert type(back) is fb.MLP and back.sizes == [3, 5, 2] and back.seed == 4
    assert back.optimizer is None
    assert back.plateau_state == model.plateau_state


def test_torch_load_state_dict_accepts_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    model = trained("float64")
    path = tmp_path / "m.safetensors"
    model.save(path)
    fresh = zoo("gelu", "float64", seed=9, train=False).to_torch()
    fresh.load_state_dict(st.load_file(str(path)), strict=True)
    X, _ = data("float64")
    with torch.no_grad():
        out = fresh(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, model.predict(X), rtol=1e-12, atol=1e-12)
    assert set(st.load_file(str(path))) == set(model.to_torch().state_dict())


def test_safetensors_package_reads_metadata_and_writes_what_we_read(tmp_path):
    stn = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    model = trained("float32")
    model.save(tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        meta = f.metadata()
        assert meta["format"] == "pt"
        assert json.loads(meta["fastbp"])["config"]["spec"] == model.spec
        np.testing.assert_array_equal(f.get_tensor("0.weight"), model.parameters()[0].T)
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array(3, np.int64)}
    stn.save_file(tensors, str(tmp_path / "x.safetensors"), metadata={"k": "v"})
    got, meta = read_safetensors(tmp_path / "x.safetensors")
    assert meta == {"k": "v"} and got.keys() == tensors.keys()
    for k in tensors:
        np.testing.assert_array_equal(got[k], tensors[k])
        assert got[k].dtype == tensors[k].dtype


def test_without_training_state(tmp_path):
    model = trained("float64")
    save(model, tmp_path / "m.safetensors", training_state=False)
    back = fb.load(tmp_path / "m.safetensors")
    assert back.optimizer.hyper() == model.optimizer.hyper()
    assert back._engine.optimizer_state()["step"] == 0
    np.testing.assert_array_equal(back._engine.arena(), model._engine.arena())


def test_load_tells_formats_apart_by_content(tmp_path):
    model = fb.MLP([2, 3, 1], seed=2)
    model.save(tmp_path / "m.safetensors")
    (tmp_path / "m.safetensors").rename(tmp_path / "renamed.bin")
    np.testing.assert_array_equal(fb.load(tmp_path / "renamed.bin")._engine.arena(),
                                  model._engine.arena())


def test_writes_only_the_target(tmp_path):
    fb.MLP([2, 3]).save(tmp_path / "m.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


# ------------------------------------------------------------------------------ bad files
def raw(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    fb.MLP([2, 3, 1], dtype="float32").save(path)
    return path


def corrupt(tmp_path, kind):
    blob = good_file(tmp_path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    body = blob[8 + n:]
    if kind == "truncated":
        return blob[:-5]
    if kind == "tiny":
        return blob[:5]
    if kind == "huge header length":
        return struct.pack("<Q", 2**62) + blob[8:]
    if kind == "garbled header":
        return blob[:8] + b"{" + b"\xff" * (n - 1) + body
    if kind == "header not an object":
        return raw([1, 2])
    if kind == "overlapping":
        header["0.bias"]["data_offsets"] = header["0.weight"]["data_offsets"][:1] + \
            [header["0.weight"]["data_offsets"][0] + 12]
        return raw(header, body)
    if kind == "bad dtype":
        header["0.bias"]["dtype"] = "X99"
        return raw(header, body)
    if kind == "negative shape":
        header["0.bias"]["shape"] = [-3]
        return raw(header, body)
    if kind == "trailing bytes":
        return raw(header, body + b"\0" * 8)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "tiny", "huge header length", "garbled header",
                                  "header not an object", "overlapping", "bad dtype",
                                  "negative shape", "trailing bytes"])
def test_malformed_files(tmp_path, kind):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(corrupt(tmp_path, kind))
    from fastbp.io.safetensors import load

    with pytest.raises(ValueError):
        load(path)
    with pytest.raises(ValueError):
        fb.load(path)


def rewrite(tmp_path, edit_tensors=None, edit_meta=None):
    tensors, meta = read_safetensors(good_file(tmp_path))
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        h = json.loads(meta["fastbp"])
        edit_meta(h)
        meta["fastbp"] = json.dumps(h)
    path = tmp_path / "edited.safetensors"
    write_safetensors(path, tensors, meta)
    return path


@pytest.mark.parametrize("edit_tensors, edit_meta, match", [
    (lambda t: t.pop("0.bias"), None, "needs"),
    (lambda t: t.update(extra=np.zeros(2, np.float32)), None, "needs"),
    (lambda t: t.update(renamed=t.pop("0.bias")), None, r"missing \['0.bias'\], unexpected"),
    (lambda t: t.update({"0.weight": t["0.weight"].T.copy()}), None, "0.weight"),
    (lambda t: t.update({"0.bias": t["0.bias"].astype(np.float64)}), None, "0.bias"),
    (None, lambda h: h.update(version=99), "version"),
    (None, lambda h: h.update(format="other"), "format"),
    (None, lambda h: h["config"].pop("spec"), "spec"),
    (None, lambda h: h["config"]["spec"][0].update(out=4), "needs"),
    (None, lambda h: h["state"].update(rng_state="x"), "not a fastbp safetensors file"),
    (None, lambda h: h.pop("state"), "state"),
])
def test_mismatched_files(tmp_path, edit_tensors, edit_meta, match):
    path = rewrite(tmp_path, edit_tensors, edit_meta)
    with pytest.raises(ValueError, match=match):
        fb.load(path)


def test_plain_state_dict_file_is_rejected_with_a_hint(tmp_path):
    write_safetensors(tmp_path / "sd.safetensors", {"0.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match="from_torch"):
        fb.load(tmp_path / "sd.safetensors")


def test_bad_optimizer_state_in_metadata(tmp_path):
    model = trained("float32")
    model.save(tmp_path / "m.safetensors")
    tensors, meta = read_safetensors(tmp_path / "m.safetensors")
    h = json.loads(meta["fastbp"])
    k = next(iter(h["state"]["optimizer"]["state"]))
    h["state"]["optimizer"]["state"][k]["data"] = "!!notbase64"
    meta["fastbp"] = json.dumps(h)
    write_safetensors(tmp_path / "e.safetensors", tensors, meta)
    with pytest.raises(ValueError):
        fb.load(tmp_path / "e.safetensors")
    h["state"]["optimizer"]["state"][k]["shape"] = [3]
    h["state"]["optimizer"]["state"][k]["data"] = ""
    meta["fastbp"] = json.dumps(h)
    write_safetensors(tmp_path / "e.safetensors", tensors, meta)
    with pytest.raises(ValueError):
        fb.load(tmp_path / "e.safetensors")


def test_deeply_nested_header_is_a_value_error(tmp_path):
    text = b"{" + b'"a":' + b"[" * 100000 + b"]" * 100000 + b"}"
    (tmp_path / "deep.safetensors").write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(ValueError):
        fb.load(tmp_path / "deep.safetensors")


def test_random_corruption_only_raises_value_error(tmp_path):
    """Flipped bytes anywhere (header length, JSON, metadata, tensor data): the load either
    succeeds (a flipped data byte is just another weight) or raises ValueError."""
    model = trained("float32")
    model.save(tmp_path / "m.safetensors")
    blob = bytearray((tmp_path / "m.safetensors").read_bytes())
    (n,) = struct.unpack("<Q", bytes(blob[:8]))
    rng = np.random.default_rng(0)
    path = tmp_path / "c.safetensors"
    for trial in range(150):
        b = bytearray(blob)
        # mostly the header, where the structure is
        hi = 8 + n if trial % 3 else len(b)
        for pos in rng.integers(0, hi, size=int(rng.integers(1, 4))):
            b[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(b))
        try:
            fb.load(path)
        except ValueError:
            pass


def test_spec_larger_than_the_file_is_refused_before_allocating(tmp_path):
    huge = {"in": 10**6, "out": 10**6}
    path = rewrite(tmp_path, None, lambda h: h["config"]["spec"][0].update(**huge))
    with pytest.raises(ValueError, match="needs"):
        fb.load(path)


def test_input_dim_disagreeing_with_the_spec_is_refused_before_allocating(tmp_path):
    path = rewrite(tmp_path, None, lambda h: h["config"].update(input_dim=10**9))
    with pytest.raises(ValueError, match="input_dim"):
        fb.load(path)


def test_bytes_and_pathlike_paths(tmp_path):
    model = fb.MLP([2, 3], seed=3)
    target = os.fsencode(tmp_path / "m.safetensors")
    model.save(target)
    np.testing.assert_array_equal(fb.load(target).parameters()[0], model.parameters()[0])
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
