"""Native engine vs the NumPy reference: predict, loss, gradients and optimizer steps, for every
layer, activation, loss and optimizer, in float32 and float64, on awkward shapes, under every
instruction set the machine has.

Tolerance: float64 agrees to ~1e-12 relative; float32 to ~64*eps*sqrt(K) relative, K the
longest reduction (stated in conftest.tol).
"""
import numpy as np
import pytest
from conftest import tol

import fastbp as fb

ACTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu", "softplus",
        "mish", "hardswish"]
DTYPES = ["float32", "float64"]


def pair(layers_fn, input_dim, dtype, seed=0):
    nat = fb.Sequential(layers_fn(), input_dim=input_dim, dtype=dtype, seed=seed)
    ref = fb.Sequential(layers_fn(), input_dim=input_dim, dtype=dtype, seed=seed,
                        backend="reference")
    for a, b in zip(nat.parameters(), ref.parameters()):
        np.testing.assert_array_equal(a, b)
    return nat, ref


def data(n, d, k, loss, dtype, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, k, size=n)
    elif loss == "softmax_cross_entropy_probs":
        p = rng.random((n, k)) + 0.1
        y = (p / p.sum(1, keepdims=True)).astype(dtype)
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, k)) > 0.5).astype(dtype)
    elif loss == "poisson":  # counts, zeros included
        y = rng.poisson(1.5, (n, k)).astype(dtype)
    else:
        y = rng.standard_normal((n, k)).astype(dtype)
    return X, y


def close(a, b, dtype, k=1, scale=1.0):
    rtol, atol = tol(dtype, k)
    np.testing.assert_allclose(a, b, rtol=rtol * scale, atol=atol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 33])
@pytest.mark.parametrize("width", [1, 3, 65])
def test_mlp_predict_grads_sgd(isa, dtype, n, width):
    d, k = 5, 3
    def layers():
        return [fb.Dense(width, "tanh"), fb.Dense(width, "relu"), fb.Dense(k)]

    nat, ref = pair(layers, d, dtype)
    X, y = data(n, d, k, "softmax_cross_entropy", dtype)
    close(nat.predict(X), ref.predict(X), dtype, width)
    ln, gn = nat.loss_and_gradients(X, y, "softmax_cross_entropy")
    lr_, gr = ref.loss_and_gradients(X, y, "softmax_cross_entropy")
    close(ln, lr_, dtype, n * width)
    for a, b in zip(gn, gr):
        close(a, b, dtype, n * width, scale=4)
    opt_n, opt_r = fb.optim.SGD(lr=0.1), fb.optim.SGD(lr=0.1)
    for _ in range(20):
        a = nat.train_step(X, y, "softmax_cross_entropy", opt_n)
        b = ref.train_step(X, y, "softmax_cross_entropy", opt_r)
        close(a, b, dtype, n * width, scale=50)
    for a, b in zip(nat.parameters(), ref.parameters()):
        close(a, b, dtype, n * width, scale=50)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_activations(isa, dtype, act):
    nat, ref = pair(lambda: [fb.Dense(9, act), fb.Dense(4, act), fb.Dense(2)], 6, dtype, seed=4)
    X, y = data(11, 6, 2, "mse", dtype)
    close(nat.predict(X), ref.predict(X), dtype, 9)
    ln, gn = nat.loss_and_gradients(X, y, "mse")
    lr_, gr = ref.loss_and_gradients(X, y, "mse")
    close(ln, lr_, dtype, 11)
    for a, b in zip(gn, gr):
        close(a, b, dtype, 11 * 9, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("n", [1, 3, 16])
def test_narrow_layers(isa, dtype, act, n):
    """Layers of 1, 2, 4 and 8 units: narrower than a vector, they are computed as one flat
    array across rows (kernels/activations_impl.h flat_rows), tails included."""
    nat, ref = pair(lambda: [fb.Dense(8, act), fb.Dense(2, act), fb.Dense(4, act),
                             fb.Dense(1, act), fb.Dense(3)], 5, dtype, seed=7)
    # distinct biases (they start at zero): lane k of the flat form adds bias[k % units]
    rng = np.random.default_rng(3)
    for a, b in zip(nat.parameters()[1::2], ref.parameters()[1::2]):
        a[...] = b[...] = rng.uniform(-0.5, 0.5, a.shape)
    X, y = data(n, 5, 3, "mse", dtype)
    close(nat.predict(X), ref.predict(X), dtype, 8)
    ln, gn = nat.loss_and_gradients(X, y, "mse")
    lr_, gr = ref.loss_and_gradients(X, y, "mse")
    close(ln, lr_, dtype, n * 8)
    for a, b in zip(gn, gr):
        close(a, b, dtype, n * 8, scale=4)


LOSS_CASES = ["mse", "mae", ("huber", {"delta": 0.7}), "binary_cross_entropy",
              "softmax_cross_entropy", "softmax_cross_entropy_probs", "poisson",
              ("mse", {"l1": 0.01, "l2": 0.1})]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LOSS_CASES, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
def test_losses(isa, dtype, case, weighted):
    loss, params = (case, {}) if isinstance(case, str) else case
    nat, ref = pair(lambda: [fb.Dense(8, "gelu"), fb.Dense(4)], 5, dtype, seed=2)
    X, y = data(13, 5, 4, loss, dtype)
    loss = "softmax_cross_entropy" if loss.endswith("_probs") else loss
    w = np.random.default_rng(5).random(13).astype(dtype) if weighted else None
    ln, gn = nat.loss_and_gradients(X, y, loss, sample_weight=w, **params)
    lr_, gr = ref.loss_and_gradients(X, y, loss, sample_weight=w, **params)
    close(ln, lr_, dtype, 13)
    for a, b in zip(gn, gr):
        close(a, b, dtype, 13 * 8, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [3, 10, 17, 40])
def test_softmax_rows_do_not_depend_on_their_neighbours(isa, dtype, k):
    """The softmax cross-entropy kernel computes rows in interleaved groups (losses_impl.h
    softmax_exps_rows): a row's gradient is bitwise the same wherever it falls in the batch
    (in a group or alone, first or last), with more classes than a vector holds (several
    chunks of lanes). One-hot inputs make dW of a bias-free identity layer the logits'
    gradient row by row (the bias is zero)."""
    n = 7
    rng = np.random.default_rng(k)
    m = fb.Sequential([fb.Dense(k)], input_dim=n, dtype=dtype, seed=1)
    w, b = m.parameters()
    w[...] = rng.standard_normal((n, k)) * 3
    b[...] = 0
    y = rng.integers(0, k, n)
    eye = np.eye(n, dtype=dtype)
    grads = {}
    for shift in range(n):  # batch row r holds logical row (r + shift) % n
        order = (np.arange(n) + shift) % n
        _, (dw, _) = m.loss_and_gradients(eye[order], y[order], "softmax_cross_entropy")
        grads[shift] = dw  # (row order[r] of dW is batch row r's gradient)
    for shift in range(1, n):
        np.testing.assert_array_equal(grads[shift], grads[0], err_msg=f"shift {shift}")
    ref = grads[0]
    z = w.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(n), y] -= 1.0
    np.testing.assert_allclose(ref, p / n, rtol=tol(dtype, k)[0], atol=tol(dtype, k)[1] / n)


