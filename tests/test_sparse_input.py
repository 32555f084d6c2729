"""Sparse (CSR) input rows: the native first dense layer over the non-zeros against the dense
path and against the NumPy reference (scipy.sparse), float32 and float64, awkward shapes,
every ISA; checks of the CSR arrays; fastbp.sklearn with sparse X."""
import numpy as np
import pytest
from conftest import tol

import fastbp as fb
from fastbp.reference.engine import Engine

sp = pytest.importorskip("scipy.sparse")

DTYPES = ["float32", "float64"]


def _spec(d, h, k, act="tanh"):
    return [{"type": "dense", "in": d, "out": h, "activation": act},
            {"type": "dense", "in": h, "out": k, "activation": "identity"}]


def _pair(spec, dtype, seed=3):
    nat = fb.MLP([spec[0]["in"], spec[0]["out"], spec[1]["out"]], activation="tanh",
                 dtype=dtype, seed=seed).engine
    ref = Engine(spec, dtype, seed)
    ref.arena()[...] = nat.arena()
    return nat, ref


def _csr(n, d, density, dtype, seed=0):
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=dtype)
    X.data = (X.data * 4 - 2).astype(dtype)
    return X, X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)


def _close(a, b, dtype, k):
    r, a_ = tol(dtype, k)
    np.testing.assert_allclose(a, b, rtol=r * 4, atol=a_ * 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,h", [(1, 7, 1), (7, 33, 5), (33, 65, 33), (40, 300, 70)])
def test_predict_and_gradients_match_dense_and_reference(isa, dtype, n, d, h):
    nat, ref = _pair(_spec(d, h, 3), dtype)
    X, *csr = _csr(n, d, 0.1, dtype)
    y = np.random.default_rng(1).integers(0, 3, n)
    Xd = X.toarray()
    _close(nat.predict_csr(*csr), nat.predict(Xd), dtype, d)
    _close(nat.predict_csr(*csr), ref.predict_csr(*csr), dtype, d)
    ln, gn = nat.loss_and_gradients_csr(*csr, y, "softmax_cross_entropy", {"l2": 0.1})
    ld, gd = nat.loss_and_gradients(Xd, y, "softmax_cross_entropy", {"l2": 0.1})
    lr_, gr = ref.loss_and_gradients_csr(*csr, y, "softmax_cross_entropy", {"l2": 0.1})
    _close(ln, ld, dtype, n)
    _close(ln, lr_, dtype, n)
    _close(gn, np.concatenate([g.ravel() for g in gd]), dtype, n * h)
    _close(gn, gr, dtype, n * h)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_epoch_csr_is_the_dense_epoch(isa, dtype, weighted):
    # the same shuffle stream and mini-batches: the same training as dense input
    nat, ref = _pair(_spec(50, 9, 2), dtype)
    dense, _ = _pair(_spec(50, 9, 2), dtype)
    X, *csr = _csr(37, 50, 0.08, dtype, seed=2)
    y = np.random.default_rng(4).standard_normal((37, 2)).astype(dtype)
    w = np.random.default_rng(5).random(37).astype(dtype) if weighted else None
    for e in (nat, ref, dense):
        e.set_optimizer("adam", {"lr": 0.01})
    for _ in range(3):
        a = nat.fit_epoch_csr(*csr, y, "mse", {"l2": 0.01}, w, 8, True)
        b = ref.fit_epoch_csr(*csr, y, "mse", {"l2": 0.01}, w, 8, True)
        c = dense.fit_epoch(X.toarray(), y, "mse", {"l2": 0.01}, w, 8, True)
        _close(a, b, dtype, 37)
        _close(a, c, dtype, 37)
    _close(nat.arena(), ref.arena(), dtype, 300)
    _close(nat.arena(), dense.arena(), dtype, 300)
    assert nat.rng_state() == dense.rng_state()


@pytest.mark.parametrize("opt, hyper, pen, batch, shuffle", [
    ("sgd", {"lr": 0.1}, None, 300, False),
    ("adam", {"lr": 0.01}, {"l1": 1e-4, "l2": 1e-2}, 16, True)])
def test_results_do_not_depend_on_the_thread_count(opt, hyper, pen, batch, shuffle):
    """Adam with a penalty folds it into the update: on one thread, and on a region sharing
    this 0.5M-parameter arena at two (nn/network_penalty.cpp)."""
    X, *csr = _csr(300, 2000, 0.01, "float32", seed=7)
    y = np.random.default_rng(0).integers(0, 4, 300)
    out = []
    for nt in (1, 2):
        before = fb.get_num_threads()
        fb.set_num_threads(nt)
        try:
            e = fb.MLP([2000, 256, 4], dtype="float32", seed=0).engine
            e.set_optimizer(opt, hyper)
            v = [e.fit_epoch_csr(*csr, y, "softmax_cross_entropy", pen, None, batch, shuffle)
                 for _ in range(2)]
            out.append((e.arena().copy(), e.predict_csr(*csr), v))
        finally:
            fb.set_num_threads(before)
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])
    assert out[0][2] == out[1][2]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_bad_csr_arrays_are_rejected_and_change_nothing(backend):
    spec = _spec(6, 4, 2)
    eng = fb.MLP([6, 4, 2], seed=0, dtype="float64").engine if backend == "native" \
        else Engine(spec, "float64", 0)
    eng.set_optimizer("sgd", {"lr": 0.1})
    before = eng.arena().copy()
    y = np.zeros((2, 2))
    good = (np.array([1.0, 2.0]), np.array([0, 5]), np.array([0, 1, 2]))
    bad = [
        (good[0], np.array([0, 6]), good[2]),            # column out of range
        (good[0], good[1], np.array([0, 2, 1])),         # decreasing indptr
        (good[0], good[1], np.array([1, 1, 2])),         # does not start at 0
        (good[0][:1], good[1], good[2]),                 # lengths differ
        (np.array([1.0, np.nan]), good[1], good[2]),     # NaN
        (good[0], good[1], np.array([0])),               # no rows
    ]
    for d, j, p in bad:
        with pytest.raises(ValueError):
            eng.fit_epoch_csr(d, j, p, y, "mse", None, None, 2, True)
    with pytest.raises(TypeError):
        eng.fit_epoch_csr(good[0], good[1].astype(float), good[2], y, "mse")
    np.testing.assert_array_equal(eng.arena(), before)
    eng.fit_epoch_csr(*good, y, "mse", None, None, 2, True)
    assert not np.array_equal(eng.arena(), before)


