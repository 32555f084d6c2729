"""Behaviour of the reference Engine: arena and views, initialisation, counters, optimizer
state, fit_epoch semantics, float32, and input validation (bad input changes nothing)."""
import json
import math

import numpy as np
import pytest

import fastbp as fb
from fastbp import initializers
from fastbp.reference import Engine, rng


def dense(i, o, act="identity", **kw):
    return {"type": "dense", "in": i, "out": o, "activation": act, **kw}


SPEC = [
    dense(4, 6, "relu"),
    {"type": "batchnorm", "dim": 6},
    {"type": "dropout", "dim": 6, "rate": 0.3},
    {"type": "residual", "dim": 6, "layers": [dense(6, 6, "tanh"), {"type": "layernorm", "dim": 6}]},
    dense(6, 3),
]


def data(n=10, d=4, k=3, seed=0):
    g = np.random.default_rng(seed)
    return g.normal(size=(n, d)), g.integers(0, k, n)


def snapshot(eng):
    return (eng.arena().copy(), [b.copy() for b in eng.buffers()], eng.rng_state(),
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in eng.optimizer_state().items()})


def assert_unchanged(eng, snap):
    arena, bufs, rs, st = snap
    np.testing.assert_array_equal(eng.arena(), arena)
    for b, b0 in zip(eng.buffers(), bufs):
        np.testing.assert_array_equal(b, b0)
    assert eng.rng_state() == rs
    st2 = eng.optimizer_state()
    assert st2.keys() == st.keys()
    for k in st:
        np.testing.assert_array_equal(st2[k], st[k])


# ------------------------------------------------------------------------------ arena and views
def test_arena_layout_and_live_views():
    eng = Engine(SPEC, "float64", 0)
    params = eng.parameters()
    shapes = [p.shape for p in params]
    assert shapes == [(4, 6), (6,), (6,), (6,), (6, 6), (6,), (6,), (6,), (6, 3), (3,)]
    assert eng.num_params == sum(int(np.prod(s)) for s in shapes) == eng.arena().size
    flat = np.concatenate([p.ravel() for p in params])
    np.testing.assert_array_equal(eng.arena(), flat)
    for p in params:
        assert np.shares_memory(p, eng.arena())
    params[0][1, 2] = 123.0  # writes through, W row-major (in, out)
    assert eng.arena()[1 * 6 + 2] == 123.0
    eng.arena()[-1] = -7.0
    assert eng.parameters()[-1][-1] == -7.0
    bufs = eng.buffers()
    assert [b.shape for b in bufs] == [(6,), (6,)]
    bufs[1][:] = 4.0
    np.testing.assert_array_equal(eng.buffers()[1], 4.0)
    assert eng.dtype == "float64" and eng.arena().dtype == np.float64
    json.dumps(eng.spec)  # normalised spec stays JSON-serialisable
    assert eng.spec[1]["eps"] == 1e-5 and eng.spec[1]["momentum"] == 0.1


def test_gradients_are_copies_and_predict_has_no_side_effects():
    eng = Engine(SPEC, "float64", 0)
    X, y = data()
    snap = snapshot(eng)
    out = eng.predict(X)
    assert out.shape == (10, 3)
    assert_unchanged(eng, snap)
    _, g1 = eng.loss_and_gradients(X, y, "softmax_cross_entropy")
    g1[0][...] = 0
    _, g2 = eng.loss_and_gradients(X, y, "softmax_cross_entropy")
    assert np.abs(g2[0]).sum() > 0
    assert not np.shares_memory(g2[0], eng.arena())


