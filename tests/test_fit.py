"""fit: validation, metrics, callbacks, early stopping, progress, History, gradient norms."""
import io
import math
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp.callbacks import Callback, EarlyStopping, ModelCheckpoint, ProgressBar, TerminateOnNaN
from fastbp.datasets import load_digits
from fastbp.model import from_bytes, to_bytes

CE = "softmax_cross_entropy"


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits("float32")
    return X[:400], y[:400]


def _mlp(backend="native", dtype="float32", seed=0, sizes=(64, 24, 10)):
    return fb.MLP(list(sizes), seed=seed, dtype=dtype, backend=backend)


# ---------------------------------------------------------------------------- validation
def test_validation_split_is_the_last_fraction(digits):
    X, y = digits
    a = _mlp()
    h = a.fit(X, y, loss=CE, optimizer=fb.optim.Adam(lr=1e-2), epochs=3, validation_split=0.25,
              metrics=["accuracy"], progress=False)
    # the same as training on the first 300 and validating on the last 100
    b = _mlp()
    h2 = b.fit(X[:300], y[:300], loss=CE, optimizer=fb.optim.Adam(lr=1e-2), epochs=3,
               validation_data=(X[300:], y[300:]), metrics=["accuracy"], progress=False)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    assert h["val_loss"] == h2["val_loss"] and h["val_accuracy"] == h2["val_accuracy"]
    assert h["loss"] == h2["loss"]
    # val_loss and val_accuracy are computed from predict on the held-out data
    out = a.predict(X[300:])
    z = out - out.max(1, keepdims=True)
    ce = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(100), y[300:]])
    assert h["val_loss"][-1] == pytest.approx(ce, rel=1e-5)
    assert h["val_accuracy"][-1] == np.mean(out.argmax(1) == y[300:])
    assert h["accuracy"][-1] == np.mean(a.predict(X[:300]).argmax(1) == y[:300])
    assert set(h.keys()) == {"loss", "val_loss", "accuracy", "val_accuracy", "lr", "time",
                             "grad_norm"}
    assert all(len(v) == 3 for v in h.history.values())
    assert h["accuracy"][-1] > 0.6


def test_val_loss_includes_penalty_like_loss(digits):
    X, y = digits
    m = _mlp(dtype="float64")
    h = m.fit(X, y, loss=CE, optimizer=fb.optim.SGD(lr=0.0), epochs=1, batch_size=400,
              shuffle=False, validation_data=(X, y), l2=0.5, progress=False)
    # with lr 0 and one full batch, the training loss and val_loss see the same model
    assert h["val_loss"][0] == pytest.approx(h["loss"][0], rel=1e-12)


def test_binary_accuracy_and_regression_metrics():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    yb = (X[:, :1] + X[:, 1:2] > 0).astype(float)
    m = fb.MLP([4, 8, 1], seed=0)
    h = m.fit(X, yb, loss="binary_cross_entropy", optimizer=fb.optim.Adam(lr=0.03), epochs=15,
              metrics=["acc"], validation_split=0.2, progress=False)
    assert h["val_accuracy"][-1] > 0.85
    assert h["accuracy"][-1] == np.mean((m.predict(X[:160]) > 0) == (yb[:160] > 0.5))
    r = fb.MLP([4, 8, 1], seed=0)
    yr = X[:, 0] * 0.5
    h = r.fit(X, yr, loss="huber", delta=0.5, optimizer="adam", epochs=2,
              metrics=["mse", "mae"], progress=False)
    assert h["mae"][-1] == pytest.approx(np.mean(np.abs(r.predict(X)[:, 0] - yr)), rel=1e-5)
    with pytest.raises(ValueError, match="accuracy.*classification loss"):
        r.fit(X, yr, loss="mse", metrics=["accuracy"])
    with pytest.raises(ValueError, match="unknown metric"):
        r.fit(X, yr, loss="mse", metrics=["f1"])


