"""Data-parallel training over MPI: every rank trains the same model on its own shard.

    mpiexec -n 2 python examples/distributed.py [--epochs 20] [--out DIR] [--fast]

(As root, Open MPI also needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.)
Each rank takes every size-th row of the training digits (unequal shards when the count does
not divide), ``model.fit(..., comm=MPI.COMM_WORLD)`` averages the gradients over ranks with one
allreduce per step, rank 0 writes the checkpoint, and every rank checks that the models are
bitwise identical. Runs as a single process too (one rank).
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from mpi4py import MPI

import fastbp as fb
from fastbp import distributed
from fastbp.datasets import load_digits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32, help="per rank")
    ap.add_argument("--out", help="directory for the checkpoint (default: a temporary one)")
    ap.add_argument("--fast", action="store_true", help="few epochs (for tests)")
    args = ap.parse_args(argv)
    if args.fast:
        args.epochs = min(args.epochs, 4)
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    X, y = load_digits("float32")
    perm = np.random.default_rng(0).permutation(len(X))
    X, y = X[perm], y[perm]
    n_test = len(X) // 5
    X_test, y_test, X, y = X[:n_test], y[:n_test], X[n_test:], y[n_test:]
    X_shard, y_shard = X[rank::size], y[rank::size]  # this rank's rows

    # Every rank builds the model; rank 0's initial parameters are broadcast by fit.
    model = fb.MLP([64, 128, 10], activation="relu", seed=rank)
    history = model.fit(X_shard, y_shard, loss="softmax_cross_entropy",
                        optimizer=fb.optim.Adam(lr=3e-3), epochs=args.epochs,
                        batch_size=args.batch_size, validation_split=0.1,
                        metrics=["accuracy"], comm=comm, progress=False)
    identical = distributed.check_identical(model, comm)

    out = args.out or comm.bcast(tempfile.mkdtemp() if rank == 0 else None)
    path = os.path.join(out, "distributed.npz")
    distributed.save(model, path, comm)  # rank 0 writes; every rank returns after it
    acc = float((fb.load(path).predict(X_test).argmax(1) == y_test).mean())
    shards = comm.allgather(len(X_shard))  # collective: every rank calls it
    if rank == 0:
        print(f"{size} rank(s), shards of {shards} rows, "
              f"global batch {size * args.batch_size}, {model.steps_trained} steps")
        print(f"final loss {history['loss'][-1]:.4f}  val_accuracy "
              f"{history['val_accuracy'][-1]:.3f}  test accuracy {acc:.3f}")
        print(f"ranks identical: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
