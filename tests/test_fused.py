"""The fused update of a batch of one row (nn/fused_update.h): a network of dense layers with
at least 65536 parameters, trained one row at a time without gradient clipping, computes its
wide weights by row units, and on a team every thread updates its own units inside backward.
Checked against the NumPy reference for every optimizer, with L1 and L2 penalties, in float32
and float64, under every ISA; bitwise the same with 1 thread (not fused), 2 and 3 threads
(fused), and the same as compute_gradients + apply_gradients. A batch of 3 rows (neither row
units nor fusion) is checked alongside."""
import numpy as np
import pytest

import fastbp as fb

# 61-300-260-3: 97k parameters, two wide weights (> 256 columns) whose rows (61, 300) are
# not multiples of the 64-row units, a wide layer with a dx, a narrow output.
SIZES = [61, 300, 260, 3]
OPTIMIZERS = {
    "adam": lambda: fb.optim.Adam(lr=3e-3),
    "adam_amsgrad_decay": lambda: fb.optim.Adam(lr=2e-3, amsgrad=True, weight_decay=1e-2),
    "adamw": lambda: fb.optim.AdamW(lr=2e-3, weight_decay=0.05),
    "sgd_nesterov": lambda: fb.optim.SGD(lr=0.01, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: fb.optim.RMSprop(lr=1e-3, centered=True, momentum=0.5),
    "adagrad": lambda: fb.optim.Adagrad(lr=0.01, lr_decay=1e-3),
}


def _data(n, dtype, seed=11):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SIZES[0])).astype(dtype)
    return X, rng.integers(0, SIZES[-1], n)


def _steps(backend, dtype, opt, batch, l1=0.0, l2=0.0, activation="tanh"):
    X, y = _data(12, dtype)  # (on the threads of the calling test)
    m = fb.MLP(SIZES, activation=activation, dtype=dtype, seed=4, backend=backend)
    o = OPTIMIZERS[opt]()
    losses = [m.train_step(X[s:s + batch], y[s:s + batch], loss="softmax_cross_entropy",
                           optimizer=o, l1=l1, l2=l2) for s in range(0, 12, batch)]
    return m, np.asarray(losses)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("batch", [1, 3])
def test_fused_steps_match_the_reference(isa, dtype, opt, batch):
    pen = {"l1": 1e-4, "l2": 1e-3} if opt in ("adam", "sgd_nesterov") else {}
    with _threads(2):
        nat, ln = _steps("native", dtype, opt, batch, **pen)
    ref, lr = _steps("reference", dtype, opt, batch, **pen)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(ln, lr, **tol)
    for a, b in zip(nat.parameters(), ref.parameters()):
        np.testing.assert_allclose(a, b, **tol)
    sn, sr = nat.engine.optimizer_state(), ref.engine.optimizer_state()
    assert sn.keys() == sr.keys()
    for k in sn:
        if isinstance(sn[k], np.ndarray):  # (f32: one rmsprop momentum in 1e5 is 3e-3 off)
            np.testing.assert_allclose(sn[k], sr[k], err_msg=k, **(
                tol if dtype == "float64" else dict(rtol=1e-2, atol=1e-4)))
        else:
            assert sn[k] == sr[k], k


def test_the_fused_path_runs():
    """A fused step does not write the weights' gradients (the gradient arena's content after
    a step is unspecified); a clipped step, which needs the whole gradient first, and a step
    on one thread do. This checks that the tests here exercise the fused path."""
    X, y = _data(4, "float64")
    for threads, clip, written in ((2, None, False), (2, 1.0, True), (1, None, True)):
        m = fb.MLP(SIZES, activation="tanh", dtype="float64", seed=4)
        g = m.engine.grad_arena()
        g[:] = 7.0
        with _threads(threads):
            m.train_step(X[:1], y[:1], loss="softmax_cross_entropy",
                         optimizer=fb.optim.Adam(lr=1e-3, clip_norm=clip))
        first_weight = g[:SIZES[0] * SIZES[1]]
        assert bool((first_weight != 7.0).any()) == written


class _threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.before = fb.get_num_threads()
        fb.set_num_threads(self.n)

    def __exit__(self, *exc):
        fb.set_num_threads(self.before)


def _fit(threads, dtype, opt, batch, l2):
    with _threads(threads):
        X, y = _data(23, dtype, seed=5)
        m = fb.MLP(SIZES, activation="gelu", dtype=dtype, seed=9)
        h = m.fit(X, y, loss="softmax_cross_entropy", optimizer=OPTIMIZERS[opt](), epochs=2,
                  batch_size=batch, l1=1e-4, l2=l2, progress=False, grad_norm=False,
                  schedule=fb.schedules.StepLR(step_size=5, gamma=0.5), schedule_per="step")
        return ([p.copy() for p in m.parameters()], np.asarray(h.history["loss"]),
                m.engine.optimizer_state())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["adam", "rmsprop_centered"])
# (11: an epoch on a team, whose 23 rows end on a fused batch of one)
@pytest.mark.parametrize("batch", [1, 11])
def test_fused_fit_is_bitwise_the_same_on_1_2_and_3_threads(isa, dtype, opt, batch):
    runs = [_fit(t, dtype, opt, batch, l2=1e-3) for t in (1, 2, 3)]
    for other in runs[1:]:
        for a, b in zip(runs[0][0], other[0]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(runs[0][1], other[1])
        for k in runs[0][2]:
            np.testing.assert_array_equal(np.asarray(runs[0][2][k]), np.asarray(other[2][k]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_fit_matches_the_reference(dtype):
    X, y = _data(23, dtype, seed=5)
    out = []
    for backend in ("native", "reference"):
        m = fb.MLP(SIZES, activation="gelu", dtype=dtype, seed=9, backend=backend)
        h = m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(lr=2e-3),
                  epochs=2, batch_size=1, l2=1e-3, progress=False, grad_norm=False)
        out.append((m.parameters(), h.history["loss"]))
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(out[0][1], out[1][1], **tol)
    for a, b in zip(out[0][0], out[1][0]):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
def test_compute_then_apply_is_the_fused_train_step(isa, dtype, threads):
    """What each MPI rank runs (compute_gradients, then apply_gradients: no fusion) gives
    bitwise the fused train_step's loss and parameters at a batch of one row."""
    with _threads(threads):
        X, y = _data(3, dtype)
        a, b = (fb.MLP(SIZES, activation="tanh", dtype=dtype, seed=4) for _ in range(2))
        for m in (a, b):
            m.set_optimizer(fb.optim.AdamW(lr=1e-2, weight_decay=0.01))
        for i in range(3):
            la = a._engine.compute_gradients(X[i:i + 1], y[i:i + 1], "softmax_cross_entropy",
                                             {"l1": 1e-4, "l2": 0.1}, None)
            a._engine.apply_gradients()
            lb = b.train_step(X[i:i + 1], y[i:i + 1], loss="softmax_cross_entropy", l1=1e-4,
                              l2=0.1)
            assert la == lb
        assert a._engine.arena().tobytes() == b._engine.arena().tobytes()