# ------------------------------------------------------------------------------ initialisation
def test_initialisation_formulas_and_order():
    spec = [dense(5, 7, "relu"), {"type": "residual", "dim": 7, "layers": [dense(7, 7, "tanh")]},
            dense(7, 2, init="he_normal"), {"type": "layernorm", "dim": 2}]
    eng = Engine(spec, "float64", 11)
    g = np.random.default_rng(11)
    W1 = g.uniform(-math.sqrt(6 / 5), math.sqrt(6 / 5), (5, 7))       # he_uniform (relu)
    W2 = g.uniform(-math.sqrt(6 / 14), math.sqrt(6 / 14), (7, 7))     # glorot_uniform (tanh)
    W3 = g.normal(0, math.sqrt(2 / 7), (7, 2))                        # explicit he_normal
    p = eng.parameters()
    np.testing.assert_array_equal(p[0], W1)
    np.testing.assert_array_equal(p[2], W2)
    np.testing.assert_array_equal(p[4], W3)
    for b in (p[1], p[3], p[5], p[7]):
        np.testing.assert_array_equal(b, 0)
    np.testing.assert_array_equal(p[6], 1)
    eng32 = Engine(spec, "float32", 11)
    np.testing.assert_array_equal(eng32.arena(), eng.arena().astype(np.float32))


@pytest.mark.parametrize("init,kind,scale", [
    ("glorot_uniform", "u", math.sqrt(6 / 500)), ("xavier_uniform", "u", math.sqrt(6 / 500)),
    ("glorot_normal", "n", math.sqrt(2 / 500)), ("xavier_normal", "n", math.sqrt(2 / 500)),
    ("he_uniform", "u", math.sqrt(6 / 200)), ("kaiming_uniform", "u", math.sqrt(6 / 200)),
    ("he_normal", "n", math.sqrt(2 / 200)), ("kaiming_normal", "n", math.sqrt(2 / 200)),
    ("lecun_uniform", "u", math.sqrt(3 / 200)), ("lecun_normal", "n", math.sqrt(1 / 200)),
])
def test_initialiser_statistics(init, kind, scale):
    W = Engine([dense(200, 300, init=init)], "float64", 3).parameters()[0]
    if kind == "u":
        assert W.max() <= scale and W.min() >= -scale and W.max() > 0.99 * scale
        assert W.std() == pytest.approx(scale / math.sqrt(3), rel=0.02)
    else:
        assert W.std() == pytest.approx(scale, rel=0.02)
    assert abs(W.mean()) < 0.01 * scale


def test_initialiser_aliases_and_errors():
    a = Engine([dense(3, 4, init="xavier_normal")], "float64", 1).arena()
    b = Engine([dense(3, 4, init="glorot_normal")], "float64", 1).arena()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="init"):
        Engine([dense(3, 4, init="orthogonal")], "float64", 1)
    with pytest.raises(ValueError, match="init"):
        fb.layers.init_parameters([dense(3, 4, init="bogus")], [np.zeros((3, 4)), np.zeros(4)], [], 0)
    assert initializers.default_init("elu") == "he_uniform"
    assert initializers.default_init("gelu") == "glorot_uniform"


def test_batchnorm_buffers_initialised():
    eng = Engine(SPEC, "float32", 0)
    rm, rv = eng.buffers()
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)


# ------------------------------------------------------------------------------ counters and RNG
def test_counters_and_determinism():
    X, y = data(n=11)
    a, b = Engine(SPEC, "float64", 5), Engine(SPEC, "float64", 5)
    for e in (a, b):
        e.set_optimizer("adam", {"lr": 0.01})
    assert a.rng_state() == (5, 0, 0)
    a.predict(X)
    assert a.rng_state() == (5, 0, 0)
    a.loss_and_gradients(X, y, "softmax_cross_entropy")
    assert a.rng_state() == (5, 1, 0)
    a.train_step(X, y, "softmax_cross_entropy")
    assert a.rng_state() == (5, 2, 0)
    a.fit_epoch(X, y, "softmax_cross_entropy", None, None, 4, True, None)
    assert a.rng_state() == (5, 5, 1)
    a.fit_epoch(X, y, "softmax_cross_entropy", None, None, 4, False, None)
    assert a.rng_state() == (5, 8, 1)
    # Same operations on b give bit-identical results.
    b.loss_and_gradients(X, y, "softmax_cross_entropy")
    b.train_step(X, y, "softmax_cross_entropy")
    b.fit_epoch(X, y, "softmax_cross_entropy", None, None, 4, True, None)
    b.fit_epoch(X, y, "softmax_cross_entropy", None, None, 4, False, None)
    np.testing.assert_array_equal(a.arena(), b.arena())


