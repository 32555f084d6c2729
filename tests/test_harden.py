"""Hardening (docs/RELIABILITY.md): fork safety, thread bounds, zero-weight batches, copies,
interrupts, early callback checks, side-effect-free diagnostics, bounded predict memory.

Each case that could hang or crash runs in its own child process with a timeout, so a
regression fails the test instead of hanging the suite.
"""
import copy
import os
import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastbp as fb

BACKENDS = ["native", "reference"]


def run_child(code: str, timeout: float = 120.0) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout (fails on error or timeout)."""
    try:
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                           text=True, timeout=timeout, env=dict(os.environ))
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"child process hung (killed after {timeout} s): {e.stdout!r} {e.stderr!r}")
    assert r.returncode == 0, f"child failed (rc={r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


# ------------------------------------------------------------------------------------ fork
FORK_PRELUDE = """
import os, sys, hashlib, threading
import numpy as np
import fastbp as fb

fb.set_num_threads(2)
rng = np.random.default_rng(0)
X = rng.normal(size=(1024, 256)).astype(np.float32)
y = X[:, :4].copy()

def train(seed=1):
    m = fb.MLP([256, 512, 4], seed=seed)
    m.fit(X, y, optimizer="adam", epochs=1, batch_size=512, progress=False, grad_norm=False)
    return hashlib.sha256(m._engine.arena().tobytes()).hexdigest()

def states_in_children(model, tries=10):
    # Fork until a child finds `model` refused (another thread was inside a native call at
    # the fork): each child calls predict, which must raise, never deadlock.
    def probe():
        try:
            model.predict(X[:2])
            return "usable"
        except RuntimeError as e:
            return "refused" if "forked" in str(e) else "other"
    states = set()
    for _ in range(tries):  # the fork lands inside a native epoch almost always
        states.add(in_child(probe))
        if "refused" in states:
            break
    return states

def in_child(fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, fn().encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 1000).decode()
    os.waitpid(pid, 0)
    return out
"""


def test_fork_after_parallel_fit_child_trains_identically():
    out = run_child(FORK_PRELUDE + """
parent = train()
child = in_child(train)
print(parent == child == train(), fb.get_num_threads(), fb.info()["fork_serial"])
""", timeout=60)
    assert out.split() == ["True", "2", "False"]


def test_multiprocessing_pool_with_fork_trains():
    out = run_child(FORK_PRELUDE + """
import multiprocessing as mp
expected = [train(s) for s in (1, 2, 3)]
with mp.get_context("fork").Pool(2) as pool:
    got = pool.map(train, [1, 2, 3])
print(got == expected)
""", timeout=90)
    assert out.split() == ["True"]


def test_fork_while_another_thread_is_inside_fit():
    out = run_child(FORK_PRELUDE + """
expected = train(5)
busy = fb.MLP([256, 512, 4], seed=9)
started, stop = threading.Event(), threading.Event()
def keep_fitting():
    while not stop.is_set():
        busy.fit(X, y, optimizer="adam", epochs=1, batch_size=256, progress=False,
                 grad_norm=False, callbacks=[fb.callbacks.LambdaCallback(
                     on_train_begin=lambda logs: started.set())])
t = threading.Thread(target=keep_fitting)
t.start()
started.wait()
got = [in_child(lambda: train(5)) for _ in range(3)]
busy_states = states_in_children(busy)
stop.set()
t.join()
busy.predict(X[:2])  # the parent's model is fine
print(busy_states <= {"usable", "refused"}, "refused" in busy_states)
print(all(g == expected for g in got), t.is_alive())
""", timeout=120)
    lines = out.split("\n")
    assert lines[0].split() == ["True", "True"], out
    assert lines[1].split() == ["True", "False"]


def test_fork_while_another_thread_is_inside_a_sparse_epoch():
    pytest.importorskip("scipy")
    out = run_child(FORK_PRELUDE + """
import scipy.sparse as sp
Xs = sp.random(4096, 256, density=0.05, format="csr", dtype=np.float32, random_state=0)
ys = rng.normal(size=(4096, 4)).astype(np.float32)
busy = fb.MLP([256, 512, 4], seed=9)
busy.set_optimizer(fb.optim.Adam())
started, stop = threading.Event(), threading.Event()
def keep_fitting():
    while not stop.is_set():
        started.set()
        busy.engine.fit_epoch_csr(Xs.data, Xs.indices, Xs.indptr, ys, "mse", None, None, 256,
                                  True)