def test_sparse_needs_a_dense_first_layer():
    spec = [{"type": "dropout", "dim": 3, "rate": 0.1},
            {"type": "dense", "in": 3, "out": 2, "activation": "identity"}]
    for eng in (fb.Sequential([fb.Dropout(0.1), fb.Dense(2)], input_dim=3).engine,
                Engine(spec, "float32", 0)):
        with pytest.raises(ValueError, match="first layer is dense"):
            eng.predict_csr(np.ones(1, np.float32), np.array([0]), np.array([0, 1]))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sklearn_estimators_take_sparse_input(fmt, solver):
    from fastbp.sklearn import MLPClassifier, MLPRegressor

    X, *_ = _csr(120, 80, 0.05, "float64", seed=3)
    Xs = X.asformat(fmt)
    s = np.asarray(X.sum(axis=1)).ravel()
    y = (s > np.median(s)).astype(int)
    kw = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=40, random_state=0,
              learning_rate_init=0.01)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw).fit(Xs, y)
        b = MLPClassifier(**kw).fit(X.toarray(), y)
        r = MLPRegressor(**kw).fit(Xs, y.astype(float))
    np.testing.assert_allclose(a.predict_proba(Xs), b.predict_proba(X.toarray()), rtol=1e-7,
                               atol=1e-9)
    np.testing.assert_array_equal(a.predict(Xs), a.predict(X.toarray()))
    assert r.predict(Xs).shape == (120,)
    # the network's dtype follows the sparse input's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c = MLPClassifier(**kw).fit(Xs.astype(np.float32), y)
    assert c.coefs_[0].dtype == np.float32


@pytest.mark.parametrize("opt, hyper, pen", [
    ("adam", {"lr": 0.01}, {}),
    ("adam", {"lr": 0.01}, {"l2": 1e-2}),                           # folded into the update
    ("adam", {"lr": 0.01, "clip_norm": 0.5}, {"l1": 1e-3}),         # the penalty pass
    ("adam", {"lr": 0.01, "weight_decay": 0.1}, {}),                # coupled, in registers
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}, {}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}, {}),  # g += wd * p in place
    ("rmsprop", {"lr": 0.01, "weight_decay": 0.1}, {}),
    ("adagrad", {"lr": 0.1, "weight_decay": 0.1, "clip_value": 0.05}, {"l2": 1e-2})])
@pytest.mark.parametrize("dtype", DTYPES)
def test_epoch_steps_are_one_step_epochs(isa, dtype, opt, hyper, pen):
    """Inside one fit_epoch_csr call a step clears only the rows of the first layer's weight
    gradient that its non-zeros touched (the rest is still zero), unless the gradient was
    written whole (a penalty pass, a coupled weight decay): bitwise the same as each batch in
    a call of its own, whose one step clears all of it."""
    X, *csr = _csr(64, 300, 0.02, dtype, seed=11)
    y = np.random.default_rng(1).integers(0, 3, 64)
    whole, steps = (fb.MLP([300, 16, 3], dtype=dtype, seed=2).engine for _ in range(2))
    for e in (whole, steps):
        e.set_optimizer(opt, hyper)
    a = whole.fit_epoch_csr(*csr, y, "softmax_cross_entropy", pen, None, 8, False)
    b = []
    for s in range(0, 64, 8):
        part = X[s:s + 8]
        b.append(steps.fit_epoch_csr(part.data, part.indices.astype(np.int64),
                                     part.indptr.astype(np.int64), y[s:s + 8],
                                     "softmax_cross_entropy", pen, None, 8, False))
    np.testing.assert_array_equal(whole.arena(), steps.arena())
    np.testing.assert_allclose(a, np.mean(b), rtol=1e-6 if dtype == "float32" else 1e-12)