OPTIMIZERS = [
    lambda: fb.optim.SGD(lr=0.05),
    lambda: fb.optim.SGD(lr=0.05, momentum=0.9),
    lambda: fb.optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda: fb.optim.SGD(lr=0.05, momentum=0.5, dampening=0.3),
    lambda: fb.optim.Adam(lr=1e-2),
    lambda: fb.optim.Adam(lr=1e-2, amsgrad=True, weight_decay=1e-3),
    lambda: fb.optim.AdamW(lr=1e-2),
    lambda: fb.optim.RMSprop(lr=1e-3),
    lambda: fb.optim.RMSprop(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3),
    lambda: fb.optim.Adagrad(lr=1e-2, lr_decay=1e-3, initial_accumulator_value=0.1),
    lambda: fb.optim.SGD(lr=0.05, clip_norm=0.1),
    lambda: fb.optim.Adam(lr=1e-2, clip_value=0.01),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make_opt", OPTIMIZERS, ids=lambda f: repr(f()))
def test_optimizers(dtype, make_opt):
    nat, ref = pair(lambda: [fb.Dense(7, "relu"), fb.Dense(3)], 4, dtype, seed=7)
    X, y = data(10, 4, 3, "mse", dtype)
    on, or_ = make_opt(), make_opt()
    for _ in range(10):
        a = nat.train_step(X, y, "mse", on)
        b = ref.train_step(X, y, "mse", or_)
        close(a, b, dtype, 10, scale=100)
    for a, b in zip(nat.parameters(), ref.parameters()):
        close(a, b, dtype, 10, scale=100)
    sn, sr = nat._engine.optimizer_state(), ref._engine.optimizer_state()
    assert sn["step"] == sr["step"] == 10
    assert set(sn) == set(sr)
    for key in sn:
        if key != "step":
            close(sn[key], sr[key], dtype, 10, scale=100)


LAYER_STACKS = {
    "dropout": lambda: [fb.Dense(16, "relu"), fb.Dropout(0.3), fb.Dense(3)],
    "batchnorm": lambda: [fb.Dense(16), fb.BatchNorm(), fb.Activation("relu"), fb.Dense(3)],
    "layernorm": lambda: [fb.Dense(16), fb.LayerNorm(), fb.Activation("silu"), fb.Dense(3)],
    "residual": lambda: [fb.Dense(16, "tanh"),
                         fb.Residual([fb.Dense(16, "relu"), fb.LayerNorm(), fb.Dense(16)]),
                         fb.Dense(3)],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stack", sorted(LAYER_STACKS))
def test_layers(isa, dtype, stack):
    nat, ref = pair(LAYER_STACKS[stack], 6, dtype, seed=9)
    X, y = data(17, 6, 3, "softmax_cross_entropy", dtype)
    # SGD, not Adam: the bias of a Dense before BatchNorm has a gradient of pure rounding
    # noise, which Adam's normalisation would blow up to full-size (but meaningless) steps.
    on, or_ = fb.optim.SGD(lr=0.1, momentum=0.9), fb.optim.SGD(lr=0.1, momentum=0.9)
    for _ in range(5):
        a = nat.train_step(X, y, "softmax_cross_entropy", on)
        b = ref.train_step(X, y, "softmax_cross_entropy", or_)
        close(a, b, dtype, 17 * 16, scale=50)
    ln, gn = nat.loss_and_gradients(X, y, "softmax_cross_entropy")
    lr_, gr = ref.loss_and_gradients(X, y, "softmax_cross_entropy")
    close(ln, lr_, dtype, 17 * 16, scale=50)
    for a, b in zip(gn, gr):
        close(a, b, dtype, 17 * 16, scale=200)
    for a, b in zip(nat.buffers(), ref.buffers()):
        close(a, b, dtype, 17, scale=50)
    close(nat.predict(X), ref.predict(X), dtype, 17 * 16, scale=50)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [1, 7, 17, 37, 100])
def test_batchnorm_inference(isa, dtype, width):
    """BatchNorm's inference loop (the running statistics; kernels/norm_impl.h bn_infer, one
    per ISA) against the reference, on widths with vector tails, after a few training steps
    moved the running statistics and the parameters away from their initial values."""
    nat, ref = pair(lambda: [fb.Dense(width), fb.BatchNorm(momentum=0.5), fb.Dense(2)], 4,
                    dtype, seed=5)
    X, y = data(23, 4, 2, "mse", dtype)
    for m in (nat, ref):
        m.fit(X, y, "mse", fb.optim.SGD(lr=0.05), epochs=3, batch_size=8, shuffle=False)
    for a, b in zip(nat.buffers(), ref.buffers()):
        close(a, b, dtype, 23, scale=50)
    for n in (1, 5, 23):
        close(nat.predict(X[:n]), ref.predict(X[:n]), dtype, width, scale=50)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_epochs(isa, dtype, shuffle):
    nat, ref = pair(lambda: [fb.Dense(12, "relu"), fb.Dropout(0.2), fb.Dense(3)], 5, dtype, seed=3)
    X, y = data(50, 5, 3, "softmax_cross_entropy", dtype)
    hn = nat.fit(X, y, "softmax_cross_entropy", fb.optim.SGD(lr=0.1, momentum=0.9), epochs=3,
                 batch_size=16, shuffle=shuffle)
    hr = ref.fit(X, y, "softmax_cross_entropy", fb.optim.SGD(lr=0.1, momentum=0.9), epochs=3,
                 batch_size=16, shuffle=shuffle)
    close(hn["loss"], hr["loss"], dtype, 50 * 12, scale=50)
    for a, b in zip(nat.parameters(), ref.parameters()):
        close(a, b, dtype, 50 * 12, scale=100)
    assert nat._engine.rng_state() == tuple(ref._engine.rng_state())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make_opt", [
    lambda: fb.optim.Adam(lr=0.01), lambda: fb.optim.Adam(lr=0.01, amsgrad=True),
    lambda: fb.optim.SGD(lr=0.1, momentum=0.9),
    lambda: fb.optim.RMSprop(lr=0.01, momentum=0.5, centered=True)], ids=str)