t = threading.Thread(target=keep_fitting)
t.start()
started.wait()
states = states_in_children(busy)
stop.set()
t.join()
print(states <= {"usable", "refused"}, "refused" in states)
""", timeout=120)
    assert out.split() == ["True", "True"], out


# ---------------------------------------------------------------------------- thread counts
def test_set_num_threads_bounds_and_integer_types():
    before = fb.get_num_threads()
    bound = fb.info()["max_num_threads"]
    assert bound == fb._runtime.max_num_threads() >= 4
    try:
        for n in (np.int64(2), np.int32(1), np.uint8(2), 1):
            fb.set_num_threads(n)
            assert fb.get_num_threads() == int(n)
        fb.set_num_threads(bound)  # the bound itself is accepted
        for bad in (0, -1, bound + 1, 100000, 2**70, np.int64(bound + 1)):
            with pytest.raises(ValueError, match="must be in"):
                fb.set_num_threads(bad)
        for bad in (True, np.bool_(True), 2.0, np.float64(2), "2", None):
            with pytest.raises(TypeError):
                fb.set_num_threads(bad)
        # the engine's own entry point checks the same way
        from fastbp import _core

        with pytest.raises(ValueError):
            _core.set_num_threads(100000)
        with pytest.raises(TypeError):
            _core.set_num_threads(True)
        _core.set_num_threads(np.int64(1))
        assert fb.get_num_threads() == 1
    finally:
        fb.set_num_threads(before)


def test_huge_omp_num_threads_is_capped():
    env = dict(os.environ, OMP_NUM_THREADS="100000")
    code = """
import numpy as np, fastbp as fb
m = fb.MLP([64, 256, 2], seed=0)
X = np.ones((512, 64), np.float32)
m.train_step(X, np.zeros((512, 2), np.float32), optimizer="sgd")
print(fb.get_num_threads() <= fb.info()["max_num_threads"])
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True"]


# ----------------------------------------------------------------------- zero-weight batches
def _data(n=12, d=5, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X[:, :k] * 0.5 + 0.1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy",
                                  "softmax_cross_entropy"])
def test_zero_weight_batch_contributes_nothing(backend, dtype, loss):
    """Mini-batch 1 (rows 4..7) has all-zero weights: with plain SGD the fit equals the two
    other steps alone, bit for bit; nothing becomes NaN."""
    X, Y = _data()
    y = (Y[:, 0] > 0.1).astype(np.int64) if loss == "softmax_cross_entropy" else \
        (Y > 0.1).astype(float) if loss == "binary_cross_entropy" else Y
    w = np.ones(12)
    w[4:8] = 0.0
    kw = dict(seed=3, dtype=dtype, backend=backend)
    a = fb.MLP([5, 7, 2], **kw)
    b = fb.MLP([5, 7, 2], **kw)
    hist = a.fit(X, y, loss=loss, optimizer=fb.optim.SGD(lr=0.1), epochs=1, batch_size=4,
                 shuffle=False, sample_weight=w, progress=False, grad_norm=False)
    assert np.isfinite(hist["loss"][0])
    opt = fb.optim.SGD(lr=0.1)
    b.train_step(X[:4], y[:4], loss=loss, optimizer=opt, sample_weight=w[:4])
    b.train_step(X[8:], y[8:], loss=loss, sample_weight=w[8:])
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    # the zero-weight batch alone: loss 0 and a zero gradient (engine level)
    value, grads = a._engine.loss_and_gradients(
        a._X(X[4:8]), a._y(y[4:8], loss), loss, {}, None)
    assert np.isfinite(value)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_weight_batches_match_across_backends_with_adam(dtype):
    X, Y = _data(16)
    w = np.ones(16)
    w[0:4] = 0.0
    w[12:] = 0.0
    out = []
    for backend in BACKENDS:
        m = fb.Sequential([fb.Dense(6, "tanh"), fb.BatchNorm(), fb.Dropout(0.2), fb.Dense(2)],
                          input_dim=5, seed=1, dtype=dtype, backend=backend)
        h = m.fit(X, Y, optimizer=fb.optim.Adam(lr=0.01, weight_decay=0.01), epochs=3,
                  batch_size=4, sample_weight=w, progress=False, grad_norm=False, l2=1e-3)
        out.append((h["loss"], [p.copy() for p in m.parameters()]))
    for p, q in zip(out[0][1], out[1][1]):
        assert np.all(np.isfinite(p))
        np.testing.assert_allclose(p, q, rtol=1e-4 if dtype == "float32" else 1e-10,
                                   atol=1e-5 if dtype == "float32" else 1e-12)
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-4)


