"""The core issue's end-to-end checks: the seed XOR example, fit, the public API's errors."""
import numpy as np
import pytest

import fastbp as fb
from fastbp.datasets import xor


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_xor_seed_example(backend):
    # 3 inputs (bias column), 4 sigmoid hidden units, 1 sigmoid output, squared error,
    # 1500 full-batch steps: outputs within 0.1 of the targets.
    X, y = xor("float64")
    model = fb.Sequential([fb.Dense(4, "sigmoid"), fb.Dense(1, "sigmoid")], input_dim=3,
                          dtype="float64", seed=0, backend=backend)
    opt = fb.optim.SGD(lr=2.0)
    first = model.train_step(X, y, "mse", opt)
    for _ in range(1499):
        last = model.train_step(X, y, "mse", opt)
    assert last < first / 10
    np.testing.assert_array_less(np.abs(model.predict(X) - y), 0.1)


def test_fit_learns_digits_and_history():
    from fastbp.datasets import load_digits

    X, y = load_digits()
    model = fb.MLP([64, 32, 10], activation="relu", seed=1)
    h = model.fit(X[:1000], y[:1000], loss="softmax_cross_entropy",
                  optimizer=fb.optim.Adam(lr=3e-3), epochs=5, batch_size=32)
    assert len(h["loss"]) == 5 and h["loss"][-1] < h["loss"][0]
    acc = (model.predict(X[1000:]).argmax(1) == y[1000:]).mean()
    assert acc > 0.85


@pytest.mark.parametrize("width", [64, 300])  # 300: >64k parameters, threaded optimizer pass
def test_fit_is_deterministic_across_threads(width):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)).astype(np.float32)
    y = rng.integers(0, 4, 300)
    before = fb.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 1):
            fb.set_num_threads(threads)
            m = fb.Sequential([fb.Dense(width, "relu"), fb.Dense(width, "relu"), fb.Dense(4)],
                              input_dim=20, seed=5)
            m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(), epochs=2,
                  batch_size=16)
            results.append(np.concatenate([p.ravel() for p in m.parameters()]))
    finally:
        fb.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_parameters_are_live_views(backend):
    m = fb.MLP([3, 2], dtype="float64", backend=backend)
    W, b = m.parameters()
    assert W.shape == (3, 2) and b.shape == (2,)
    W[:] = np.arange(6).reshape(3, 2)
    b[:] = [1, -1]
    np.testing.assert_allclose(m.predict(np.eye(3)), np.arange(6).reshape(3, 2) + [1, -1])
    assert m.parameters()[0][2, 1] == 5


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_gradients_shaped_like_parameters(backend):
    m = fb.MLP([4, 6, 2], dtype="float32", backend=backend)
    X = np.ones((5, 4), np.float32)
    loss, grads = m.loss_and_gradients(X, np.zeros((5, 2)), loss="mse")
    assert isinstance(loss, float)
    assert [g.shape for g in grads] == [p.shape for p in m.parameters()]
    assert all(g.dtype == np.float32 for g in grads)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_bad_input_errors_name_the_argument(backend):
    m = fb.MLP([4, 3], backend=backend)
    opt = fb.optim.SGD()
    before = [p.copy() for p in m.parameters()]
    with pytest.raises(ValueError, match="X"):
        m.predict(np.ones((2, 5)))
    with pytest.raises(ValueError, match="X"):
        m.predict(np.ones(4))
    with pytest.raises(TypeError, match="X"):
        m.predict(np.array([["a"] * 4]))
    with pytest.raises(ValueError, match="y"):
        m.train_step(np.ones((2, 4)), np.ones((3, 3)), "mse", opt)
    with pytest.raises(ValueError, match="label"):
        m.train_step(np.ones((2, 4)), np.array([0, 3]), "softmax_cross_entropy", opt)
    with pytest.raises(TypeError, match="y"):
        m.train_step(np.ones((2, 4)), np.array([0.0, 1.0]), "softmax_cross_entropy", opt)
    with pytest.raises(ValueError, match="loss"):
        m.train_step(np.ones((2, 4)), np.ones((2, 3)), "hinge", opt)
    with pytest.raises(ValueError, match="NaN"):
        m.train_step(np.full((2, 4), np.nan), np.ones((2, 3)), "mse", opt)
    with pytest.raises(ValueError, match="sample_weight"):
        m.train_step(np.ones((2, 4)), np.ones((2, 3)), "mse", opt, sample_weight=np.ones(3))
    for a, b in zip(before, m.parameters()):
        np.testing.assert_array_equal(a, b)


def test_constructor_errors():
    with pytest.raises(ValueError, match="activation"):
        fb.MLP([2, 3, 1], activation="swish")
    with pytest.raises(ValueError, match="dtype"):
        fb.MLP([2, 1], dtype="float16")
    with pytest.raises(ValueError, match="backend"):
        fb.MLP([2, 1], backend="gpu")
    with pytest.raises(ValueError, match="units"):
        fb.Dense(0)
    with pytest.raises(ValueError, match="sizes"):
        fb.MLP([3])
    with pytest.raises(ValueError, match="width"):
        fb.Sequential([fb.Residual([fb.Dense(3)])], input_dim=4)


def test_info_and_threads():
    info = fb.info()
    assert info["version"] == fb.__version__
    assert info["isa"] in info["supported_isas"]
    n = fb.get_num_threads()
    fb.set_num_threads(1)
    assert fb.get_num_threads() == 1
    fb.set_num_threads(n)
    with pytest.raises(ValueError):
        fb.set_num_threads(0)


def test_demo_runs(capsys):
    from fastbp.__main__ import main

    assert main(["demo", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "XOR" in out and "test accuracy" in out and "us/step" in out