def test_rng_state_roundtrip_reproduces_dropout():
    X, y = data()
    eng = Engine(SPEC, "float64", 2)
    state = eng.rng_state()
    l1, g1 = eng.loss_and_gradients(X, y, "softmax_cross_entropy")
    l2, _ = eng.loss_and_gradients(X, y, "softmax_cross_entropy")
    assert l1 != l2  # a different dropout mask (and running stats do not affect training)
    eng.set_rng_state(state)
    l3, g3 = eng.loss_and_gradients(X, y, "softmax_cross_entropy")
    assert l3 == l1
    eng.set_rng_state(*state)
    assert eng.rng_state() == state
    with pytest.raises(ValueError):
        eng.set_rng_state(1, 2)
    with pytest.raises(ValueError):
        eng.set_rng_state(-1, 0, 0)


def test_dropout_layer_index_is_preorder_and_scaling():
    rate = 0.5
    spec = [dense(4, 4), {"type": "residual", "dim": 4, "layers": [
        dense(4, 4), {"type": "dropout", "dim": 4, "rate": rate}]},
        {"type": "dropout", "dim": 4, "rate": rate}]
    eng = Engine(spec, "float64", 9)
    p = eng.parameters()
    for W in (p[0], p[2]):
        W[...] = np.eye(4)
    X = np.random.default_rng(0).normal(size=(3, 4))
    eng.set_rng_state(9, 4, 0)
    loss, _ = eng.loss_and_gradients(X, np.zeros((3, 4)), "mse")
    m3 = rng.dropout_mask(9, 4, 3, (3, 4), rate) / (1 - rate)  # dense=0 residual=1 dense=2 dropout=3
    m4 = rng.dropout_mask(9, 4, 4, (3, 4), rate) / (1 - rate)
    out = (X + X * m3) * m4
    assert loss == pytest.approx((out ** 2).mean(), rel=1e-14)
    np.testing.assert_array_equal(eng.predict(X), 2 * X)


# ------------------------------------------------------------------------------ optimizer state
def test_optimizer_state_roundtrip_and_reset():
    X, y = data()
    a = Engine(SPEC, "float64", 0)
    a.set_optimizer("adam", {"lr": 0.01, "amsgrad": True})
    for _ in range(3):
        a.train_step(X, y, "softmax_cross_entropy")
    st = a.optimizer_state()
    assert set(st) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"} and st["step"] == 3
    b = Engine(SPEC, "float64", 0)
    b.arena()[:] = a.arena()
    for bb, ba in zip(b.buffers(), a.buffers()):
        bb[:] = ba
    b.set_optimizer("adam", {"lr": 0.01, "amsgrad": True})
    b.set_optimizer_state(st)
    b.set_rng_state(a.rng_state())
    a.train_step(X, y, "softmax_cross_entropy")
    b.train_step(X, y, "softmax_cross_entropy")
    np.testing.assert_array_equal(a.arena(), b.arena())
    # same name keeps the state, another name resets it
    a.set_optimizer("adam", {"lr": 0.001})
    assert a.optimizer_state()["step"] == 4 and "max_exp_avg_sq" not in a.optimizer_state()
    a.set_optimizer("sgd", {"lr": 0.1, "momentum": 0.9})
    st = a.optimizer_state()
    assert st["step"] == 0 and set(st) == {"step", "momentum_buffer"}
    a.set_optimizer("rmsprop", {"momentum": 0.5, "centered": True})
    assert set(a.optimizer_state()) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    a.set_optimizer("adagrad", {"initial_accumulator_value": 0.25})
    np.testing.assert_array_equal(a.optimizer_state()["sum"], 0.25)


