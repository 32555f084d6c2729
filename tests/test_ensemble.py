"""fb.Ensemble: the member contract (member k == a solo fit on its rows with its own
hyper-parameters), native vs reference, per-model options, early stopping, save/load, and
bad input rejected before any training."""
import copy

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core

CE = "softmax_cross_entropy"


def _data(n=90, d=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, n)
    return X, y


def _subsets(n, sizes, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.choice(n, s, replace=False) for s in sizes]


def _same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def _solo(sizes, seed, dtype, backend, X, y, opt, **kw):
    m = fb.MLP(sizes, dtype=dtype, seed=seed, backend=backend)
    h = m.fit(X, y, optimizer=opt, progress=False, grad_norm=False, **kw)
    return m, h


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_member_contract_bitwise(backend, dtype, isa):
    X, y = _data()
    subs = _subsets(90, [33, 7, 90, 1])
    seeds = [3, 11, 0, 7]
    lrs, l2 = [1e-2, 3e-2, 5e-3, 2e-2], [0.0, 1e-3, 1e-2, 0.0]
    betas = ([0.9, 0.8, 0.95, 0.9], 0.99)
    ens = fb.Ensemble([7, 9, 3], n_models=4, dtype=dtype, seeds=seeds, backend=backend)
    hs = ens.fit(X, y, loss=CE, optimizer=fb.optim.Adam(lr=lrs, betas=betas), epochs=3,
                 batch_size=8, subsets=subs, l2=l2, validation_data=(X[:10], y[:10]),
                 schedule=fb.schedules.StepLR(step_size=2, gamma=0.5))
    for k in range(4):
        opt = fb.optim.Adam(lr=lrs[k], betas=(betas[0][k], 0.99))
        m, h = _solo([7, 9, 3], seeds[k], dtype, backend, X[subs[k]], y[subs[k]], opt,
                     loss=CE, epochs=3, batch_size=8, l2=l2[k],
                     validation_data=(X[:10], y[:10]),
                     schedule=fb.schedules.StepLR(step_size=2, gamma=0.5))
        assert _same(m, ens.models[k])
        st, se = m.engine.optimizer_state(), ens.models[k].engine.optimizer_state()
        assert all(np.array_equal(st[key], se[key]) for key in st)
        assert h["loss"] == hs[k]["loss"] and h["val_loss"] == hs[k]["val_loss"]
        assert h["lr"] == hs[k]["lr"] and h["lr"][0] != h["lr"][2]
        assert ens.models[k].epochs_trained == 3
    assert ens.predict(X).shape == (4, 90, 3)
    np.testing.assert_array_equal(ens.predict(X)[2], ens.models[2].predict(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_matches_reference(dtype):
    X, _y = _data(n=57)
    y2 = np.random.default_rng(2).normal(size=(57, 3))
    subs = _subsets(57, [20, 57, 33])
    w = np.random.default_rng(3).uniform(0.1, 2.0, 57)
    out = []
    for backend in ("native", "reference"):
        ens = fb.Ensemble([7, 33, 3], n_models=3, activation="tanh", dtype=dtype,
                          seeds=[1, 2, 3], backend=backend)
        ens.fit(X, y2, loss="huber", optimizer=fb.optim.SGD(lr=[0.05, 0.02, 0.1],
                                                             momentum=[0.9, 0.0, 0.5]),
                epochs=4, batch_size=7, subsets=subs, sample_weight=w, l1=[0, 1e-3, 0],
                delta=0.5, schedule=fb.schedules.StepLR(step_size=1, gamma=0.5),
                schedule_per="step")
        out.append(ens.predict(X))
    rtol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(out[0], out[1], rtol=rtol, atol=rtol)


def test_thread_count_does_not_change_results():
    X, y = _data()
    subs = _subsets(90, [40, 50, 60])
    before = fb.get_num_threads()
    res = []
    try:
        for t in (1, 2):
            fb.set_num_threads(t)
            ens = fb.Ensemble([7, 16, 3], n_models=3, seeds=[0, 1, 2])
            ens.fit(X, y, loss=CE, optimizer="adam", epochs=2, subsets=subs)
            res.append(ens.predict(X))
    finally:
        fb.set_num_threads(before)
    np.testing.assert_array_equal(res[0], res[1])


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_dropout_rates_and_layers_per_model(backend):
    X, y = _data()
    layers = [fb.Dense(12, activation="relu"), fb.Dropout(0.5), fb.Dense(3)]
    ens = fb.Ensemble(layers, input_dim=7, n_models=3, dropout=[0.0, 0.2, 0.5],
                      seeds=[4, 5, 6], dtype="float64", backend=backend)
    ens.fit(X, y, loss=CE, optimizer=fb.optim.RMSprop(lr=1e-2, centered=[True, False, True]),
            epochs=2, batch_size=16)
    for k, rate in enumerate([0.0, 0.2, 0.5]):
        m = fb.Sequential([fb.Dense(12, activation="relu"), fb.Dropout(rate), fb.Dense(3)],
                          input_dim=7, seed=4 + k, dtype="float64", backend=backend)
        m.fit(X, y, loss=CE, optimizer=fb.optim.RMSprop(lr=1e-2, centered=[True, False,
                                                                           True][k]),
              epochs=2, batch_size=16, progress=False)
        assert _same(m, ens.models[k])


def test_early_stopping_per_member_stops_its_compute():
    X, y = _data()
    cb = fb.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    ens = fb.Ensemble([7, 8, 3], n_models=3, seeds=[0, 1, 2], dtype="float64")
    # member 1 with min_delta=10 stops after its second epoch; the others keep going
    cbs = [[], [copy.deepcopy(cb)], []]
    hs = ens.fit(X, y, loss=CE, optimizer="adam", epochs=5, callbacks=cbs)
    assert [m.epochs_trained for m in ens.models] == [5, 2, 5]
    assert [len(h) for h in hs] == [5, 2, 5]
    m, _ = _solo([7, 8, 3], 1, "float64", "native", X, y, "adam", loss=CE, epochs=5,
                 callbacks=[copy.deepcopy(cb)])
    assert m.epochs_trained == 2 and _same(m, ens.models[1])
    # a template callback is copied per member
    ens2 = fb.Ensemble([7, 8, 3], n_models=2)
    ens2.fit(X, y, loss=CE, optimizer="adam", epochs=3, callbacks=[cb])
    assert [m.epochs_trained for m in ens2.models] == [2, 2]


def test_save_load_continues_exactly(tmp_path):
    X, y = _data()
    subs = _subsets(90, [40, 70])
    a = fb.Ensemble([7, 8, 3], n_models=2, seeds=[9, 8])
    a.fit(X, y, loss=CE, optimizer=fb.optim.Adam(lr=[1e-2, 1e-3]), epochs=2, subsets=subs)
    path = tmp_path / "ens.npz"
    a.save(path)
    b = fb.load_ensemble(path)
    assert b.n_models == 2 and b.seeds == [9, 8]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    a.fit(X, y, loss=CE, epochs=2, subsets=subs)
    b.fit(X, y, loss=CE, epochs=2, subsets=subs)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a valid fastbp ensemble"):
        fb.load_ensemble(tmp_path / "bad.npz")


def test_an_optimizer_name_continues_the_members_optimizers():
    """ens.fit(optimizer="adam") twice trains as epochs=2 in one call (as for one model: the
    name of the members' kind continues their optimizers); a new object starts them afresh,
    the same one again continues them."""
    X, y = _data()
    a = fb.Ensemble([7, 8, 3], n_models=2, seeds=[9, 8])
    b = fb.Ensemble([7, 8, 3], n_models=2, seeds=[9, 8])
    a.fit(X, y, loss=CE, optimizer="adam", epochs=1, batch_size=16)
    a.fit(X, y, loss=CE, optimizer="adam", epochs=1, batch_size=16)
    b.fit(X, y, loss=CE, optimizer="adam", epochs=2, batch_size=16)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert [m.engine.optimizer_state()["step"] for m in a.models] == [12, 12]
    opt = fb.optim.Adam(lr=[1e-2, 1e-3])
    a.fit(X, y, loss=CE, optimizer=opt, epochs=1, batch_size=16)
    assert [m.engine.optimizer_state()["step"] for m in a.models] == [6, 6]
    # the same object again continues (as for one model), unless changed since or replaced
    a.fit(X, y, loss=CE, optimizer=opt, epochs=1, batch_size=16)
    assert [m.engine.optimizer_state()["step"] for m in a.models] == [12, 12]
    assert [m.optimizer.lr for m in a.models] == [1e-2, 1e-3]
    opt.lr = [3e-3, 3e-3]
    a.fit(X, y, loss=CE, optimizer=opt, epochs=1, batch_size=16)
    assert [m.engine.optimizer_state()["step"] for m in a.models] == [6, 6]
    a.fit(X, y, loss=CE, optimizer="sgd", epochs=1, batch_size=16)
    a.fit(X, y, loss=CE, optimizer=opt, epochs=1, batch_size=16)  # not its source any more
    assert all(isinstance(m.optimizer, fb.optim.Adam) for m in a.models)
    assert [m.engine.optimizer_state()["step"] for m in a.models] == [6, 6]


def _state(ens):
    return [(m.engine.arena().copy(), m.engine.rng_state(), m.epochs_trained)
            for m in ens.models]


@pytest.mark.parametrize("kwargs, err, match", [
    ({"optimizer": fb.optim.Adam(lr=[1e-3, 1e-3])}, ValueError, "2 values for 3 models"),
    ({"l2": [0.1, 0.2]}, ValueError, "one value per model"),
    ({"subsets": [[0, 1], [2, 3]]}, ValueError, "one index array per model"),
    ({"subsets": [[0, 1], [2, 90], [4]]}, ValueError, "out of range"),
    ({"subsets": [[0, 1], [2, -1], [4]]}, ValueError, "out of range"),
    ({"subsets": [[0, 1], [2, 2], [4]]}, ValueError, "duplicate"),
    ({"subsets": [[0, 1], [], [4]]}, ValueError, "empty"),
    ({"subsets": [[0, 1], [0.5], [4]]}, TypeError, "integer row indices"),
    ({"optimizer": fb.optim.SGD(lr=0.1, momentum=[0.0, 0.0, 0.0], nesterov=[False, True,
                                                                            False])},
     ValueError, "[Nn]esterov"),
])
def test_bad_input_rejected_before_training(kwargs, err, match):
    X, y = _data()
    ens = fb.Ensemble([7, 8, 3], n_models=3)
    ens.fit(X, y, loss=CE, optimizer="sgd", epochs=1)
    before = _state(ens)
    args = {"loss": CE, "optimizer": "adam", "epochs": 2}
    args.update(kwargs)
    with pytest.raises(err, match=match):
        ens.fit(X, y, **args)
    after = _state(ens)
    for (a, r, e), (a2, r2, e2) in zip(before, after):
        assert np.array_equal(a, a2) and tuple(r) == tuple(r2) and e == e2


def test_bad_construction():
    with pytest.raises(ValueError, match="one seed per model"):
        fb.Ensemble([4, 3], n_models=3, seeds=[1, 2])
    with pytest.raises(ValueError, match="one value per model"):
        fb.Ensemble([fb.Dense(3), fb.Dropout(0.1), fb.Dense(2)], input_dim=4, n_models=2,
                    dropout=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="n_models"):
        fb.Ensemble([4, 3], n_models=0)
    assert fb.Ensemble([4, 3], seeds=[5, 6, 7]).n_models == 3


def test_single_model_refuses_per_model_optimizer():
    X, y = _data()
    m = fb.MLP([7, 3])
    with pytest.raises(ValueError, match="per-model"):
        m.fit(X, y, loss=CE, optimizer=fb.optim.Adam(lr=[1e-3, 1e-2]), progress=False)
    with pytest.raises(ValueError, match="different lengths"):
        fb.optim.Adam(lr=[1e-3, 1e-2], eps=[1e-8] * 3).n_models()


def test_native_call_checks_its_arguments():
    X, y = _data()
    nets = [fb.MLP([7, 3], dtype="float64", seed=s).engine for s in (0, 1)]
    for n in nets:
        n.set_optimizer("sgd", {"lr": 0.1})
    z = np.zeros(2)
    ok = [np.arange(5, dtype=np.int64)] * 2
    yl = y.astype(np.int64)
    with pytest.raises(ValueError, match="out of range"):
        _core.ensemble_fit_epoch(nets, X, yl, CE, 1.0, z, z, None,
                                 [ok[0], np.array([90], dtype=np.int64)], 4, True, [None, None])
    with pytest.raises(TypeError, match="dtype"):
        _core.ensemble_fit_epoch(nets, X.astype(np.float32), yl, CE, 1.0, z, z, None, ok, 4,
                                 True, [None, None])
    with pytest.raises(ValueError, match="distinct"):
        _core.ensemble_fit_epoch([nets[0], nets[0]], X, yl, CE, 1.0, z, z, None, ok, 4, True,
                                 [None, None])
    with pytest.raises(ValueError, match="label"):
        _core.ensemble_fit_epoch(nets, X, yl + 5, CE, 1.0, z, z, None, ok, 4, True,
                                 [None, None])
    with pytest.raises(ValueError, match="one learning rate per step"):
        _core.ensemble_fit_epoch(nets, X, yl, CE, 1.0, z, z, None, ok, 4, True,
                                 [np.ones(1), None])