# ------------------------------------------------------------------------------------ copies
def _trained(backend, cls="Sequential"):
    X, Y = _data(32)
    if cls == "MLP":
        m = fb.MLP([5, 8, 2], activation="tanh", seed=4, backend=backend)
    else:
        m = fb.Sequential([fb.Dense(8, "relu"), fb.BatchNorm(), fb.Dropout(0.1),
                           fb.Residual([fb.Dense(8, "tanh"), fb.LayerNorm()]), fb.Dense(2)],
                          input_dim=5, seed=4, backend=backend, dtype="float64")
    m.fit(X, Y, optimizer=fb.optim.Adam(lr=0.01), epochs=2, batch_size=8, progress=False)
    return m, X, Y


def _state(m):
    st = m._engine.optimizer_state()
    return ([p.copy() for p in m.parameters()], [b.copy() for b in m.buffers()],
            tuple(m._engine.rng_state()), {k: np.array(v) for k, v in st.items()},
            m.epochs_trained, m.steps_trained)


def _assert_same(a, b):
    sa, sb = _state(a), _state(b)
    for x, y in zip(sa[0] + sa[1], sb[0] + sb[1]):
        np.testing.assert_array_equal(x, y)
    assert sa[2] == sb[2] and sa[4:] == sb[4:]
    assert sa[3].keys() == sb[3].keys()
    for k in sa[3]:
        np.testing.assert_array_equal(sa[3][k], sb[3][k])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", ["MLP", "Sequential"])
@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_copies_are_independent_and_train_identically(backend, cls, how):
    m, X, Y = _trained(backend, cls)
    c = {"pickle": lambda: pickle.loads(pickle.dumps(m)), "deepcopy": lambda: copy.deepcopy(m),
         "copy": lambda: copy.copy(m)}[how]()
    assert type(c) is type(m) and c.backend == backend and c.spec == m.spec
    assert c._engine is not m._engine
    _assert_same(m, c)
    before = _state(m)
    c.fit(X, Y, epochs=2, batch_size=8, progress=False)  # continues with the copied optimizer
    after = _state(m)
    for x, y in zip(before[0], after[0]):  # training the copy leaves the original alone
        np.testing.assert_array_equal(x, y)
    m.fit(X, Y, epochs=2, batch_size=8, progress=False)
    _assert_same(m, c)  # and the original, trained the same way, matches it bit for bit
    np.testing.assert_array_equal(m.predict(X), c.predict(X))


def test_pickle_of_an_untrained_model_and_of_a_list_of_models():
    ms = [fb.MLP([3, 4, 2], seed=s, backend=b) for s, b in ((0, "native"), (1, "reference"))]
    back = pickle.loads(pickle.dumps(ms))
    for m, c in zip(ms, back):
        assert c.optimizer is None
        _assert_same(m, c)