def test_sgd_momentum_first_step_and_restored_state():
    X, y = data()
    eng = Engine([dense(4, 3)], "float64", 0)
    eng.set_optimizer("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5})
    _, g = eng.loss_and_gradients(X, y, "softmax_cross_entropy")
    eng.set_rng_state(0, 0, 0)
    eng.train_step(X, y, "softmax_cross_entropy")
    flat = np.concatenate([x.ravel() for x in g])
    # no dampening on step 1
    np.testing.assert_allclose(eng.optimizer_state()["momentum_buffer"], flat, rtol=1e-15)


def test_set_lr_and_clipping_hyper():
    eng = Engine([dense(4, 3)], "float64", 0)
    with pytest.raises(RuntimeError):
        eng.set_lr(0.1)
    with pytest.raises(RuntimeError):
        eng.train_step(*data(), "softmax_cross_entropy")
    eng.set_optimizer("sgd", {"lr": 1.0, "clip_norm": 1e-3})
    eng.set_lr(0.5)
    before = eng.arena().copy()
    eng.train_step(*data(), "softmax_cross_entropy")
    step = before - eng.arena()
    assert np.linalg.norm(step) == pytest.approx(0.5 * 1e-3, rel=1e-4)
    with pytest.raises(ValueError, match="lr"):
        eng.set_lr(-1.0)


# ------------------------------------------------------------------------------ fit_epoch
def test_fit_epoch_equals_train_steps_in_permutation_order():
    X, y = data(n=14)
    w = np.linspace(0.1, 2.0, 14)
    a, b = Engine(SPEC, "float64", 4), Engine(SPEC, "float64", 4)
    lrs = np.array([0.1, 0.05, 0.02, 0.01])
    for e in (a, b):
        e.set_optimizer("sgd", {"lr": 1.0, "momentum": 0.9})
    loss = a.fit_epoch(X, y, "softmax_cross_entropy", {"l2": 0.01}, w, 4, True, lrs)
    perm = rng.shuffle_permutation(4, 0, 14)
    total = 0.0
    for k in range(4):
        idx = perm[4 * k:4 * k + 4]
        b.set_lr(lrs[k])
        total += b.train_step(X[idx], y[idx], "softmax_cross_entropy", {"l2": 0.01}, w[idx]) * len(idx)
    assert loss == pytest.approx(total / 14, rel=1e-14)
    np.testing.assert_array_equal(a.arena(), b.arena())
    assert a.rng_state() == (4, 4, 1) and b.rng_state() == (4, 4, 0)


def test_fit_epoch_zero_weight_batch_contributes_zero():
    X, y = data(n=6)
    w = np.array([0, 0, 0, 1.0, 2.0, 3.0])
    eng = Engine([dense(4, 3)], "float64", 0)
    eng.set_optimizer("sgd", {"lr": 0.1})
    before = eng.arena().copy()
    loss = eng.fit_epoch(X[:3], y[:3], "softmax_cross_entropy", None, np.ones(3), 3, False, None)
    assert np.isfinite(loss)
    eng.arena()[:] = before
    loss = eng.fit_epoch(X, y, "softmax_cross_entropy", None, w, 3, False, None)
    assert np.isfinite(loss)


# ------------------------------------------------------------------------------ float32
def test_float32_engine_stays_float32_and_tracks_float64():
    X, y = data(n=12)
    e32, e64 = Engine(SPEC, "float32", 1), Engine(SPEC, "float64", 1)
    e64.arena()[:] = e32.arena()
    out32 = e32.predict(X)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, e64.predict(X), rtol=1e-4, atol=1e-5)
    l32, g32 = e32.loss_and_gradients(X, y, "softmax_cross_entropy", {"l1": 1e-3, "l2": 1e-3})
    l64, g64 = e64.loss_and_gradients(X, y, "softmax_cross_entropy", {"l1": 1e-3, "l2": 1e-3})
    assert l32 == pytest.approx(l64, rel=1e-5)
    for a, b in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    for name in ("sgd", "adam", "adamw", "rmsprop", "adagrad"):
        e32.set_optimizer(name, {"lr": 0.01, "clip_norm": 1.0, "clip_value": 0.5})
        e32.fit_epoch(X, y, "softmax_cross_entropy", None, None, 5, True, None)
        assert e32.arena().dtype == np.float32
        for v in e32.optimizer_state().values():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32
    assert all(b.dtype == np.float32 for b in e32.buffers())


