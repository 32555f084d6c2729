"""The native activation kernels elementwise (``_core.activation``: forward f(z) and backward
da * f'(z) of the active ISA) against the NumPy reference and PyTorch, in float32 and float64,
on lengths that exercise the vector tails (1, 7, 33, 257), under every ISA; arguments include
the far tails (+-30, +-800), +-inf, +-0, subnormals and NaN.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tol

from fastbp import _core
from fastbp.reference import activations as RA

ACTS = list(RA.ACTIVATIONS)
TORCH = {
    "identity": lambda z, a: z,
    "sigmoid": lambda z, a: torch.sigmoid(z),
    "tanh": lambda z, a: torch.tanh(z),
    "relu": lambda z, a: F.relu(z),
    "leaky_relu": lambda z, a: F.leaky_relu(z, a),
    "elu": lambda z, a: F.elu(z, a),
    "gelu": lambda z, a: F.gelu(z),
    "silu": lambda z, a: F.silu(z),
    "softplus": lambda z, a: F.softplus(z),
}


def inputs(n, dtype, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n) * 3
    special = [np.nan, 0.0, -0.0, np.inf, -np.inf, 30.0, -30.0, 800.0, -800.0, 20.0, 20.5,
               -19.5, 5e-324 if dtype == "float64" else 1e-45, 1e-3, -1e-3]
    idx = rng.choice(n, size=min(n, len(special)), replace=False)
    z[idx] = special[: len(idx)]
    da = rng.standard_normal(n)
    return z.astype(dtype), da.astype(dtype)


def reference(name, z, da, alpha):
    with np.errstate(all="ignore"):
        a = RA.act_forward(name, z, alpha)
        return a, RA.act_backward(name, z, a, da, alpha)


def with_torch(name, z, da, alpha):
    zt = torch.tensor(z, requires_grad=True)
    a = TORCH[name](zt, alpha)
    a.backward(torch.tensor(da))
    return a.detach().numpy(), zt.grad.numpy()


def assert_same(got, want, dtype, what, skip=None):
    rtol, atol = tol(dtype, 4)
    if skip is not None:
        got, want = got[~skip], want[~skip]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"NaN pattern, {what}")
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 7, 33, 257])
@pytest.mark.parametrize("name", ACTS)
def test_native_vs_reference(isa, name, n, dtype):
    alpha = RA.resolve_alpha(name, None)
    z, da = inputs(n, dtype, seed=n)
    a_n, d_n = _core.activation(name, z, da, alpha)
    a_r, d_r = reference(name, z, da, alpha)
    assert a_n.dtype == np.dtype(dtype) and d_n.dtype == np.dtype(dtype)
    assert_same(a_n, a_r, dtype, f"{name} forward")
    assert_same(d_n, d_r, dtype, f"{name} backward")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ACTS)
def test_both_backends_vs_torch(name, dtype):
    alpha = RA.resolve_alpha(name, None)
    z, da = inputs(257, dtype, seed=3)
    a_t, d_t = with_torch(name, z, da, alpha)
    for a, d, who in [(*_core.activation(name, z, da, alpha), "native"),
                      (*reference(name, z, da, alpha), "reference")]:
        # torch disagrees with itself at two points (its vectorised path vs its scalar tail):
        # elu'(NaN) is NaN or 1, float32 gelu(+inf) is NaN or inf; those are checked below
        odd = np.isinf(z) if name == "gelu" else None
        assert_same(a, a_t, dtype, f"{who} {name} forward", skip=odd)
        assert_same(d, d_t, dtype, f"{who} {name} backward",
                    skip=np.isnan(z) if name == "elu" else odd)
        if name == "gelu":
            np.testing.assert_array_equal(a[z == np.inf], np.inf)
        if name == "elu":
            assert np.isnan(d[np.isnan(z)]).all()


@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
@pytest.mark.parametrize("alpha", [0.2, 1.7])
def test_alpha(isa, name, alpha):
    z, da = inputs(33, "float64", seed=5)
    a_n, d_n = _core.activation(name, z, da, alpha)
    a_t, d_t = with_torch(name, z, da, alpha)
    assert_same(a_n, a_t, "float64", name)
    assert_same(d_n, d_t, "float64", name)
