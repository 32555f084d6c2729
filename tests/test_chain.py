"""The chain step of small networks (nn/network_chain.cpp): a network of dense layers whose every
product takes gemm's tiny path (a batch of 2-16 rows, layers no wider than one vector) trains on
one thread by direct kernel calls instead of through its layers. It is only an execution
strategy: the same bits as the layers' path for every activation, loss, optimizer, penalty and
sample weight, in fit (last mini-batch short) and train_step, float32 and float64, under every
ISA; and the same results as the NumPy reference within rounding."""
import numpy as np
import pytest
from conftest import tol

import fastbp as fb

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu",
               "softplus", "mish", "hardswish"]
# (sizes, loss): the 2-4-1 net; three layers with a softmax; a binary output; a regression
# whose last layer is wider than its input
NETS = [([2, 4, 1], "mse"), ([3, 5, 7, 3], "softmax_cross_entropy"),
        ([4, 8, 2], "binary_cross_entropy"), ([5, 3, 6], "huber")]
OPTIMIZERS = {
    "adam": lambda: fb.optim.Adam(lr=3e-3),
    "sgd_nesterov": lambda: fb.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: fb.optim.RMSprop(lr=1e-3, centered=True, momentum=0.5),
}


def _data(sizes, loss, n, dtype, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, sizes[-1], n)
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, sizes[-1])).astype(dtype)
    else:
        y = rng.normal(size=(n, sizes[-1])).astype(dtype)
    return X, y, rng.uniform(0.2, 2.0, n)


def _train(sizes, loss, act, dtype, opt, allowed, batch=5, penalty=True, backend="native"):
    X, y, w = _data(sizes, loss, 37, dtype)
    m = fb.MLP(sizes, activation=act, output_activation="identity", dtype=dtype, seed=1,
               backend=backend)
    if backend == "native":
        m.engine._set_chain_allowed(allowed)
    pen = {"l1": 1e-4, "l2": 1e-3} if penalty else {}
    h = m.fit(X, y, loss=loss, optimizer=OPTIMIZERS[opt](), epochs=2, batch_size=batch,
              sample_weight=w, grad_norm=False, progress=False, **pen)
    v = m.train_step(X[:7], y[:7], loss, **pen)
    steps = m.engine.chain_steps if backend == "native" else None
    return [p.copy() for p in m.parameters()], np.asarray(h.history["loss"] + [v]), steps


def _fits(sizes, dtype):
    """Whether every product of these nets' steps (batches of 5 and 7 rows) takes the tiny
    path under this ISA: every layer within one vector of 8 or more lanes. (With 4 lanes,
    float64 under AVX2, some products of 4 or more rows by 4 take the narrow path: the
    steps of those batch sizes run the layers' path.)"""
    lanes = {"avx512": 64, "avx2": 32}.get(fb.get_isa(), 0) // np.dtype(dtype).itemsize
    return lanes >= 8 and max(sizes) <= lanes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("net", range(len(NETS)))
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_chain_is_bitwise_the_layers_path(isa, dtype, net, act):
    sizes, loss = NETS[net]
    pa, la, chained = _train(sizes, loss, act, dtype, "adam", True)
    pb, lb, unchained = _train(sizes, loss, act, dtype, "adam", False)
    assert unchained == 0
    if _fits(sizes, dtype):
        assert chained == 2 * 8 + 1  # (37 rows: 8 batches an epoch, then the train_step)
    np.testing.assert_array_equal(la, lb)
    for a, b in zip(pa, pb):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("batch", [2, 16])
def test_chain_optimizers_and_batch_bounds(isa, opt, batch):
    """Every optimizer; the batch bounds of the tiny path (2 rows, 16 rows: 37 = 2 x 16 + 5)."""
    sizes, loss = NETS[1]
    pa, la, chained = _train(sizes, loss, "tanh", "float32", opt, True, batch=batch)
    pb, lb, _ = _train(sizes, loss, "tanh", "float32", opt, False, batch=batch)
    assert chained > 0 or not _fits(sizes, "float32")
    np.testing.assert_array_equal(la, lb)
    for a, b in zip(pa, pb):
        np.testing.assert_array_equal(a, b)


def test_chain_not_taken_where_a_product_leaves_the_tiny_path():
    """A batch of 1 row (gemv), 17 rows, a layer wider than a vector, a dropout layer: the
    layers' path, and no chain step counted."""
    X, y, _ = _data([2, 4, 1], "mse", 34, "float32")  # (batches of 17: none shorter)
    for batch in (1, 17):
        m = fb.MLP([2, 4, 1], dtype="float32", seed=1)
        m.fit(X, y, optimizer="sgd", batch_size=batch, grad_norm=False, progress=False)
        assert m.engine.chain_steps == 0
    m = fb.MLP([2, 80, 1], dtype="float32", seed=1)
    m.fit(X, y, optimizer="sgd", batch_size=4, grad_norm=False, progress=False)
    assert m.engine.chain_steps == 0
    m = fb.Sequential([fb.Dense(4, activation="tanh"), fb.Dropout(0.2), fb.Dense(1)],
                      input_dim=2, dtype="float32", seed=1)
    m.fit(X, y, optimizer="sgd", batch_size=4, grad_norm=False, progress=False)
    assert m.engine.chain_steps == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ["sigmoid", "gelu", "elu"])
def test_chain_matches_the_reference(isa, dtype, act):
    sizes, loss = NETS[1]
    pa, la, _ = _train(sizes, loss, act, dtype, "adam", True)
    pr, lr, _ = _train(sizes, loss, act, dtype, "adam", True, backend="reference")
    rtol, atol = tol(dtype, 40)
    np.testing.assert_allclose(la, lr, rtol=rtol, atol=atol)
    for a, b in zip(pa, pr):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_chain_follows_a_change_of_isa():
    """The chain's check is kept per ISA: switching the ISA between epochs (to one whose tiny
    path takes other shapes, or has none) gives the layers' path's bits at every epoch."""
    from fastbp import _core

    sizes, loss = NETS[2]
    X, y, _ = _data(sizes, loss, 37, "float32")
    before = fb.get_isa()
    runs = []
    try:
        for allowed in (True, False):
            m = fb.MLP(sizes, activation="tanh", dtype="float32", seed=1)
            m.engine._set_chain_allowed(allowed)
            for isa in list(_core.supported_isas())[::-1] + [before]:
                fb.set_isa(isa)
                m.fit(X, y, loss=loss, optimizer="adam", batch_size=5, grad_norm=False,
                      progress=False)
            runs.append([p.copy() for p in m.parameters()])
            fb.set_isa(before)
    finally:
        fb.set_isa(before)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