# ------------------------------------------------------------------------------ validation
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="dtype"):
        Engine(SPEC, "float16", 0)
    with pytest.raises(TypeError, match="dtype"):
        Engine(SPEC, object(), 0)
    with pytest.raises(TypeError, match="seed"):
        Engine(SPEC, "float32", 1.5)
    with pytest.raises(ValueError, match="seed"):
        Engine(SPEC, "float32", -1)
    with pytest.raises(ValueError, match="type"):
        Engine([{"type": "conv", "dim": 3}], "float32", 0)
    with pytest.raises(ValueError, match="input features"):
        Engine([dense(4, 5), dense(6, 2)], "float32", 0)
    with pytest.raises(ValueError, match="residual"):
        Engine([{"type": "residual", "dim": 4, "layers": [dense(4, 5)]}], "float32", 0)
    with pytest.raises(ValueError, match="activation"):
        Engine([dense(4, 5, "swish")], "float32", 0)
    with pytest.raises(ValueError, match="rate"):
        Engine([{"type": "dropout", "dim": 3, "rate": 1.5}], "float32", 0)
    with pytest.raises(ValueError, match="'in'"):
        Engine([{"type": "dense", "out": 3}], "float32", 0)
    with pytest.raises(ValueError, match="at least one"):
        Engine([], "float32", 0)
    with pytest.raises(TypeError, match="spec"):
        Engine("dense", "float32", 0)


def _bad_calls(X, y):
    n = len(X)
    return [
        (ValueError, "X", dict(X=X[:, :3])),
        (ValueError, "X", dict(X=X[0])),
        (ValueError, "X", dict(X=X[:0], y=y[:0])),
        (ValueError, "NaN", dict(X=np.where(np.eye(n, 4) > 0, np.nan, X))),
        (TypeError, "X", dict(X=X.astype(str))),
        (TypeError, "X", dict(X=X.astype(complex))),
        (ValueError, "labels", dict(y=np.full(n, 3))),
        (ValueError, "labels", dict(y=np.full(n, -1))),
        (TypeError, "integer", dict(y=y.astype(np.float64))),
        (ValueError, "y", dict(y=y[:-1])),
        (ValueError, "y", dict(y=np.ones((n, 2)))),
        (ValueError, "loss", dict(loss="hinge")),
        (ValueError, "loss_params", dict(loss_params={"gamma": 1.0})),
        (ValueError, "loss_params", dict(loss_params={"l2": -1.0})),
        (ValueError, "sample_weight", dict(sample_weight=np.ones(n + 1))),
        (ValueError, "sample_weight", dict(sample_weight=-np.ones(n))),
        (ValueError, "sample_weight", dict(sample_weight=np.zeros(n))),
    ]