def test_state_flushes_subnormals(isa, dtype, make_opt):
    """Optimizer state decaying below the smallest normal number becomes zero, sign kept, in
    both engines (kernels/optimizers_impl.h flush_subnormal); the parameters do not move."""
    tiny = np.finfo(dtype).tiny
    nat, ref = pair(lambda: [fb.Dense(3)], 2, dtype)
    X, y = data(4, 2, 3, "mse", dtype)
    for m in (nat, ref):
        m.train_step(X, y, "mse", make_opt())
        st = m.engine.optimizer_state()
        for k, v in st.items():
            if isinstance(v, np.ndarray) and v.ndim == 1:  # one decay step from subnormal
                signed = k in ("exp_avg", "momentum_buffer", "grad_avg")
                sign = np.where(np.arange(v.size) % 2 == 0, 1.0, -1.0) if signed else 1.0
                st[k] = (sign * 1.005 * tiny * np.ones(v.size)).astype(dtype)
        m.engine.set_optimizer_state(st)
    before = [p.copy() for p in nat.parameters()]
    for m in (nat, ref):
        m.engine.grad_arena()[:] = 0  # one step: -0.0 + 0.0 would be +0.0 at the next
        m.engine.apply_gradients()
    sn, sr = nat.engine.optimizer_state(), ref.engine.optimizer_state()
    for k, v in sn.items():
        if isinstance(v, np.ndarray) and v.ndim == 1:
            np.testing.assert_array_equal(v, sr[k], err_msg=k)
            assert not ((v != 0) & (np.abs(v) < tiny)).any(), k  # no subnormal left
            if k in ("exp_avg", "momentum_buffer", "grad_avg"):  # decaying: flushed, signed
                np.testing.assert_array_equal(np.signbit(v[1::2]), True, err_msg=k)
                np.testing.assert_array_equal(v, 0, err_msg=k)
    for a, b in zip(before, nat.parameters()):
        np.testing.assert_array_equal(a, b)
