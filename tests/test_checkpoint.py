"""Checkpoints: bitwise resume, what is saved, atomic writes, clear errors on bad files."""
import json
import os
import zipfile

import numpy as np
import pytest

import fastbp as fb
from fastbp import checkpoint


def _data(n=90, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    return X, y


def _model(backend, dtype, seed=3):
    return fb.Sequential([fb.Dense(16, "tanh"), fb.Dropout(0.25), fb.BatchNorm(),
                          fb.Dense(12, "relu"), fb.Dense(3)],
                         input_dim=6, dtype=dtype, seed=seed, backend=backend)


FIT = dict(loss="softmax_cross_entropy", batch_size=16, shuffle=True, progress=False)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["adam", "sgd_momentum"])
def test_resume_is_bitwise_identical(tmp_path, backend, dtype, opt):
    X, y = _data()

    def make_opt():
        if opt == "adam":
            return fb.optim.Adam(lr=3e-3)
        return fb.optim.SGD(lr=0.05, momentum=0.9, nesterov=True)

    straight = _model(backend, dtype)
    h = straight.fit(X, y, optimizer=make_opt(), epochs=4, validation_split=0.2,
                     metrics=["accuracy"], schedule=fb.schedules.StepLR(1, 0.7), **FIT)

    part = _model(backend, dtype)
    part.fit(X, y, optimizer=make_opt(), epochs=2, validation_split=0.2,
             schedule=fb.schedules.StepLR(1, 0.7), **FIT)
    path = tmp_path / "ckpt.npz"
    part.save(path)
    del part
    resumed = fb.load(path)
    assert resumed.backend == backend and resumed.dtype == dtype
    assert resumed.epochs_trained == 2
    h2 = resumed.fit(X, y, epochs=2, validation_split=0.2, schedule=fb.schedules.StepLR(1, 0.7),
                     **FIT)  # no optimizer: continue with the restored one
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(straight.buffers(), resumed.buffers()):
        np.testing.assert_array_equal(a, b)
    assert h["loss"][2:] == h2["loss"]
    assert h["lr"][2:] == h2["lr"]
    assert tuple(straight._engine.rng_state()) == tuple(resumed._engine.rng_state())
    assert straight._engine.optimizer_state()["step"] == resumed._engine.optimizer_state()["step"]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_resume_with_per_step_schedule(tmp_path, backend):
    X, y = _data(n=70)
    sched = fb.schedules.LinearWarmup(5, 0.1, then=fb.schedules.CosineAnnealingLR(20))
    a = fb.MLP([6, 10, 3], seed=1, backend=backend)
    a.fit(X, y, optimizer=fb.optim.SGD(lr=0.1, momentum=0.5), epochs=4, schedule=sched,
          schedule_per="step", **FIT)
    b = fb.MLP([6, 10, 3], seed=1, backend=backend)
    b.fit(X, y, optimizer=fb.optim.SGD(lr=0.1, momentum=0.5), epochs=1, schedule=sched,
          schedule_per="step", **FIT)
    b.save(tmp_path / "m.npz")
    b = fb.load(tmp_path / "m.npz")
    assert b.optimizer.initial_lr == 0.1 and b.steps_trained == 5
    b.fit(X, y, epochs=3, schedule=sched, schedule_per="step", **FIT)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


def test_checkpoint_contents(tmp_path):
    X, y = _data()
    m = fb.MLP([6, 8, 3], activation="tanh", seed=5)
    m.fit(X, y, optimizer=fb.optim.AdamW(lr=1e-2, weight_decay=0.1, clip_norm=1.0), epochs=2,
          **FIT)
    path = tmp_path / "m.npz"
    m.save(path)
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(f["header"].tobytes().decode())
        assert set(f.files) == {"header", "arena", "opt_exp_avg", "opt_exp_avg_sq"}
    assert header["format"] == checkpoint.FORMAT and header["version"] == checkpoint.FORMAT_VERSION
    assert header["class"] == "MLP" and header["sizes"] == [6, 8, 3]
    assert header["spec"] == m.spec and header["dtype"] == "float32" and header["seed"] == 5
    assert header["optimizer"]["name"] == "adamw"
    assert header["optimizer"]["hyper"]["clip_norm"] == 1.0
    assert header["optimizer"]["step"] == 2 * 6
    assert header["epochs_trained"] == 2
    assert header["rng_state"] == [int(v) for v in m._engine.rng_state()]
    m2 = fb.load(path)
    assert type(m2) is fb.MLP and m2.sizes == [6, 8, 3]
    assert isinstance(m2.optimizer, fb.optim.AdamW)
    assert m2.optimizer.hyper() == m.optimizer.hyper()
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))
    st1, st2 = m._engine.optimizer_state(), m2._engine.optimizer_state()
    assert st1.keys() == st2.keys()
    for k in st1:
        np.testing.assert_array_equal(st1[k], st2[k])


def test_load_into_other_backend_and_residual_spec(tmp_path):
    m = fb.Sequential([fb.Dense(8, "gelu"),
                       fb.Residual([fb.LayerNorm(), fb.Dense(8, "elu", alpha=0.5)]),
                       fb.Activation("leaky_relu", alpha=0.2), fb.Dense(2, init="he_normal")],
                      input_dim=4, dtype="float64", seed=2)
    m.save(tmp_path / "r.npz")
    r = fb.load(tmp_path / "r.npz", backend="reference")
    assert r.backend == "reference" and r.spec == m.spec and type(r) is fb.Sequential
    X = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_allclose(r.predict(X), m.predict(X), rtol=1e-12, atol=1e-12)
    assert r.optimizer is None


