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
X = rng.normal(size=(2048, 256)).astype(np.float32)
y = X[:, :4].copy()

def train(seed=1):
    m = fb.MLP([256, 512, 4], seed=seed)
    m.fit(X, y, optimizer="adam", epochs=1, batch_size=512, progress=False, grad_norm=False)
    return hashlib.sha256(m._engine.arena().tobytes()).hexdigest()

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
started = threading.Event()
def long_fit():
    started.set()
    busy.fit(X, y, optimizer="adam", epochs=40, batch_size=256, progress=False,
             grad_norm=False)
t = threading.Thread(target=long_fit)
t.start()
started.wait()
got = [in_child(lambda: train(5)) for _ in range(3)]
t.join()
print(all(g == expected for g in got), t.is_alive())
""", timeout=120)
    assert out.split() == ["True", "False"]


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
