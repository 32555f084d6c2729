"""L1/L2 penalties on dense weights: the gradient gains l1*sign(W) + l2*W (sign(0) = 0, biases
untouched) and the loss gains l1*sum|W| + l2/2*sum W^2, in both backends, float32 and float64,
under every ISA; results do not depend on the thread count."""
import numpy as np
import pytest

import fastbp as fb
from fastbp import _core

ISAS = list(_core.supported_isas())


def _model(backend, dtype):
    m = fb.MLP([7, 33, 5], activation="tanh", dtype=dtype, seed=3, backend=backend)
    params = m.parameters()
    w0 = params[0]
    w0[::3, ::2] = 0.0            # exact zeros: sign(0) = 0
    w0[1, 1] = -0.0
    return m


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("isa", ISAS)
def test_penalty_gradient_and_value(backend, dtype, isa):
    old = _core.get_isa()
    _core.set_isa(isa)
    try:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((9, 7)).astype(dtype)
        y = rng.standard_normal((9, 5)).astype(dtype)
        m = _model(backend, dtype)
        l1, l2 = 0.03, 0.2
        base, g0 = m.loss_and_gradients(X, y, loss="mse")
        pen, g1 = m.loss_and_gradients(X, y, loss="mse", l1=l1, l2=l2)
        eps = float(np.finfo(dtype).eps)
        want_value = 0.0
        for i, (p, a, b) in enumerate(zip(m.parameters(), g0, g1)):
            if i % 2 == 1:       # biases: not penalised
                assert np.array_equal(a, b)
                continue
            w = p.astype(np.float64)
            want = a.astype(np.float64) + l1 * np.sign(w) + l2 * w
            np.testing.assert_allclose(b, want, rtol=0, atol=8 * eps * (1 + np.abs(want).max()))
            want_value += l1 * np.abs(w).sum() + 0.5 * l2 * (w * w).sum()
        assert pen == pytest.approx(base + want_value, rel=50 * eps)
    finally:
        _core.set_isa(old)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_penalised_training_is_thread_count_independent(dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 7)).astype(dtype)
    y = rng.standard_normal((64, 5)).astype(dtype)
    out = []
    old = fb.get_num_threads()
    try:
        for threads in (1, 2):
            fb.set_num_threads(threads)
            m = _model("native", dtype)
            h = m.fit(X, y, loss="mse", optimizer="adam", epochs=2, batch_size=16, shuffle=False,
                      progress=False, l1=1e-3, l2=1e-2)
            out.append(([p.copy() for p in m.parameters()], h["loss"]))
    finally:
        fb.set_num_threads(old)
    for a, b in zip(out[0][0], out[1][0]):
        assert np.array_equal(a, b)
    assert out[0][1] == out[1][1]


FOLDED = {
    "adam": lambda: fb.optim.Adam(lr=3e-2),
    "adamw": lambda: fb.optim.AdamW(lr=3e-2, weight_decay=0.05),
    "adam_amsgrad_decay": lambda: fb.optim.Adam(lr=3e-2, amsgrad=True, weight_decay=1e-2),
}


@pytest.mark.parametrize("pen", [(0.0, 0.2), (0.03, 0.0), (0.03, 0.2)])
@pytest.mark.parametrize("opt", sorted(FOLDED))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("isa", ISAS, indirect=True)
def test_folded_penalty_is_the_penalty_pass_then_the_update(isa, dtype, opt, pen):
    """A one-thread train_step folds the penalty into Adam's update (one pass: the gradient
    penalised in registers, never written); compute_gradients + apply_gradients form it in the
    gradient arena first, then update. Both give bitwise the same loss and parameters, on
    weights whose blocks end inside a vector (33 and 5 columns), with exact zeros in W."""
    l1, l2 = pen
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 9, 7)).astype(dtype)
    y = rng.standard_normal((4, 9, 5)).astype(dtype)
    old = fb.get_num_threads()
    fb.set_num_threads(1)
    try:
        a, b = _model("native", dtype), _model("native", dtype)
        for m in (a, b):
            m.set_optimizer(FOLDED[opt]())
        for i in range(4):
            la = a._engine.compute_gradients(X[i], y[i], "mse", {"l1": l1, "l2": l2}, None)
            a._engine.apply_gradients()
            lb = b.train_step(X[i], y[i], loss="mse", l1=l1, l2=l2)
            assert la == lb
        assert a._engine.arena().tobytes() == b._engine.arena().tobytes()
        assert a._engine.optimizer_state()["exp_avg_sq"].tobytes() == \
            b._engine.optimizer_state()["exp_avg_sq"].tobytes()
    finally:
        fb.set_num_threads(old)


def _shared_net(kind, dtype):
    if kind == "team":  # 8 rows of it: a step large enough for a team at 2 threads
        return fb.MLP([64, 256, 256, 10], activation="relu", dtype=dtype, seed=5)
    # LayerNorm: not a team's; 78k parameters: its update shared by a region of its own
    return fb.Sequential([fb.Dense(1024, "relu"), fb.LayerNorm(), fb.Dense(10)], input_dim=64,
                         dtype=dtype, seed=5)


@pytest.mark.parametrize("kind", ["team", "region"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_folded_penalty_shared_by_threads_is_the_one_thread_step(kind, dtype):
    """At 2 threads the folded update's items are shared by a team (a step large enough for
    one) or by a region of their own (a 64k+ arena off any team); one thread folds them alone;
    compute_gradients + apply_gradients penalise the gradient arena first. All three give
    bitwise the same losses and parameters."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, 8, 64)).astype(dtype)
    y = rng.integers(0, 10, (3, 8))
    old = fb.get_num_threads()
    out = []
    try:
        for threads, split in ((1, False), (2, False), (1, True)):
            fb.set_num_threads(threads)
            m = _shared_net(kind, dtype)
            m.set_optimizer(fb.optim.AdamW(lr=1e-2, weight_decay=0.01))
            losses = []
            for i in range(3):
                if split:
                    losses.append(m._engine.compute_gradients(
                        X[i], y[i], "softmax_cross_entropy", {"l1": 1e-4, "l2": 1e-2}, None))
                    m._engine.apply_gradients()
                else:
                    losses.append(m.train_step(X[i], y[i], loss="softmax_cross_entropy",
                                               l1=1e-4, l2=1e-2))
            out.append((m._engine.arena().tobytes(), losses))
    finally:
        fb.set_num_threads(old)
    assert out[0] == out[1] == out[2]