# ------------------------------------------------------------------------- bounded predict
@pytest.mark.parametrize("backend,rows", [("native", 600_000), ("reference", 300_000)])
def test_predict_memory_does_not_grow_with_rows(backend, rows):
    """Peak RSS during a big predict stays within the input, the output and a bounded
    workspace (an unchunked workspace would be hundreds of MB); nothing stays resident."""
    out = run_child(f"""
import resource, numpy as np, fastbp as fb
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
m = fb.MLP([4, 32, 32, 1], seed=0, backend="{backend}")
m.fit(np.ones((64, 4), np.float32), np.ones((64, 1), np.float32), optimizer="sgd",
      batch_size=32, progress=False)
X = np.random.default_rng(0).normal(size=({rows}, 4)).astype(np.float32)
m.predict(X[:10])
base, peak0 = rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
y = m.predict(X)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
after = rss() - y.nbytes
print((max(peak, peak0) - max(base, peak0)) // 2**20, (after - base) // 2**20)
""", timeout=120)
    peak_growth, resident = (int(v) for v in out.split())
    assert peak_growth < 48, f"predict grew the peak RSS by {peak_growth} MiB"
    assert resident < 24, f"predict left {resident} MiB resident"


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_predict_equals_row_blocks(backend):
    m = fb.Sequential([fb.Dense(9, "tanh"), fb.BatchNorm(), fb.Dense(3)], input_dim=4, seed=2,
                      backend=backend)
    X = np.random.default_rng(1).normal(size=(5000, 4)).astype(np.float32)
    m.fit(X[:100], X[:100, :3], optimizer="adam", epochs=1, progress=False)
    full = m.predict(X)
    parts = np.concatenate([m.predict(X[i:i + 777]) for i in range(0, 5000, 777)])
    np.testing.assert_array_equal(full, parts)


# ----------------------------------------------------------------------------- diagnostics
def _bn_dropout_model(backend, seed=0):
    return fb.Sequential([fb.Dense(8, "relu"), fb.BatchNorm(), fb.Dropout(0.3), fb.Dense(2)],
                         input_dim=5, seed=seed, backend=backend, dtype="float64")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_probe_changes_no_training_state(backend):
    X, Y = _data(16)
    m = _bn_dropout_model(backend)
    m.fit(X, Y, optimizer="adam", epochs=1, batch_size=4, progress=False)
    eng = m._engine
    rng, bufs = tuple(eng.rng_state()), [b.copy() for b in eng.buffers()]
    v1, g1 = eng.loss_and_gradients(X, Y, "mse", {}, None, probe=True)
    assert tuple(eng.rng_state()) == rng
    for b, c in zip(eng.buffers(), bufs):
        np.testing.assert_array_equal(b, c)
    v2, g2 = eng.loss_and_gradients(X, Y, "mse", {}, None)  # the real thing: same stream
    assert v1 == v2 and all(np.array_equal(a, b) for a, b in zip(g1, g2))
    assert eng.rng_state()[1] == rng[1] + 1


def test_gradient_probe_agrees_across_backends():
    X, Y = _data(16)
    out = []
    for backend in BACKENDS:
        m = _bn_dropout_model(backend)
        m.fit(X, Y, optimizer="adam", epochs=2, batch_size=4, progress=False)
        out.append(m.history["grad_norm"])
    np.testing.assert_allclose(out[0], out[1], rtol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_threads_fitting_one_model_never_roll_counters_back(backend):
    """Every epoch and step of both threads is counted by the engine: the diagnostic of one
    thread cannot restore counters behind the other's back (shuffles and dropout masks would
    then repeat). Both fits record their gradient norms."""
    X, Y = _data(64)
    m = _bn_dropout_model(backend)
    m.fit(X, Y, optimizer="adam", epochs=1, batch_size=8, progress=False)
    seed, step0, epoch0 = m._engine.rng_state()
    epochs, errors = 15, []

    def work():
        try:
            m.fit(X, Y, epochs=epochs, batch_size=8, progress=False)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in ts)
    _, step, epoch = m._engine.rng_state()
    assert (step - step0, epoch - epoch0) == (2 * epochs * 8, 2 * epochs)
    assert m._engine.optimizer_state()["step"] == step  # one optimizer step per training step