# ---------------------------------------------------------------------------- arguments
def test_no_optimizer_continues_or_errors(digits):
    X, y = digits
    m = _mlp()
    with pytest.raises(ValueError, match="no optimizer"):
        m.fit(X, y, loss=CE)
    opt = fb.optim.Adam(lr=1e-2)
    m.fit(X, y, loss=CE, optimizer=opt, epochs=1, progress=False)
    m.fit(X, y, loss=CE, epochs=1, progress=False)
    assert m.optimizer is opt
    assert m._engine.optimizer_state()["step"] == 2 * math.ceil(400 / 32)
    assert m.epochs_trained == 2 and m.steps_trained == 2 * 13


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_an_optimizer_name_continues_the_optimizer_of_its_kind(digits, backend):
    """A loop of train_step(..., optimizer="adam") (or fit called again with the name) keeps
    Adam's state, as one Adam object passed every time does; another name, or an object
    other than the model's, starts from fresh state."""
    X, y = digits[0][:64], digits[1][:64]
    named, obj = _mlp(backend), _mlp(backend)
    adam = fb.optim.Adam()
    for _ in range(3):
        assert named.train_step(X, y, CE, "adam") == obj.train_step(X, y, CE, adam)
    for p, q in zip(named.parameters(), obj.parameters()):
        np.testing.assert_array_equal(p, q)
    assert named._engine.optimizer_state()["step"] == 3
    named.fit(X, y, loss=CE, optimizer="ADAM", epochs=1, progress=False)  # (any case)
    assert named._engine.optimizer_state()["step"] == 5
    named.train_step(X, y, CE, "sgd")  # another name: a fresh SGD
    assert isinstance(named.optimizer, fb.optim.SGD)
    named.train_step(X, y, CE, "adam")  # the SGD is not an Adam: a fresh Adam
    assert named._engine.optimizer_state()["step"] == 1
    lr = fb.optim.Adam(lr=0.05)
    obj.train_step(X, y, CE, lr)  # another object: fresh
    assert obj._engine.optimizer_state()["step"] == 1 and obj.optimizer is lr
    obj.train_step(X, y, CE, "adam")  # the name of its kind: continues, lr 0.05 included
    assert obj._engine.optimizer_state()["step"] == 2 and obj.optimizer is lr
    copy = from_bytes(to_bytes(obj))  # (a saved model: the same)
    copy.train_step(X, y, CE, "adam")
    assert copy._engine.optimizer_state()["step"] == 3 and copy.optimizer.lr == 0.05


def test_a_new_equal_optimizer_at_every_call_warns_once(digits):
    """train_step(..., optimizer=fb.optim.Adam(...)) in a loop restarts Adam at every step:
    the third such replacement warns, once per model, pointing at the caller's line."""
    import warnings
    X, y = digits[0][:64], digits[1][:64]
    m = _mlp()
    with pytest.warns(UserWarning, match="starts from fresh state") as rec:
        for _ in range(6):
            m.train_step(X, y, CE, fb.optim.Adam(lr=1e-3))
    assert len([w for w in rec if "fresh state" in str(w.message)]) == 1
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet, adam = _mlp(), fb.optim.Adam()
        for opt in [adam, adam, "adam", None, fb.optim.Adam(lr=0.1), fb.optim.SGD(lr=0.1),
                    fb.optim.Adam(lr=0.1)]:  # (same object, name, None, different ones)
            quiet.train_step(X, y, CE, opt)


def test_bad_arguments_leave_the_model_unchanged(digits):
    X, y = digits
    m = _mlp()
    before = [p.copy() for p in m.parameters()]
    cases = [
        (dict(validation_split=1.0), ValueError, "validation_split"),
        (dict(validation_split=0.1, validation_data=(X, y)), ValueError, "not both"),
        (dict(validation_data=X), TypeError, "validation_data"),
        (dict(epochs=-1), ValueError, "epochs"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(steps_per_callback=0), ValueError, "steps_per_callback"),
        (dict(schedule_per="batch"), ValueError, "schedule_per"),
        (dict(schedule=0.1), TypeError, "schedule"),
        (dict(callbacks=[print]), TypeError, "callbacks"),
        (dict(validaton_split=0.1), TypeError, "unexpected keyword argument 'validaton_split'"),
        (dict(validation_split=0.999), ValueError, "validation"),
        (dict(validation_data=(X, y + 10)), ValueError, "validation_data: y:? labels?"),
        (dict(validation_split=0.5, sample_weight=-np.ones(len(y))), ValueError, "(non-negative|>= 0)"),
        (dict(validation_data=(X[:5], y[:4])), ValueError, "validation_data"),
    ]
    for kwargs, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            m.fit(X, y, loss=CE, optimizer="sgd", **kwargs)
    for p, q in zip(before, m.parameters()):
        np.testing.assert_array_equal(p, q)
    assert m.epochs_trained == 0


