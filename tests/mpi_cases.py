"""Data-parallel contracts, run under ``mpiexec -n 2`` by tests/test_distributed.py.

Every rank runs every case and prints one JSON line per case on rank 0's stdout:
``{"case": name, "rank_results": [result of rank 0, result of rank 1]}``. A case's result is a
dict of plain values that the pytest side asserts on.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback

import numpy as np
from mpi4py import MPI

import fastbp as fb
from fastbp import distributed as dist

COMM = MPI.COMM_WORLD
RANK = COMM.Get_rank()
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def data(n=57, d=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, rng.integers(0, k, n), rng.uniform(0.2, 2.0, n)


def arena_bytes(m):
    return np.asarray(m._engine.arena()).tobytes()


def raises(fn):
    """The exception type name and message fn raised (None if it returned)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 -- reported to the test
        return [type(e).__name__, str(e)]
    return None


@case
def train_step_equals_concatenated_batch():
    """Each rank's rows form one part of the batch; a single process trains on the whole."""
    X, y, w = data()
    parts = [(0, 20), (20, 57)]  # unequal parts
    lo, hi = parts[RANK]
    out = {}
    for backend in ("native", "reference"):
        for weighted in (False, True, "zero"):
            kw = {"loss": "softmax_cross_entropy", "l2": 0.01, "l1": 0.001}
            m = fb.MLP([7, 33, 3], activation="tanh", dtype="float64", seed=3 + RANK,
                       backend=backend)  # rank 1's initial parameters are overwritten
            one = fb.MLP([7, 33, 3], activation="tanh", dtype="float64", seed=3, backend=backend)
            ww = w.copy()
            if weighted == "zero":  # rank 1's rows weigh nothing
                ww[20:] = 0
            diffs = []
            for step in range(4):
                def opt(step=step):
                    return fb.optim.Adam(lr=1e-2, clip_norm=0.5) if step == 0 else None

                sw = ww[lo:hi] if weighted else None
                a = m.train_step(X[lo:hi], y[lo:hi], optimizer=opt(), sample_weight=sw,
                                 comm=COMM, **kw)
                b = one.train_step(X, y, optimizer=opt(), sample_weight=ww if weighted else None,
                                   **kw)
                diffs.append(abs(a - b))
            pdiff = float(np.abs(np.asarray(m._engine.arena()) - one._engine.arena()).max())
            out[f"{backend}-{weighted}"] = {"loss": max(diffs), "params": pdiff}
    out["identical"] = dist.check_identical(m, COMM)
    return out


def simulate_fit(X_parts, y_parts, b, epochs, seed, kw, opt):
    """One process: the global batches data-parallel fit forms without shuffling."""
    m = fb.MLP([7, 16, 3], dtype="float64", seed=seed)
    steps = -(-max(len(p) for p in X_parts) // b)
    for e in range(epochs):
        for k in range(steps):
            xs = [p[k * b:(k + 1) * b] for p in X_parts]
            ys = [p[k * b:(k + 1) * b] for p in y_parts]
            m.train_step(np.concatenate(xs), np.concatenate(ys),
                         optimizer=opt if (e, k) == (0, 0) else None, **kw)
    return m


@case
def fit_unequal_shards():
    X, y, _ = data()
    cut = 37  # shards of 37 and 20 rows: 5 steps per epoch with batch_size 8
    shards = [(X[:cut], y[:cut]), (X[cut:], y[cut:])]
    kw = {"loss": "softmax_cross_entropy"}
    m = fb.MLP([7, 16, 3], dtype="float64", seed=11)
    h = m.fit(*shards[RANK], optimizer=fb.optim.SGD(lr=0.1, momentum=0.9), epochs=3,
              batch_size=8, shuffle=False, comm=COMM, metrics=["accuracy"], progress=False, **kw)
    one = simulate_fit([s[0] for s in shards], [s[1] for s in shards], 8, 3, 11, kw,
                       fb.optim.SGD(lr=0.1, momentum=0.9))
    # the epoch loss is the global mean over every row visited
    m2 = fb.MLP([7, 16, 3], dtype="float64", seed=11)
    h2 = m2.fit(*shards[RANK], optimizer=fb.optim.Adam(lr=1e-2), epochs=3, batch_size=8,
                shuffle=True, comm=COMM, progress=False, **kw)
    return {"params": float(np.abs(np.asarray(m._engine.arena()) - one._engine.arena()).max()),
            "steps": m.steps_trained, "history": h.history["loss"], "acc": h.history["accuracy"],
            "identical": dist.check_identical(m, COMM) and dist.check_identical(m2, COMM),
            "shuffled_loss": h2.history["loss"], "threads": fb.get_num_threads()}


@case
def one_rank_fit_equals_native_fit():
    """fit(comm=COMM_SELF) runs per step from Python; it must train exactly as the native
    epoch (shuffle, dropout, per-step schedule, penalties)."""
    from fastbp.schedules import CosineAnnealingLR

    X, y, _ = data(n=75)
    X = X.astype(np.float32)
    out = []
    for comm in (None, MPI.COMM_SELF):
        m = fb.Sequential([fb.Dense(16, activation="relu"), fb.Dropout(0.2), fb.Dense(3)],
                          input_dim=7, seed=3)
        h = m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(lr=1e-2),
                  epochs=3, batch_size=8, schedule=CosineAnnealingLR(20), schedule_per="step",
                  comm=comm, progress=False, l2=1e-3)
        out.append((arena_bytes(m), h.history["loss"], list(m._engine.rng_state()),
                    m.steps_trained))
    return {"params_equal": out[0][0] == out[1][0], "loss": [out[0][1], out[1][1]],
            "rng": [out[0][2], out[1][2]], "steps": [out[0][3], out[1][3]]}


