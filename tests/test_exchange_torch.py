"""PyTorch both ways: to_torch() computes predict in torch's layouts; from_torch() reads an
nn.Sequential back; outputs are equal both ways (float64 to ~1e-12)."""
import numpy as np
import pytest
from exchange_models import ACTS, data, zoo

import fastbp as fb

torch = pytest.importorskip("torch")
nn = torch.nn
from fastbp.io.torch import Residual  # noqa: E402


def tout(module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTS)
def test_round_trip_every_activation(act, dtype):
    model = zoo(act, dtype)
    tm = model.to_torch()
    assert not tm.training
    X, _ = data(dtype)
    ref = model.predict(X)
    tol = 1e-12 if dtype == "float64" else 1e-5
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(tout(tm, X), ref, rtol=0, atol=tol * scale)
    back = fb.from_torch(tm)
    assert back.spec == model.spec and back.dtype == dtype
    for a, b in zip(back.parameters() + back.buffers(), model.parameters() + model.buffers()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(X), ref)


def test_torch_layouts():
    model = fb.MLP([5, 4, 2], activation="tanh", dtype="float64")
    tm = model.to_torch()
    W1, b1, W2, b2 = model.parameters()
    assert isinstance(tm[0], nn.Linear) and isinstance(tm[1], nn.Tanh)
    assert tuple(tm[0].weight.shape) == (4, 5)
    np.testing.assert_array_equal(tm[0].weight.detach().numpy(), W1.T)
    np.testing.assert_array_equal(tm[2].bias.detach().numpy(), b2)
    assert tm[0].weight.dtype == torch.float64
    W1[...] = 0  # a copy: the torch module does not alias the model
    assert tm[0].weight.abs().sum() > 0


def test_from_torch_module_built_in_torch():
    torch.manual_seed(0)
    block = Residual(nn.LayerNorm(6), nn.Linear(6, 6), nn.GELU(), nn.Dropout(0.1))
    tm = nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.3), nn.BatchNorm1d(6), block,
                       nn.Sequential(nn.SiLU(), nn.Linear(6, 2, bias=False)), nn.Softplus())
    tm = tm.double()
    tm.train()
    tm(torch.randn(16, 4, dtype=torch.float64))  # running statistics away from 0 / 1
    tm.eval()
    model = fb.from_torch(tm)
    # nested nn.Sequential flattened: Linear then Softplus form one dense layer
    assert [d["type"] for d in model.spec] == ["dense", "batchnorm", "residual", "activation",
                                               "dense"]
    assert model.spec[0]["activation"] == "leaky_relu" and model.spec[0]["alpha"] == 0.3
    assert model.spec[-1]["activation"] == "softplus"
    X = np.random.default_rng(0).normal(size=(9, 4))
    np.testing.assert_allclose(model.predict(X), tout(tm, X), rtol=1e-12, atol=1e-12)
    # trains like any fastbp model
    model.fit(X, np.zeros((9, 2)), optimizer=fb.optim.SGD(lr=0.1), epochs=1, batch_size=3)


def test_affine_free_norms_and_bias_free_linear():
    tm = nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4, affine=False),
                       nn.LayerNorm(4, elementwise_affine=False), nn.LayerNorm(4, bias=False),
                       nn.Linear(4, 2)).eval()
    with torch.no_grad():
        tm[3].weight.uniform_(0.5, 2.0)
    model = fb.from_torch(tm)
    X = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(X), tout(tm, X), atol=1e-5)


@pytest.mark.parametrize("module, match", [
    (nn.Sequential(nn.Linear(3, 3), nn.Conv1d(1, 1, 1)), r"module\[1\].*Conv1d"),
    (nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=1)), "Softmax"),
    (nn.Sequential(Residual(nn.Linear(3, 3), nn.PReLU())), r"module\[0\]\[1\].*PReLU"),
])
def test_unsupported_module_is_named(module, match):
    with pytest.raises(TypeError, match=match):
        fb.from_torch(module)


@pytest.mark.parametrize("module, match", [
    (nn.Sequential(nn.Linear(3, 3), nn.GELU(approximate="tanh")), "approximate"),
    (nn.Sequential(nn.Linear(3, 3), nn.Softplus(beta=2)), "beta"),
    (nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)), "track_running_stats"),
    (nn.Sequential(nn.BatchNorm1d(3, momentum=None)), "momentum"),
    (nn.Sequential(nn.LayerNorm((2, 3))), "normalized_shape"),
    (nn.Sequential(nn.Linear(3, 3).half()), "float32 or all float64"),
    (nn.Sequential(nn.Linear(3, 3).bfloat16()), "float32 or all float64"),
    (nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3).double()), "float32 or all float64"),
    (nn.Sequential(nn.Dropout(0.1)), "input width|input_dim"),
    (nn.Sequential(Residual(nn.Linear(3, 4))), "width"),
])
def test_unrepresentable_settings(module, match):
    with pytest.raises(ValueError, match=match):
        fb.from_torch(module)


def test_not_a_sequential():
    with pytest.raises(TypeError, match="nn.Sequential"):
        fb.from_torch(nn.Linear(3, 3))


def test_input_dim_for_width_free_modules():
    model = fb.from_torch(nn.Sequential(nn.Tanh(), nn.Dropout(0.2)), input_dim=3)
    X = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(model.predict(X), np.tanh(X), rtol=1e-6)


def test_residual_convention():
    block = Residual(nn.Linear(2, 2))
    x = torch.randn(3, 2)
    torch.testing.assert_close(block(x), x + block[0](x))


@pytest.mark.parametrize("act", ["leaky_relu", "elu"])
def test_default_alpha_round_trips_the_spec(act):
    model = fb.MLP([3, 4, 2], activation=act)
    assert fb.from_torch(model.to_torch()).spec == model.spec


def test_standalone_identity_round_trips():
    model = fb.Sequential([fb.Dense(3), fb.Activation("identity"), fb.Dense(2)], input_dim=2)
    assert fb.from_torch(model.to_torch()).spec == model.spec