# ----------------------------------------------------------------------------- callbacks
class Recorder(Callback):
    def __init__(self, stop_at=None):
        self.events = []
        self.stop_at = stop_at

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin", self.params["epochs"], self.params["steps"]))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, logs["steps"], logs["samples"]))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))
        if self.stop_at is not None and epoch == self.stop_at:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))


def test_callback_order_and_stop_training(digits):
    X, y = digits
    m = _mlp()
    rec = Recorder(stop_at=1)
    h = m.fit(X[:100], y[:100], loss=CE, optimizer="adam", epochs=5, callbacks=[rec],
              progress=False, grad_norm=False)
    keys = ["loss", "lr", "time"]
    assert rec.events == [("train_begin", 5, 4), ("epoch_begin", 0), ("epoch_end", 0, keys),
                          ("epoch_begin", 1), ("epoch_end", 1, keys), ("train_end",)]
    assert len(h) == 2 and m.epochs_trained == 2 and rec.model is m


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_steps_per_callback_is_bitwise_whole_epochs(digits, backend, shuffle):
    X, y = digits
    X, y = X[:150], y[:150]
    w = np.linspace(0.5, 2.0, 150)
    sched = fb.schedules.CosineAnnealingLR(20)
    runs = []
    for spc in (None, 2, 3):
        m = fb.Sequential([fb.Dense(20, "relu"), fb.Dropout(0.3), fb.Dense(10)], input_dim=64,
                          seed=7, backend=backend)
        rec = Recorder()
        m.fit(X, y, loss=CE, optimizer=fb.optim.SGD(lr=0.1, momentum=0.9), epochs=2,
              batch_size=16, shuffle=shuffle, sample_weight=w, steps_per_callback=spc,
              schedule=sched, schedule_per="step", callbacks=[rec], progress=False)
        runs.append((m, rec))
    (m0, r0), (m2, r2), (m3, r3) = runs
    for m in (m2, m3):
        for p, q in zip(m0.parameters(), m.parameters()):
            np.testing.assert_array_equal(p, q)
        assert tuple(m._engine.rng_state()) == tuple(m0._engine.rng_state())
        np.testing.assert_allclose(m.history["loss"], m0.history["loss"], rtol=1e-6)
    assert not any(e[0] == "batch_end" for e in r0.events)
    # 150 samples, batch 16 -> 10 steps: chunks of 3 steps = 3, 3, 3, 1 per epoch
    ends = [e for e in r3.events if e[0] == "batch_end"]
    assert ends[:4] == [("batch_end", 0, 3, 48), ("batch_end", 1, 3, 48),
                        ("batch_end", 2, 3, 48), ("batch_end", 3, 1, 6)]
    assert len(ends) == 8