@case
def fit_dropout_batchnorm_identical():
    X, y, w = data(n=64 + 10 * RANK)
    m = fb.Sequential([fb.Dense(16, activation="relu"), fb.BatchNorm(), fb.Dropout(0.3),
                       fb.Dense(3)], input_dim=7, seed=RANK)
    h = m.fit(X, y, loss="softmax_cross_entropy", optimizer="adam", epochs=2, batch_size=16,
              sample_weight=w, validation_split=0.25, metrics=["accuracy"], comm=COMM,
              progress=False)
    return {"identical": dist.check_identical(m, COMM),
            "buffers": [float(b.sum()) for b in m.buffers()],
            "history": {k: v for k, v in h.history.items() if k != "time"}}


@case
def resume_from_rank0_checkpoint():
    X, y, _ = data(n=40 + 9 * RANK, seed=RANK)
    kw = {"loss": "softmax_cross_entropy", "batch_size": 8, "comm": COMM, "progress": False}
    straight = fb.Sequential([fb.Dense(16, activation="relu"), fb.Dropout(0.2), fb.Dense(3)],
                             input_dim=7, seed=5)
    straight.fit(X, y, optimizer=fb.optim.Adam(lr=1e-2), epochs=4, **kw)
    first = fb.Sequential([fb.Dense(16, activation="relu"), fb.Dropout(0.2), fb.Dense(3)],
                          input_dim=7, seed=5)
    first.fit(X, y, optimizer=fb.optim.Adam(lr=1e-2), epochs=2, **kw)
    path = COMM.bcast(tempfile.mkdtemp() if RANK == 0 else None)
    path = os.path.join(path, "m.npz")
    dist.save(first, path, COMM)
    written = os.path.exists(path)
    resumed = fb.load(path)
    resumed.fit(X, y, epochs=2, **kw)
    return {"written": written, "equal": arena_bytes(resumed) == arena_bytes(straight),
            "identical": dist.check_identical(resumed, COMM)}


def mismatch(make_model, what):
    """Build the model each rank makes; the call must raise on every rank and change
    nothing."""
    X, y, _ = data(n=20)
    m = make_model()
    before = arena_bytes(m)
    errs = {
        "train_step": raises(lambda: m.train_step(X, y, loss="softmax_cross_entropy",
                                                  optimizer="sgd", comm=COMM)),
        "fit": raises(lambda: m.fit(X if what != "empty" or RANK == 0 else X[:0],
                                    y if what != "empty" or RANK == 0 else y[:0],
                                    loss="softmax_cross_entropy", optimizer="sgd",
                                    comm=COMM, progress=False)),
    }
    return {"errors": errs, "unchanged": arena_bytes(m) == before}


@case
def dtype_differs():
    return mismatch(lambda: fb.MLP([7, 8, 3], dtype="float32" if RANK else "float64"), "dtype")


@case
def architecture_differs():
    return mismatch(lambda: fb.MLP([7, 8 + RANK, 3]), "arch")


@case
def arguments_differ():
    X, y, _ = data(n=20)
    m = fb.MLP([7, 8, 3])
    err = raises(lambda: m.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd",
                               epochs=1 + RANK, comm=COMM, progress=False))
    return {"error": err}


@case
def empty_shard():
    X, y, _ = data(n=20)
    m = fb.MLP([7, 8, 3])
    before = arena_bytes(m)
    Xr, yr = (X, y) if RANK == 0 else (X[:0], y[:0])
    return {"train_step": raises(lambda: m.train_step(Xr, yr, loss="softmax_cross_entropy",
                                                      optimizer="sgd", comm=COMM)),
            "fit": raises(lambda: m.fit(Xr, yr, loss="softmax_cross_entropy", optimizer="sgd",
                                        comm=COMM, progress=False)),
            "zero_weights": raises(lambda: m.train_step(X, y, loss="softmax_cross_entropy",
                                                        optimizer="sgd", comm=COMM,
                                                        sample_weight=np.zeros(len(X)))),
            "unchanged": arena_bytes(m) == before}


@case
def not_a_communicator():
    X, y, _ = data(n=10)
    m = fb.MLP([7, 8, 3])
    return {"train_step": raises(lambda: m.train_step(X, y, loss="softmax_cross_entropy",
                                                      optimizer="sgd", comm="world")),
            "fit": raises(lambda: m.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd",
                                        comm=MPI.COMM_WORLD.py2f())),
            "comm_self_ok": raises(lambda: m.train_step(X, y, loss="softmax_cross_entropy",
                                                        optimizer="sgd", comm=MPI.COMM_SELF))}


def main():
    only = set(sys.argv[1:])
    for fn in CASES:
        if only and fn.__name__ not in only:
            continue
        try:
            result = fn()
        except Exception:  # noqa: BLE001 -- a failed case is reported, the others still run
            result = {"crashed": traceback.format_exc()}
        everyone = COMM.gather(result, root=0)
        if RANK == 0:
            print(json.dumps({"case": fn.__name__, "rank_results": everyone}), flush=True)


if __name__ == "__main__":
    main()
