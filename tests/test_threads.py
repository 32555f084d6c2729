"""Threads: concurrent predict on one model is correct; concurrent train_step on one model is
serialised (the network's mutex) and equals the sequential run bit for bit; training next to
NumPy / PyTorch work in other threads does not deadlock; results are bitwise identical for
1 and 2 OpenMP threads and across runs. Every join has a timeout: a hang fails the test."""
import threading

import numpy as np
import pytest

import fastbp as fb

TIMEOUT = 120.0  # seconds; generous (sanitizer builds are slow) -- a deadlock never ends


def run_threads(targets):
    errors = []

    def wrap(f):
        def g():
            try:
                f()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
        return g

    threads = [threading.Thread(target=wrap(f), daemon=True) for f in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    alive = [t for t in threads if t.is_alive()]
    assert not alive, f"{len(alive)} thread(s) still running after {TIMEOUT}s: deadlock?"
    if errors:
        raise errors[0]


def make(seed=0, dtype="float32"):
    return fb.Sequential([fb.Dense(32, "relu"), fb.Dropout(0.2), fb.BatchNorm(), fb.Dense(5)],
                         input_dim=12, dtype=dtype, seed=seed)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_concurrent_predict_is_correct(dtype):
    m = make(dtype=dtype)
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 12)).astype(dtype) for n in (1, 7, 64, 200, 33, 5, 128, 2)]
    want = [m.predict(X) for X in Xs]
    bad = []

    def worker(i):
        def f():
            for _ in range(40):
                got = m.predict(Xs[i])
                if not np.array_equal(got, want[i]):
                    bad.append(i)
        return f

    run_threads([worker(i) for i in range(len(Xs))])
    assert not bad


def test_concurrent_train_step_is_serialised():
    """Two threads x N steps on the same batch = 2N sequential steps (the update sequence is
    the same whichever thread runs a step), bit for bit: no lost or torn update."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 12)).astype(np.float32)
    y = rng.integers(0, 5, 24)
    N = 150
    seq = make(seed=4)
    opt = fb.optim.Adam(lr=1e-3)
    for _ in range(2 * N):
        seq.train_step(X, y, "softmax_cross_entropy", opt)
    par = make(seed=4)
    popt = fb.optim.Adam(lr=1e-3)
    losses = [par.train_step(X, y, "softmax_cross_entropy", popt)]  # configures the optimizer

    def trainer(steps):
        def f():
            for _ in range(steps):
                losses.append(par.train_step(X, y, "softmax_cross_entropy"))
        return f

    run_threads([trainer(N), trainer(N - 1)])
    assert par._engine.optimizer_state()["step"] == 2 * N
    assert par._engine.rng_state()[1] == 2 * N
    assert all(np.isfinite(v) for v in losses)
    for a, b in zip(seq.parameters(), par.parameters()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(seq.buffers(), par.buffers()):
        np.testing.assert_array_equal(a, b)


def test_mixed_calls_from_threads():
    """predict, loss_and_gradients, train_step, fit, optimizer_state and rng_state on one
    model from four threads: no crash, finite results, consistent step count."""
    m = make(seed=2)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 12)).astype(np.float32)
    y = rng.integers(0, 5, 40)
    opt = fb.optim.SGD(lr=1e-2, momentum=0.9)
    m.train_step(X, y, "softmax_cross_entropy", opt)
    counts = {"train": 0}

    def trainer():
        for _ in range(60):
            assert np.isfinite(m.train_step(X[:16], y[:16], "softmax_cross_entropy"))
            counts["train"] += 1  # only this thread writes it

    def predictor():
        for _ in range(60):
            assert np.isfinite(m.predict(X)).all()

    def grads():
        for _ in range(30):
            loss, g = m.loss_and_gradients(X[:8], y[:8], "softmax_cross_entropy")
            assert np.isfinite(loss) and all(np.isfinite(a).all() for a in g)
            m._engine.optimizer_state()
            m._engine.rng_state()

    run_threads([trainer, predictor, grads, predictor])
    assert m._engine.optimizer_state()["step"] == 1 + counts["train"]


def test_set_num_threads_applies_to_other_python_threads():
    before = fb.get_num_threads()
    seen = []
    try:
        fb.set_num_threads(1)
        run_threads([lambda: seen.append(fb.get_num_threads())])
    finally:
        fb.set_num_threads(before)
    assert seen == [1]


def test_training_next_to_numpy_and_torch_does_not_deadlock():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((512, 12)).astype(np.float32)
    y = rng.integers(0, 5, 512)
    m = make(seed=3)
    stop = threading.Event()

    def train():
        try:
            m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(), epochs=4,
                  batch_size=32, progress=False)
        finally:
            stop.set()

    def numpy_work():
        A = rng.standard_normal((200, 200))
        while not stop.is_set():
            A = np.tanh(A @ A.T / 200.0)

    targets = [train, numpy_work]
    try:
        import torch  # noqa: F401

        def torch_work():
            B = torch.randn(200, 200)
            while not stop.is_set():
                B = torch.tanh(B @ B.T / 200.0)

        targets.append(torch_work)
    except ImportError:
        pass
    run_threads(targets)
    assert all(np.isfinite(p).all() for p in m.parameters())


def _fit_params(seed, threads, dtype="float32"):
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(threads)
        rng = np.random.default_rng(11)
        X = rng.standard_normal((300, 40)).astype(dtype)
        y = rng.integers(0, 6, 300)
        m = fb.Sequential([fb.Dense(96, "relu"), fb.Dropout(0.3), fb.BatchNorm(),
                           fb.Residual([fb.Dense(96, "tanh")]), fb.LayerNorm(), fb.Dense(6)],
                          input_dim=40, dtype=dtype, seed=seed)
        m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.AdamW(lr=3e-3),
              epochs=3, batch_size=48, progress=False)
        return [p.copy() for p in m.parameters()] + [b.copy() for b in m.buffers()]
    finally:
        fb.set_num_threads(before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_is_bitwise_deterministic_for_1_and_2_threads(dtype):
    a = _fit_params(9, 1, dtype)
    b = _fit_params(9, 2, dtype)
    c = _fit_params(9, 2, dtype)
    for x, y_, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y_)
        np.testing.assert_array_equal(y_, z)
    d = _fit_params(10, 2, dtype)
    assert any(not np.array_equal(x, w) for x, w in zip(a, d))  # the seed matters


def test_fit_deterministic_from_two_python_threads_at_once():
    """Two models fitted at the same time in two Python threads (each opening its own
    OpenMP team) give the same parameters as when fitted alone."""
    want = _fit_params(21, 2)
    got = {}

    def worker(k):
        def f():
            rng = np.random.default_rng(11)
            X = rng.standard_normal((300, 40)).astype(np.float32)
            y = rng.integers(0, 6, 300)
            m = fb.Sequential([fb.Dense(96, "relu"), fb.Dropout(0.3), fb.BatchNorm(),
                               fb.Residual([fb.Dense(96, "tanh")]), fb.LayerNorm(),
                               fb.Dense(6)], input_dim=40, dtype="float32", seed=21)
            m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.AdamW(lr=3e-3),
                  epochs=3, batch_size=48, progress=False)
            got[k] = [p.copy() for p in m.parameters()] + [b.copy() for b in m.buffers()]
        return f

    before = fb.get_num_threads()
    try:
        fb.set_num_threads(2)
        run_threads([worker(0), worker(1)])
    finally:
        fb.set_num_threads(before)
    for k in (0, 1):
        for x, y_ in zip(want, got[k]):
            np.testing.assert_array_equal(x, y_)
