"""NaN propagates as in PyTorch, in both backends: NaN weights or inputs give NaN outputs
through every activation, a NaN loss through every loss and NaN gradients; TerminateOnNaN then
fires. (The finiteness check is switched off so that NaN can get in.)"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastbp as fb
from fastbp.reference import activations as RA

BACKENDS = ["native", "reference"]
ACTS = list(RA.ACTIVATIONS)
TORCH_ACT = {
    "identity": torch.nn.Identity(), "sigmoid": torch.nn.Sigmoid(), "tanh": torch.nn.Tanh(),
    "relu": torch.nn.ReLU(), "leaky_relu": torch.nn.LeakyReLU(0.01), "elu": torch.nn.ELU(1.0),
    "gelu": torch.nn.GELU(), "silu": torch.nn.SiLU(), "softplus": torch.nn.Softplus(),
}


@pytest.fixture(autouse=True)
def no_finite_check():
    before = fb.get_check_finite()
    fb.set_check_finite(False)
    yield
    fb.set_check_finite(before)


def torch_twin(model, act):
    """The same MLP in torch (parameters copied, W transposed)."""
    ps = model.parameters()
    mods = []
    for i in range(0, len(ps), 2):
        lin = torch.nn.Linear(*ps[i].shape).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(ps[i].T.astype(np.float64)))
            lin.bias.copy_(torch.tensor(ps[i + 1].astype(np.float64)))
        mods.append(lin)
        if i + 2 < len(ps):
            mods.append(TORCH_ACT[act])
    return torch.nn.Sequential(*mods)


def data(n=6, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((n, k))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ACTS)
def test_nan_weight_gives_nan_output_loss_and_gradients(act, backend, dtype):
    model = fb.MLP([3, 5, 2], activation=act, dtype=dtype, seed=1, backend=backend)
    model.parameters()[0][1, 2] = np.nan  # W1[1, 2]: hidden unit 2 is NaN for every sample
    X, y = data()
    X, y = X.astype(dtype), y.astype(dtype)
    out = model.predict(X)
    assert np.isnan(out).all()
    loss, grads = model.loss_and_gradients(X, y, "mse")
    assert np.isnan(loss)
    net = torch_twin(model, act)
    out_t = net(torch.tensor(X.astype(np.float64)))
    loss_t = F.mse_loss(out_t, torch.tensor(y.astype(np.float64)))
    loss_t.backward()
    assert torch.isnan(loss_t)
    grads_t = [t.grad.numpy() for t in net.parameters()]
    grads_t = [g.T if g.ndim == 2 else g for g in grads_t]
    for g, gt in zip(grads, grads_t):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(gt))
        ok = ~np.isnan(gt)
        np.testing.assert_allclose(g[ok], gt[ok], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_weights_give_a_nan_loss_with_relu(backend):
    model = fb.MLP([4, 16, 16, 1], activation="relu", dtype="float32", seed=0, backend=backend)
    model.parameters()[2][:] = np.nan  # all of W2
    X, y = data(32, 4, 1)
    loss = model.train_step(X.astype(np.float32), y.astype(np.float32), "mse",
                            fb.optim.SGD(lr=0.1))
    assert np.isnan(loss)
    assert all(np.isnan(p).any() for p in model.parameters()[:4])


@pytest.mark.parametrize("backend", BACKENDS)
def test_terminate_on_nan_fires(backend):
    model = fb.MLP([4, 8, 1], activation="relu", dtype="float64", seed=0, backend=backend)
    model.parameters()[0][0, 0] = np.nan
    X, y = data(64, 4, 1)
    stop = fb.callbacks.TerminateOnNaN()
    history = model.fit(X, y, loss="mse", optimizer=fb.optim.Adam(lr=1e-3), epochs=5,
                        batch_size=16, callbacks=[stop])
    assert stop.terminated_epoch == 0
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])


LOSSES = ["mse", "mae", "huber", "binary_cross_entropy", "softmax_cross_entropy"]


def torch_loss(name, out, y):
    if name == "mse":
        return F.mse_loss(out, y)
    if name == "mae":
        return F.l1_loss(out, y)
    if name == "huber":
        return F.huber_loss(out, y)
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(out, y)
    return F.cross_entropy(out, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", LOSSES)
def test_nan_logit_through_every_loss(isa, loss, dtype):
    """A NaN bias: the first logit of every sample is NaN. NaN loss in both backends and torch,
    and the gradients' NaN pattern (and finite values) as torch's (mae's gradient is 0 there)."""
    k = 3
    X, y = data(5, k, k, seed=2)
    if loss == "softmax_cross_entropy":
        y_fb, y_t = np.array([0, 2, 1, 1, 0]), torch.tensor([0, 2, 1, 1, 0])
    else:
        y_fb = (y > 0).astype(dtype) if loss == "binary_cross_entropy" else y.astype(dtype)
        y_t = torch.tensor(y_fb.astype(np.float64))
    results = []
    for backend in BACKENDS:
        m = fb.Sequential([fb.Dense(k)], input_dim=k, dtype=dtype, seed=0, backend=backend)
        m.parameters()[1][0] = np.nan
        results.append(m.loss_and_gradients(X.astype(dtype), y_fb, loss))
    net = torch_twin(m, "identity")
    lt = torch_loss(loss, net(torch.tensor(X)), y_t)
    lt.backward()
    gt = [net[0].weight.grad.numpy().T, net[0].bias.grad.numpy()]
    for value, grads in results:
        assert np.isnan(value) and torch.isnan(lt)
        for g, want in zip(grads, gt):
            np.testing.assert_array_equal(np.isnan(g), np.isnan(want))
            ok = ~np.isnan(want)
            np.testing.assert_allclose(g[ok], want[ok], rtol=1e-4, atol=1e-5)