# -------------------------------------------------------------------------------- Ctrl-C
INTERRUPT_CHILD = """
import sys, numpy as np, fastbp as fb
from fastbp.model import from_bytes, to_bytes
backend, spc, split = sys.argv[1], (int(sys.argv[2]) or None), sys.argv[3] == "split"
rng = np.random.default_rng(0)
if split:  # (hidden units by strips on 2 threads, nn/network_split.cpp: ~1 s an epoch)
    fb.set_num_threads(2)
    X = rng.normal(size=(200000, 64)).astype(np.float32)
    m, bs = fb.MLP([64, 256, 4], seed=0, backend=backend), 2
else:
    X = rng.normal(size=(40000, 128)).astype(np.float32)
    m, bs = fb.MLP([128, 768, 768, 4], seed=0, backend=backend), 100
y = X[:, :4].copy()
m.fit(X[:64], y[:64], optimizer="adam", epochs=1, batch_size=64, progress=False)
steps_per_epoch = len(X) // bs
started = fb.callbacks.LambdaCallback(on_train_begin=lambda logs: print("started", flush=True))
try:
    m.fit(X, y, epochs=1, batch_size=bs, progress=False, callbacks=[started],
          steps_per_callback=spc)
    print("completed")
except KeyboardInterrupt:
    print("interrupted")
_, step, epoch = m._engine.rng_state()
print(m.steps_trained, step, m._engine.optimizer_state()["step"], m.epochs_trained, epoch,
      1 + steps_per_epoch)
c = from_bytes(to_bytes(m))  # save + resume
for model in (m, c):
    model.fit(X[:128], y[:128], epochs=2, batch_size=64, progress=False)
print(np.array_equal(m._engine.arena(), c._engine.arena()), flush=True)
print(getattr(m._engine, "split_epochs", 0), flush=True)
"""


@pytest.mark.parametrize("backend,steps_per_callback,net", [
    ("native", 0, "deep"), ("reference", 0, "deep"), ("native", 50, "deep"),
    ("native", 0, "split")])