@pytest.mark.parametrize("method", ["loss_and_gradients", "train_step", "fit_epoch"])
def test_bad_input_raises_and_changes_nothing(method):
    X, y = data()
    eng = Engine(SPEC, "float64", 0)
    eng.set_optimizer("adam", {})
    eng.train_step(X, y, "softmax_cross_entropy")
    snap = snapshot(eng)
    for exc, match, kw in _bad_calls(X, y):
        args = dict(X=X, y=y, loss="softmax_cross_entropy", loss_params=None, sample_weight=None)
        args.update(kw)
        with pytest.raises(exc, match=match):
            if method == "fit_epoch":
                eng.fit_epoch(**args, batch_size=4, shuffle=True, lrs=None)
            else:
                getattr(eng, method)(**args)
        assert_unchanged(eng, snap)


def test_batchnorm_batch_of_one_raises_before_any_change():
    X, y = data(n=9)
    eng = Engine(SPEC, "float64", 0)
    eng.set_optimizer("sgd", {"lr": 0.1})
    snap = snapshot(eng)
    with pytest.raises(ValueError, match="batchnorm"):
        eng.loss_and_gradients(X[:1], y[:1], "softmax_cross_entropy")
    with pytest.raises(ValueError, match="batchnorm"):
        eng.train_step(X[:1], y[:1], "softmax_cross_entropy")
    with pytest.raises(ValueError, match="batchnorm"):  # last mini-batch would hold 1 sample
        eng.fit_epoch(X, y, "softmax_cross_entropy", None, None, 4, True, None)
    assert_unchanged(eng, snap)
    assert eng.predict(X[:1]).shape == (1, 3)  # inference is fine


def test_bad_fit_and_optimizer_arguments():
    X, y = data(n=8)
    eng = Engine([dense(4, 3)], "float64", 0)
    with pytest.raises(ValueError, match="optimizer"):
        eng.set_optimizer("lbfgs", {})
    with pytest.raises(ValueError, match="momentum"):
        eng.set_optimizer("sgd", {"lr": 0.1, "nesterov": True})
    with pytest.raises(ValueError, match="lr"):
        eng.set_optimizer("sgd", {"lr": -0.1})
    eng.set_optimizer("sgd", {})  # torch's default lr=1e-3
    assert eng._opt_hyper["lr"] == 1e-3
    with pytest.raises(ValueError, match="unknown"):
        eng.set_optimizer("adam", {"beta3": 0.1})
    with pytest.raises(ValueError, match="clip_norm"):
        eng.set_optimizer("adam", {"clip_norm": -1.0})
    eng.set_optimizer("adam", {"betas": (0.8, 0.9)})
    snap = snapshot(eng)
    with pytest.raises(ValueError, match="lrs"):
        eng.fit_epoch(X, y, "softmax_cross_entropy", None, None, 3, True, np.ones(2))
    with pytest.raises(ValueError, match="batch_size"):
        eng.fit_epoch(X, y, "softmax_cross_entropy", None, None, 0, True, None)
    with pytest.raises(ValueError, match="state"):
        eng.set_optimizer_state({"step": 1, "exp_avg": np.zeros(eng.num_params)})
    with pytest.raises(ValueError, match="shape"):
        eng.set_optimizer_state({"step": 1, "exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3)})
    with pytest.raises(ValueError, match="step"):
        eng.set_optimizer_state({"step": -1, "exp_avg": np.zeros(eng.num_params),
                                 "exp_avg_sq": np.zeros(eng.num_params)})
    assert_unchanged(eng, snap)


def test_input_conversion():
    eng = Engine([dense(2, 1)], "float32", 0)
    X = np.arange(8, dtype=np.int64).reshape(4, 2)
    out = eng.predict(X)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, eng.predict(np.asfortranarray(X.astype(np.float64))))
    np.testing.assert_array_equal(out, eng.predict(X.tolist()))
    loss, _ = eng.loss_and_gradients(X, [1, 2, 3, 4], "mse")  # 1-D targets for a single output
    loss2, _ = eng.loss_and_gradients(X, [[1], [2], [3], [4]], "mse")
    assert loss == loss2
    with pytest.raises(ValueError, match="NaN"):
        eng.predict(np.full((2, 2), 1e300))  # overflows float32