def test_save_is_atomic_and_overwrites(tmp_path, monkeypatch):
    X, y = _data()
    m = fb.MLP([6, 4, 3], seed=0)
    path = tmp_path / "m.npz"
    m.save(path)
    before = path.read_bytes()
    # a failure while writing leaves the old file intact and no temporary behind
    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    m.parameters()[0][...] = 1.0
    with pytest.raises(RuntimeError, match="disk full"):
        m.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    m.save(path)
    assert fb.load(path).parameters()[0].min() == 1.0
    assert os.listdir(tmp_path) == ["m.npz"]


# ------------------------------------------------------------------------- corrupted files
@pytest.fixture
def saved(tmp_path):
    X, y = _data()
    m = fb.MLP([6, 8, 3], seed=0)
    m.fit(X, y, optimizer="adam", epochs=1, **FIT)
    path = tmp_path / "good.npz"
    m.save(path)
    return path


def _rewrite(src, dst, drop=(), replace=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            data = zin.read(item.filename)
            if replace and item.filename in replace:
                data = replace[item.filename](data)
            zout.writestr(item, data)


def _npy_header_blob(obj):
    import io
    b = io.BytesIO()
    np.save(b, np.frombuffer(obj, dtype=np.uint8))
    return b.getvalue()


def test_truncated_file(saved, tmp_path):
    data = saved.read_bytes()
    bad = tmp_path / "half.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
        fb.load(bad)


def test_flipped_bytes_in_arrays(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("arena.npy")
    # flip a byte inside the stored arena data (after its local header and the .npy header)
    pos = info.header_offset + 30 + len(info.filename) + 200
    data[pos] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
        fb.load(bad)


def test_garbled_header(saved, tmp_path):
    bad = tmp_path / "garbled.npz"
    _rewrite(saved, bad, replace={"header.npy": lambda d: _npy_header_blob(b"{not json\xff")})
    with pytest.raises(ValueError, match="garbled header"):
        fb.load(bad)


def test_wrong_format_version(saved, tmp_path):
    with np.load(saved) as f:
        header = json.loads(f["header"].tobytes().decode())
    header["version"] = 999
    bad = tmp_path / "v999.npz"
    blob = _npy_header_blob(json.dumps(header).encode())
    _rewrite(saved, bad, replace={"header.npy": lambda d: blob})
    with pytest.raises(ValueError, match="format version 999"):
        fb.load(bad)


def test_missing_array(saved, tmp_path):
    bad = tmp_path / "missing.npz"
    _rewrite(saved, bad, drop=("opt_exp_avg.npy",))
    with pytest.raises(ValueError, match="'opt_exp_avg' is missing"):
        fb.load(bad)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(ValueError, match="no header"):
        fb.load(p)
    p2 = tmp_path / "text.npz"
    p2.write_text("hello")
    with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
        fb.load(p2)
    with pytest.raises(FileNotFoundError):
        fb.load(tmp_path / "absent.npz")


def test_no_pickle_on_load(saved, tmp_path):
    # an object array (would need pickle) is refused, not unpickled
    bad = tmp_path / "pickled.npz"
    import io
    b = io.BytesIO()
    np.save(b, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _rewrite(saved, bad, replace={"arena.npy": lambda d: b.getvalue()})
    with pytest.raises(ValueError, match="not a valid fastbp checkpoint"):
        fb.load(bad)


def test_layers_from_spec_round_trip():
    m = fb.Sequential([fb.Dense(5, "softplus"), fb.BatchNorm(eps=1e-3, momentum=0.2),
                       fb.Dropout(0.1), fb.Dense(2)], input_dim=3)
    rebuilt = fb.Sequential(fb.layers.from_spec(m.spec), input_dim=3)
    assert rebuilt.spec == m.spec
    with pytest.raises(ValueError, match="unknown layer type"):
        fb.layers.from_spec([{"type": "conv"}])


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_resume_with_reduce_on_plateau(tmp_path, backend):
    """The plateau rule's state (best value, bad-epoch count) travels with the checkpoint: a
    fresh ReduceLROnPlateau on the loaded model reduces exactly when the straight run does."""
    X, y = _data()

    def sched():  # threshold 0.5: only a halving of the loss counts as an improvement
        return fb.schedules.ReduceLROnPlateau("loss", factor=0.5, patience=1, threshold=0.5)

    a = _model(backend, "float64")
    h = a.fit(X, y, optimizer=fb.optim.SGD(lr=0.05), epochs=7, schedule=sched(), **FIT)
    b = _model(backend, "float64")
    b.fit(X, y, optimizer=fb.optim.SGD(lr=0.05), epochs=3, schedule=sched(), **FIT)
    b.save(tmp_path / "p.npz")
    b = fb.load(tmp_path / "p.npz")
    h2 = b.fit(X, y, epochs=4, schedule=sched(), **FIT)
    assert h["lr"][3:] == h2["lr"]
    assert len(set(h["lr"])) >= 3  # the rate was reduced more than once
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