def test_ctrl_c_stops_fit_between_mini_batches_with_consistent_counters(backend,
                                                                        steps_per_callback,
                                                                        net):
    """SIGINT sent to a child mid-epoch: the epoch (400 steps, seconds) stops after a
    few steps with KeyboardInterrupt; the model's step and epoch counters equal the engine's
    (and the optimizer's step); a checkpoint taken then resumes exactly. "split": a two-layer
    net whose epoch runs by hidden-unit strips on 2 threads (100000 steps of 2 rows)."""
    import signal
    import time

    p = subprocess.Popen([sys.executable, "-c", INTERRUPT_CHILD, backend,
                          str(steps_per_callback), net],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "started"
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("the child did not stop after SIGINT")
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    lines = out.split("\n")
    assert lines[0] == "interrupted", out
    steps, engine_steps, opt_steps, epochs, engine_epochs, full = (int(v)
                                                                   for v in lines[1].split())
    assert steps == engine_steps == opt_steps
    assert 1 <= steps < full, f"the interrupted epoch ran {steps - 1} of {full - 1} steps"
    assert epochs == engine_epochs == 2
    assert lines[2] == "True"
    if net == "split" and fb.get_isa() != "generic":
        assert int(lines[3]) == 1  # (the interrupted epoch; the others are too short to split)


# ------------------------------------------------------------------ callbacks check early
def _fit_with(cb, backend="native", **kw):
    X, Y = _data(16)
    m = fb.MLP([5, 4, 2], seed=0, backend=backend)
    before = (m.optimizer, [p.copy() for p in m.parameters()], tuple(m.engine.rng_state()))
    with pytest.raises(ValueError) as e:
        m.fit(X, Y, optimizer="adam", epochs=2, batch_size=4, progress=False,
              callbacks=[cb], **kw)
    # rejected before anything changed: no optimizer set up, no epoch run
    assert m.optimizer is before[0] and m.epochs_trained == 0
    assert tuple(m.engine.rng_state()) == before[2]
    for p, q in zip(m.parameters(), before[1]):
        np.testing.assert_array_equal(p, q)
    return str(e.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_checkpoint_checks_its_path_before_the_first_epoch(tmp_path, backend):
    C = fb.callbacks.ModelCheckpoint
    assert "does not exist" in _fit_with(C(tmp_path / "missing" / "m.npz"), backend)
    (tmp_path / "file").write_text("x")
    assert "does not exist" in _fit_with(C(tmp_path / "file" / "m.npz"), backend)
    assert "is a directory" in _fit_with(C(tmp_path), backend)
    msg = _fit_with(C(tmp_path / "m-{val_loss:.3f}.npz"), backend)
    assert "{val_loss}" in msg and "validation" in msg
    assert "{acc}" in _fit_with(C(tmp_path / "m-{acc}.npz"), backend)
    assert "{0}" in _fit_with(C(tmp_path / "m-{0}.npz"), backend)
    assert "cannot format" in _fit_with(C(tmp_path / "m-{loss:d}.npz"), backend)
    assert "malformed" in _fit_with(C(tmp_path / "m-{loss.npz"), backend)
    assert "monitor" in _fit_with(C(tmp_path / "m.npz", save_best_only=True), backend)
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # nothing written
    # the same fields with validation data are fine
    X, Y = _data(16)
    m = fb.MLP([5, 4, 2], seed=0, backend=backend)
    cb = C(tmp_path / "m-{epoch:02d}-{val_loss:.3f}-{lr}.npz", save_best_only=True)
    m.fit(X, Y, optimizer="adam", epochs=2, batch_size=4, progress=False,
          validation_split=0.25, callbacks=[cb])
    assert cb.last_path is not None and os.path.exists(cb.last_path)


def test_other_callbacks_check_before_the_first_epoch(tmp_path):
    assert "validation_split" in _fit_with(fb.callbacks.EarlyStopping())
    assert "does not exist" in _fit_with(fb.callbacks.CSVLogger(tmp_path / "no" / "log.csv"))


# ------------------------------------------------------------------------------------ soak
SOAK_CHILD = """
import sys, numpy as np, fastbp as fb
backend, total = sys.argv[1], int(sys.argv[2])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
rng = np.random.default_rng(0)
rows = min(4000, total // 16)
X = rng.normal(size=(rows, 2)).astype(np.float32)
y = (X[:, :1] * 0.5).astype(np.float32)
m = fb.MLP([2, 4, 1], activation="tanh", seed=0, backend=backend)
sizes = [1, 3, 2, 7, 1, 5, 16, rows]
opt = fb.optim.Adam(lr=1e-3)
for bs in sizes:  # warm-up: every batch size once
    m.fit(X, y, optimizer=opt, epochs=1, batch_size=bs, progress=False, grad_norm=False)
base, peak, steps = rss(), 0, 0
while steps < total:
    for bs in sizes:
        per_epoch = -(-len(X) // bs)
        epochs = max(1, min(total // 8, 200 * per_epoch) // per_epoch)
        m.fit(X, y, epochs=epochs, batch_size=bs, progress=False, grad_norm=bs == 16)
        steps += epochs * per_epoch
        peak = max(peak, rss())
print(steps, (peak - base) // 1024, bool(np.all(np.isfinite(m.predict(X)))))
"""


@pytest.mark.parametrize("backend,steps", [("native", 10**6), ("reference", 10**4)])
def test_soak_resident_memory_stays_flat(backend, steps):
    """10^6 optimizer steps (the reference, ~50x slower per step: 10^4) across fits with
    changing batch sizes: resident memory stays flat after the warm-up."""
    out = run_child(SOAK_CHILD.replace("sys.argv[1], int(sys.argv[2])",
                                       f"{backend!r}, {steps}"), timeout=300)
    done, growth_kib, finite = out.split()
    assert int(done) >= steps and finite == "True"
    # flat: allocator noise only (a leak of one byte per step would be > 1 MB here)
    assert int(growth_kib) < 8192, f"RSS grew by {growth_kib} KiB over {done} steps"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_ensemble_copies_are_independent_and_train_identically(backend, how):
    X, Y = _data(32)
    ens = fb.Ensemble([5, 6, 2], n_models=3, seeds=[1, 2, 3], backend=backend)
    ens.fit(X, Y, optimizer=fb.optim.Adam(lr=0.01), epochs=2, batch_size=8)
    c = {"pickle": lambda: pickle.loads(pickle.dumps(ens)), "deepcopy": lambda: copy.deepcopy(ens),
         "copy": lambda: copy.copy(ens)}[how]()
    assert type(c) is fb.Ensemble and c.n_models == 3
    for a, b in zip(ens.models, c.models):
        assert a.engine is not b.engine
        _assert_same(a, b)
    before = [p.copy() for m in ens.models for p in m.parameters()]
    c.fit(X, Y, epochs=2, batch_size=8)
    after = [p for member in ens.models for p in member.parameters()]
    for x, p in zip(before, after):
        np.testing.assert_array_equal(x, p)
    ens.fit(X, Y, epochs=2, batch_size=8)
    for a, b in zip(ens.models, c.models):
        _assert_same(a, b)
    np.testing.assert_array_equal(ens.predict(X), c.predict(X))
