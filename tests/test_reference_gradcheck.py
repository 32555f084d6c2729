"""Central-difference gradient checks of the NumPy reference backend (float64).

The reference is the oracle for the native engine, so it is itself checked against finite
differences here: every activation (away from kinks), every loss (with sample weights and
probability targets), every layer type, the L1/L2 penalties and whole networks.
"""
import numpy as np
import pytest

from fastbp.reference import Engine
from fastbp.reference import activations as A
from fastbp.reference import losses as L

H = 1e-6  # central-difference step; truncation error O(H^2), rounding O(eps / H)


def numgrad(f, x, h=H):
    """Central differences of scalar f with respect to every entry of x (modified in place)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return g


def away_from_kinks(rng, shape, kinks=(0.0,), gap=0.05, scale=2.0):
    z = rng.normal(0, scale, shape)
    for k in kinks:
        close = np.abs(z - k) < gap
        z[close] = k + np.where(z[close] >= k, gap, -gap) * 2
    return z


# ------------------------------------------------------------------------------ activations
@pytest.mark.parametrize("name", A.ACTIVATIONS)
@pytest.mark.parametrize("alpha", [None, 0.3])
def test_activation_derivative(name, alpha):
    rng = np.random.default_rng(0)
    z = away_from_kinks(rng, (7, 5))
    if name == "softplus":  # both sides of the threshold 20
        z[0] = np.linspace(18.5, 19.5, 5)
        z[1] = np.linspace(20.5, 22.0, 5)
    da = rng.normal(size=z.shape)
    a = A.act_forward(name, z, alpha)
    dz = A.act_backward(name, z, a, da, alpha)
    num = numgrad(lambda: float((A.act_forward(name, z, alpha) * da).sum()), z)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", A.ACTIVATIONS)
def test_activation_keeps_dtype_and_is_finite_for_huge_inputs(name, dtype):
    z = np.array([[-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]], dtype=dtype)
    with np.errstate(all="raise", under="ignore"):
        a = A.act_forward(name, z)
        dz = A.act_backward(name, z, a, np.ones_like(z))
    assert a.dtype == dtype and dz.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(dz))


# ------------------------------------------------------------------------------ losses
def _loss_case(name, rng, n=6, k=3, probs=False):
    out = rng.normal(0, 2, (n, k))
    if name == "softmax_cross_entropy":
        if probs:
            y = rng.random((n, k))
            y /= y.sum(axis=1, keepdims=True)
        else:
            y = rng.integers(0, k, n)
    elif name == "binary_cross_entropy":
        y = rng.random((n, k))  # soft targets are allowed
    else:
        y = rng.normal(0, 2, (n, k))
        d = out - y
        # keep |d| away from the kinks of mae (0) and huber (delta = 0.7 below)
        for kink in (0.0, 0.7, -0.7):
            close = np.abs(d - kink) < 0.05
            out[close] += 0.2
    return out, y


LOSS_CASES = [(name, False) for name in L.LOSSES] + [("softmax_cross_entropy", True)]


@pytest.mark.parametrize("name,probs", LOSS_CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_gradient(name, probs, weighted):
    rng = np.random.default_rng(1)
    out, y = _loss_case(name, rng, probs=probs)
    y = L.check_target(name, out.shape, y, np.dtype(np.float64))
    w = rng.random(out.shape[0]) + 0.1 if weighted else None
    params = {"delta": 0.7}
    loss, grad = L.compute_loss(name, out, y, w, params)
    num = numgrad(lambda: L.compute_loss(name, out, y, w, params)[0], out)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)
    assert isinstance(loss, float)


def test_weighted_loss_is_weighted_mean_of_per_sample_losses():
    rng = np.random.default_rng(2)
    out, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    w = rng.random(5)
    per = ((out - y) ** 2).mean(axis=1)
    loss, _ = L.mse(out, y, w)
    assert loss == pytest.approx((w * per).sum() / w.sum(), rel=1e-14)
    assert L.mse(out, y)[0] == pytest.approx(per.mean(), rel=1e-14)
    # Integer-valued weights equal repeating samples.
    wi = np.array([1, 2, 0, 1, 3], dtype=np.float64)
    rep = np.repeat(np.arange(5), wi.astype(int))
    assert L.mse(out, y, wi)[0] == pytest.approx(L.mse(out[rep], y[rep])[0], rel=1e-13)


# poisson's prediction exp(1e4) is not representable: its loss is +inf there, rightly
@pytest.mark.parametrize("name", [n for n in L.LOSSES if n != "poisson"])
def test_losses_stable_for_huge_logits(name):
    out = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])
    if name == "softmax_cross_entropy":
        y = np.array([1, 1])
    elif name == "binary_cross_entropy":
        y = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.5]])
    else:
        y = np.zeros((2, 3))
    y = L.check_target(name, out.shape, y, np.dtype(np.float64))
    with np.errstate(all="raise", under="ignore"):
        loss, grad = L.compute_loss(name, out, y)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    if name == "binary_cross_entropy":
        # row 0: confident and right (0, 0) and log 2; row 1: confident and wrong (1e4 twice)
        expected = (np.log(2) + 2e4 + (3 - 1.5 + np.log1p(np.exp(-3)))) / 6
        assert loss == pytest.approx(expected, rel=1e-14)


def test_poisson_is_the_half_deviance_and_zero_at_a_perfect_prediction():
    rng = np.random.default_rng(3)
    y = rng.poisson(2.0, (6, 2)).astype(np.float64)
    mu = y + 0.5
    loss, grad = L.poisson(np.log(mu), y)
    dev = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0) - y + mu
    assert loss == pytest.approx(dev.mean(), rel=1e-13)
    np.testing.assert_allclose(grad, (mu - y) / y.size, rtol=1e-13)
    yp = y + 1.0  # strictly positive: a perfect prediction has zero deviance
    assert abs(L.poisson(np.log(yp), yp)[0]) < 1e-14


# ------------------------------------------------------------------------------ engine / layers
def engine_gradcheck(spec, X, y, loss, loss_params=None, sample_weight=None, jitter=0.3, seed=0):
    eng = Engine(spec, "float64", seed)
    g = np.random.default_rng(seed + 100)
    arena = eng.arena()
    arena += jitter * g.normal(size=arena.shape)  # e.g. BN/LN gamma != 1, beta != 0
    state = eng.rng_state()
    loss_value, grads = eng.loss_and_gradients(X, y, loss, loss_params, sample_weight)
    assert len(grads) == len(eng.parameters())
    for gr, p in zip(grads, eng.parameters()):
        assert gr.shape == p.shape and gr.dtype == np.float64

    def f():
        eng.set_rng_state(state)  # same dropout mask for every evaluation
        return eng.loss_and_gradients(X, y, loss, loss_params, sample_weight)[0]

    assert f() == loss_value
    num = numgrad(f, arena)
    flat = np.concatenate([gr.ravel() for gr in grads])
    np.testing.assert_allclose(flat, num, rtol=1e-5, atol=1e-8)
    return eng


def _data(n, d, k, loss="mse", seed=0):
    g = np.random.default_rng(seed)
    X = g.normal(size=(n, d))
    if loss == "softmax_cross_entropy":
        y = g.integers(0, k, n)
    elif loss == "binary_cross_entropy":
        y = (g.random((n, k)) > 0.5).astype(np.float64)
    else:
        y = g.normal(size=(n, k))
    return X, y


def dense(i, o, act="identity", **kw):
    return {"type": "dense", "in": i, "out": o, "activation": act, **kw}


@pytest.mark.parametrize("act", A.ACTIVATIONS)
def test_dense_layer_each_activation(act):
    X, y = _data(6, 4, 3)
    engine_gradcheck([dense(4, 5, act), dense(5, 3)], X, y, "mse")


@pytest.mark.parametrize("act", ["leaky_relu", "elu"])
def test_dense_layer_custom_alpha(act):
    X, y = _data(6, 4, 3)
    engine_gradcheck([dense(4, 5, act, alpha=0.2), dense(5, 3)], X, y, "mse")


@pytest.mark.parametrize("act", A.ACTIVATIONS)
def test_activation_layer(act):
    X, y = _data(5, 4, 4)
    spec = [dense(4, 4), {"type": "activation", "dim": 4, "activation": act}, dense(4, 4)]
    engine_gradcheck(spec, X, y, "mse")


def test_dropout_layer_with_fixed_mask():
    X, y = _data(8, 5, 2)
    spec = [dense(5, 6, "tanh"), {"type": "dropout", "dim": 6, "rate": 0.4}, dense(6, 2)]
    eng = engine_gradcheck(spec, X, y, "mse")
    assert eng.rng_state()[1] > 0


def test_batchnorm_layer():
    X, y = _data(7, 4, 3)
    spec = [dense(4, 5), {"type": "batchnorm", "dim": 5}, {"type": "activation", "dim": 5,
            "activation": "tanh"}, dense(5, 3)]
    engine_gradcheck(spec, X, y, "mse")


def test_batchnorm_as_first_layer_and_two_samples():
    X, y = _data(2, 3, 3)
    spec = [{"type": "batchnorm", "dim": 3, "eps": 1e-3}, dense(3, 3, "sigmoid")]
    engine_gradcheck(spec, X, y, "mse")


def test_layernorm_layer():
    X, y = _data(5, 4, 3)
    spec = [dense(4, 6), {"type": "layernorm", "dim": 6}, dense(6, 3)]
    engine_gradcheck(spec, X, y, "mse")


def test_residual_block():
    X, y = _data(6, 4, 2)
    block = [dense(4, 7, "gelu"), {"type": "layernorm", "dim": 7}, dense(7, 4, "tanh")]
    spec = [dense(4, 4, "silu"), {"type": "residual", "dim": 4, "layers": block}, dense(4, 2)]
    engine_gradcheck(spec, X, y, "mse")


def test_nested_residual_with_dropout_and_batchnorm():
    X, y = _data(9, 3, 3, "softmax_cross_entropy")
    inner = [dense(3, 3, "elu"), {"type": "dropout", "dim": 3, "rate": 0.3}]
    block = [{"type": "batchnorm", "dim": 3}, {"type": "residual", "dim": 3, "layers": inner},
             dense(3, 3, "softplus")]
    spec = [{"type": "residual", "dim": 3, "layers": block}, dense(3, 3)]
    engine_gradcheck(spec, X, y, "softmax_cross_entropy")


@pytest.mark.parametrize("l1,l2", [(0.1, 0.0), (0.0, 0.3), (0.05, 0.2)])
def test_penalties(l1, l2):
    X, y = _data(6, 4, 2)
    spec = [dense(4, 5, "tanh"), {"type": "layernorm", "dim": 5}, dense(5, 2)]
    eng = engine_gradcheck(spec, X, y, "mse", {"l1": l1, "l2": l2})
    # Only dense weights are penalised: compare with the penalty-free loss.
    lp, _ = eng.loss_and_gradients(X, y, "mse", {"l1": l1, "l2": l2})
    l0, _ = eng.loss_and_gradients(X, y, "mse")
    W = [eng.parameters()[0], eng.parameters()[4]]
    pen = sum(l1 * np.abs(w).sum() + 0.5 * l2 * (w * w).sum() for w in W)
    assert lp - l0 == pytest.approx(pen, rel=1e-12)


@pytest.mark.parametrize("loss", L.LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_whole_network_every_loss(loss, weighted):
    X, y = _data(8, 5, 3, loss)
    w = np.random.default_rng(5).random(8) + 0.2 if weighted else None
    spec = [dense(5, 6, "relu"), {"type": "batchnorm", "dim": 6},
            {"type": "dropout", "dim": 6, "rate": 0.2},
            {"type": "residual", "dim": 6, "layers": [dense(6, 6, "gelu"), {"type": "layernorm", "dim": 6}]},
            dense(6, 4, "leaky_relu"), dense(4, 3)]
    lp = {"delta": 0.5, "l2": 0.01} if loss == "huber" else {"l2": 0.01}
    engine_gradcheck(spec, X, y, loss, lp, w)


def test_whole_network_probability_targets():
    g = np.random.default_rng(3)
    X = g.normal(size=(7, 4))
    y = g.random((7, 5))
    y /= y.sum(axis=1, keepdims=True)
    spec = [dense(4, 8, "silu"), dense(8, 5)]
    engine_gradcheck(spec, X, y, "softmax_cross_entropy", None, g.random(7) + 0.1)