def test_stop_training_mid_epoch(digits):
    X, y = digits

    class StopAfter(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    m = _mlp()
    m.fit(X, y, loss=CE, optimizer="sgd", epochs=3, batch_size=10, steps_per_callback=5,
          callbacks=[StopAfter()], progress=False)
    assert m._engine.optimizer_state()["step"] == 10
    assert m.steps_trained == 10 and m.epochs_trained == 1


def test_early_stopping_restores_best_weights(digits):
    X, y = digits
    # an absurd learning rate makes val_loss blow up after the first epoch
    m = _mlp(dtype="float64")
    snaps = []

    class Snap(Callback):
        def on_epoch_end(self, epoch, logs=None):
            snaps.append([p.copy() for p in self.model.parameters()])

    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = m.fit(X, y, loss=CE, optimizer=fb.optim.SGD(lr=0.5), epochs=30,
              validation_split=0.25, callbacks=[Snap(), es], progress=False)
    best = int(np.argmin(h["val_loss"]))
    assert es.best_epoch == best and es.best == h["val_loss"][best]
    assert es.stopped_epoch == len(h) - 1 == best + 2
    assert m.stop_training
    for p, q in zip(m.parameters(), snaps[best]):
        np.testing.assert_array_equal(p, q)


def test_early_stopping_min_delta_and_patience():
    es = EarlyStopping(monitor="loss", min_delta=0.1, patience=2)

    class M:
        stop_training = False

        def parameters(self):
            return []

        def buffers(self):
            return []

    es.set_model(M())
    es.on_train_begin()
    for epoch, v in enumerate([1.0, 0.95, 0.85, 0.84, 0.83]):
        es.on_epoch_end(epoch, {"loss": v})
        if es.model.stop_training:
            break
    # 0.95 is not 0.1 better than 1.0; 0.85 is (wait resets); 0.84, 0.83 are not -> stop at 4
    assert es.best == 0.85 and es.best_epoch == 2 and es.stopped_epoch == 4
    acc = EarlyStopping(monitor="val_accuracy")
    assert acc.mode == "max"
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


def test_early_stopping_needs_the_monitor(digits):
    X, y = digits
    with pytest.raises(ValueError, match="validation_split"):
        _mlp().fit(X, y, loss=CE, optimizer="sgd", callbacks=[EarlyStopping()], progress=False)


def test_model_checkpoint(tmp_path, digits):
    X, y = digits
    m = _mlp()
    every = ModelCheckpoint(tmp_path / "e{epoch:02d}-{loss:.3f}.npz", monitor="loss")
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    h = m.fit(X, y, loss=CE, optimizer=fb.optim.SGD(lr=0.3), epochs=4, validation_split=0.2,
              callbacks=[every, best], progress=False)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 5 and names[0] == "best.npz"
    assert names[1].startswith("e01-") and names[4].startswith("e04-")
    last = fb.load(tmp_path / names[4])
    assert last.epochs_trained == 4
    np.testing.assert_array_equal(last.predict(X), m.predict(X))
    b = fb.load(tmp_path / "best.npz")
    assert b.epochs_trained == int(np.argmin(h["val_loss"])) + 1
    assert best.best == min(h["val_loss"])


def test_terminate_on_nan(digits):
    X, y = digits
    m = _mlp()
    t = TerminateOnNaN()
    h = m.fit(X, y, loss=CE, optimizer=fb.optim.SGD(lr=1e30),
              epochs=20, callbacks=[t], progress=False, grad_norm=False)
    assert t.terminated_epoch is not None and len(h) == t.terminated_epoch + 1 < 20
    assert not math.isfinite(h["loss"][-1])
    # mid-epoch with steps_per_callback: stops after the first chunk that saw a NaN; the
    # partial epoch counts as an epoch (on_epoch_end runs, as in Keras)
    m = _mlp()
    t = TerminateOnNaN()
    m.fit(X, y, loss=CE, optimizer=fb.optim.SGD(lr=1e30), epochs=5, batch_size=8,
          steps_per_callback=1, callbacks=[t], progress=False, grad_norm=False)
    assert m.epochs_trained == 1 and 1 <= m.steps_trained < 50
    assert len(m.history) == 1 and not math.isfinite(m.history["loss"][0])


# ---------------------------------------------------------------------------- progress
class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_silent_when_not_a_terminal(digits, capsys):
    X, y = digits
    _mlp().fit(X, y, loss=CE, optimizer="adam", epochs=2)
    assert capsys.readouterr().out == ""


def test_progress_plain_lines(digits, monkeypatch):
    X, y = digits
    out = FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm "not installed"
    _mlp().fit(X, y, loss=CE, optimizer="adam", epochs=3, validation_split=0.2,
               metrics=["accuracy"])
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3  loss ") and "val_loss" in lines[0]
    assert "val_accuracy" in lines[2] and lines[2].endswith("s")
    out2 = FakeTTY()
    monkeypatch.setattr(sys, "stdout", out2)
    _mlp().fit(X, y, loss=CE, optimizer="adam", epochs=2, progress=False)
    assert out2.getvalue() == ""


def test_progress_tqdm(digits):
    pytest.importorskip("tqdm")
    X, y = digits
    stream = io.StringIO()
    pb = ProgressBar(stream=stream, use_tqdm=True)
    _mlp().fit(X, y, loss=CE, optimizer="adam", epochs=3, callbacks=[pb], progress=False)
    text = stream.getvalue()
    assert "3/3" in text and "loss=" in text


# ---------------------------------------------------------------------------- grad norms
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_grad_norm_matches_loss_and_gradients_and_has_no_side_effects(digits, backend):
    X, y = digits
    X, y = X[:120], y[:120]

    def make():
        return fb.Sequential([fb.Dense(16, "relu"), fb.BatchNorm(), fb.Dropout(0.2),
                              fb.Dense(10)], input_dim=64, seed=1, backend=backend,
                             dtype="float64")

    a, b = make(), make()

    class Check(Callback):
        def on_epoch_end(self, epoch, logs=None):
            # the recorded norms equal loss_and_gradients on the same sample and RNG state
            c = make()
            c.parameters()  # noqa
            for dst, src in zip(c.parameters(), self.model.parameters()):
                dst[...] = src
            for dst, src in zip(c.buffers(), self.model.buffers()):
                dst[...] = src
            c._engine.set_rng_state(*self.model._engine.rng_state())
            idx = np.unique(np.linspace(0, 119, 50).round().astype(int))
            _, grads = c.loss_and_gradients(X[idx], y[idx], loss=CE)
            expect = [float(np.linalg.norm(g)) for g in grads]
            np.testing.assert_allclose(logs["grad_norm"], expect, rtol=1e-12)
            self.checked = True

    chk = Check()
    h = a.fit(X, y, loss=CE, optimizer="adam", epochs=2, grad_norm_samples=50,
              callbacks=[chk], progress=False)
    b.fit(X, y, loss=CE, optimizer="adam", epochs=2, grad_norm=False, progress=False)
    assert chk.checked and "grad_norm" not in b.history
    assert h.param_names == ["dense1.W", "dense1.b", "batchnorm1.gamma", "batchnorm1.beta",
                             "dense2.W", "dense2.b"]
    assert len(h["grad_norm"]) == 2 and len(h["grad_norm"][0]) == 6
    # the diagnostic changed nothing: same parameters, running stats and RNG counters
    for p, q in zip(a.parameters() + a.buffers(), b.parameters() + b.buffers()):
        np.testing.assert_array_equal(p, q)
    assert tuple(a._engine.rng_state()) == tuple(b._engine.rng_state())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_engine_gradient_norms_are_the_probes_norms(digits, backend, dtype):
    """engine.gradient_norms (fit's grad_norm record) is loss_and_gradients(probe=True) with
    each gradient's L2 norm taken in float64: sample weights and penalties included, the
    same loss, and no state changed."""
    X, y = digits
    X, y = X[:77].astype(dtype), y[:77]
    w = np.linspace(0.5, 2.0, 77).astype(dtype)
    m = fb.Sequential([fb.Dense(33, "tanh"), fb.Dropout(0.3), fb.Dense(10)], input_dim=64,
                      seed=3, backend=backend, dtype=dtype)
    m.fit(X, y, loss=CE, optimizer="adam", epochs=1, batch_size=16, progress=False,
          grad_norm=False)
    eng, lp = m._engine, {"l1": 1e-3, "l2": 1e-2}
    before = [p.copy() for p in m.parameters()], tuple(eng.rng_state())
    value, norms = eng.gradient_norms(X, y, CE, lp, w)
    v2, grads = eng.loss_and_gradients(X, y, CE, lp, w, probe=True)
    assert value == v2 and len(norms) == len(grads) == 4
    assert all(isinstance(x, float) for x in norms)
    expect = [float(np.linalg.norm(g.astype(np.float64))) for g in grads]
    np.testing.assert_allclose(norms, expect, rtol=1e-13)
    for p, q in zip(m.parameters(), before[0]):
        np.testing.assert_array_equal(p, q)
    assert tuple(eng.rng_state()) == before[1]
    with pytest.raises(ValueError):
        eng.gradient_norms(X[:, :5], y, CE)


def test_vanishing_gradients_visible_in_history():
    """A deep sigmoid net's first-layer gradient is orders of magnitude below its last
    layer's; relu with He initialisation keeps them within a small factor."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 32))
    y = rng.integers(0, 4, 256)
    ratios = {}
    for act, init in (("sigmoid", "glorot_uniform"), ("relu", "he_uniform")):
        layers = [fb.Dense(32, act, init=init) for _ in range(10)] + [fb.Dense(4, init=init)]
        m = fb.Sequential(layers, input_dim=32, seed=0, dtype="float64")
        h = m.fit(X, y, loss=CE, optimizer=fb.optim.SGD(lr=0.01), epochs=1, progress=False)
        g = dict(zip(h.param_names, h["grad_norm"][-1]))
        ratios[act] = g["dense1.W"] / g["dense10.W"]
    assert ratios["sigmoid"] < 1e-4
    assert 0.2 < ratios["relu"] < 5


def test_evaluate_matches_fit_logs(digits):
    X, y = digits
    m = _mlp(dtype="float64")
    h = m.fit(X[:300], y[:300], loss=CE, optimizer="adam", epochs=2, l1=1e-3,
              validation_data=(X[300:], y[300:]), metrics=["accuracy"], progress=False)
    ev = fb.metrics.evaluate(m, X[300:], y[300:], loss=CE, metrics=["accuracy"], l1=1e-3)
    assert ev == {"loss": h["val_loss"][-1], "accuracy": h["val_accuracy"][-1]}
    ev2 = fb.metrics.evaluate(m, X[300:], y[300:], loss=CE, metrics=["accuracy"], l1=1e-3,
                              batch_size=7)
    assert ev2["accuracy"] == ev["accuracy"]
    assert ev2["loss"] == pytest.approx(ev["loss"], rel=1e-12)


def test_steps_per_callback_property(digits):
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    X, y = digits

    @settings(max_examples=15, deadline=None)
    @given(n=st.integers(1, 60), bs=st.integers(1, 20), spc=st.integers(1, 8),
           shuffle=st.booleans())
    def check(n, bs, spc, shuffle):
        ms = []
        for s in (None, spc):
            m = fb.Sequential([fb.Dense(8, "relu"), fb.Dropout(0.5), fb.Dense(10)],
                              input_dim=64, seed=3)
            m.fit(X[:n], y[:n], loss=CE, optimizer=fb.optim.Adam(lr=1e-2), epochs=2,
                  batch_size=bs, shuffle=shuffle, steps_per_callback=s, progress=False,
                  grad_norm=False)
            ms.append(m)
        for p, q in zip(ms[0].parameters(), ms[1].parameters()):
            np.testing.assert_array_equal(p, q)
        assert ms[0].steps_trained == ms[1].steps_trained == 2 * -(-n // bs)

    check()


def test_lambda_callback_and_csv_logger(tmp_path, digits):
    X, y = digits
    seen = []
    lam = fb.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append((e, logs["loss"])))
    csv_path = tmp_path / "log.csv"
    m = _mlp()
    h = m.fit(X, y, loss=CE, optimizer="adam", epochs=2, validation_split=0.2,
              callbacks=[lam, fb.callbacks.CSVLogger(csv_path)], progress=False)
    m.fit(X, y, loss=CE, epochs=1, validation_split=0.2,
          callbacks=[fb.callbacks.CSVLogger(csv_path, append=True)], progress=False)
    assert seen == [(0, h["loss"][0]), (1, h["loss"][1])]
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "epoch,loss,val_loss,lr,time"
    assert len(rows) == 4 and rows[3].startswith("2,")
    assert float(rows[1].split(",")[2]) == h["val_loss"][0]
    with pytest.raises(TypeError, match="on_epoch_end"):
        fb.callbacks.LambdaCallback(on_epoch_end=3)
