"""Many models at once: fastbp's Ensemble and GridSearchCV against their alternatives.

Usage:
    python bench/bench_ensemble.py [--parts models,grid] [--ks 1,4,16,64] [--epochs 3]
                                   [--repeats 3] [--threads 2] [--frameworks fastbp,torch,jax]
                                   [--timer wall|cpu] [--quick] [--json out.json]

models: K digits-size models (64-128-10, relu, softmax cross-entropy, Adam, batch 32, float32,
    1792 digits rows = 56 full batches per epoch) trained for --epochs epochs by
    - fastbp ``Ensemble`` (one native call per epoch for all K; a different lr per model),
    - K sequential fastbp fits (``MLP.fit``, one model after the other),
    - PyTorch ``torch.func.stack_module_state`` + ``vmap`` (one lr; a Python loop per step),
    - PyTorch: the first 8 steps of every epoch, scaled to the epoch's 56 (it is slow);
    - JAX ``vmap``, two forms (one lr; compile excluded): ``jax-vmap-scan`` jits the vmapped
      whole epoch (``lax.scan`` over the steps, JAX's best case), ``jax-vmap-step`` calls a
      jitted, vmapped step from a Python loop (the common way to write it).
    Every model draws its own shuffle each epoch. Reported: seconds per epoch of all K models.
grid: the 32-fit digits grid (4 learning rates x 2 alphas x 4 folds, 20 epochs, 128 hidden
    units, batch 32): fastbp's GridSearchCV vs scikit-learn's GridSearchCV over the same fastbp
    MLPClassifier (dtype float32; n_jobs=1) and over scikit-learn's MLPClassifier (n_jobs=2).
    The two searches over fastbp's estimator are checked to give the same cv_results_ scores.

With --timer cpu the figures are CPU seconds of this process (all its threads; scikit-learn's
n_jobs=2 workers are other processes and are not counted): on a machine shared with other
work, this shows the work each contender does, which wall time no longer does.

Timings are medians of --repeats runs, the contenders interleaved within each repeat (so a
machine whose load changes affects them alike). The report names the CPU and the ISA.
"""
import argparse
import json
import sys
import time
import warnings

import numpy as np

from fastbp_bench.harness import cpu_model

SIZES = (64, 128, 10)
BATCH = 32
CLOCK = time.perf_counter  # --timer cpu: time.process_time (CPU seconds of all threads)
TORCH_STEPS = 8  # torch: the first steps of each epoch, scaled to a whole epoch


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)



# ------------------------------------------------------------------------------ K models
def fastbp_ensemble(X, y, k, epochs):
    import fastbp as fb

    ens = fb.Ensemble(list(SIZES), n_models=k, seeds=range(k), dtype="float32")
    lrs = list(np.geomspace(1e-4, 1e-2, k)) if k > 1 else [1e-3]
    opt = fb.optim.Adam(lr=lrs)
    t0 = CLOCK()
    ens.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=epochs, batch_size=BATCH)
    return (CLOCK() - t0) / epochs


def fastbp_sequential(X, y, k, epochs):
    import fastbp as fb

    models = [fb.MLP(list(SIZES), seed=i, dtype="float32") for i in range(k)]
    t0 = CLOCK()
    for m in models:
        m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(lr=1e-3),
              epochs=epochs, batch_size=BATCH, progress=False, grad_norm=False)
    return (CLOCK() - t0) / epochs


def torch_vmap(X, y, k, epochs):
    import torch
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(),
                                torch.nn.Linear(SIZES[1], SIZES[2])) for _ in range(k)]
    params, _ = stack_module_state(nets)
    base = nets[0].to("meta")

    def loss_fn(p, xb, yb):
        out = functional_call(base, (p,), (xb,))
        return torch.nn.functional.cross_entropy(out, yb)

    step = vmap(grad_and_value(loss_fn))
    opt = torch.optim.Adam(list(params.values()), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n = X.shape[0]
    gen = torch.Generator().manual_seed(0)
    steps = min(n // BATCH, TORCH_STEPS)
    t0 = CLOCK()
    for _ in range(epochs):
        perm = torch.stack([torch.randperm(n, generator=gen) for _ in range(k)])
        for s in range(steps):
            idx = perm[:, s * BATCH:(s + 1) * BATCH]
            grads, _ = step(params, Xt[idx], yt[idx])
            for name, p in params.items():
                p.grad = grads[name]
            opt.step()
    return (CLOCK() - t0) / epochs * (n // BATCH) / steps


def jax_vmap(X, y, k, epochs, per_step=False):
    import jax
    import jax.numpy as jnp

    n = X.shape[0]
    steps = n // BATCH
    key = jax.random.PRNGKey(0)

    def init(key):
        k1, k2 = jax.random.split(key)
        lim1, lim2 = 1 / np.sqrt(SIZES[0]), 1 / np.sqrt(SIZES[1])
        return {"W1": jax.random.uniform(k1, SIZES[:2], minval=-lim1, maxval=lim1),
                "b1": jnp.zeros(SIZES[1]),
                "W2": jax.random.uniform(k2, SIZES[1:], minval=-lim2, maxval=lim2),
                "b2": jnp.zeros(SIZES[2])}

    def loss_fn(p, xb, yb):
        h = jax.nn.relu(xb @ p["W1"] + p["b1"])
        logits = h @ p["W2"] + p["b2"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], 1))

    def adam_step(carry, batch):
        p, m, v, t = carry
        xb, yb = batch
        g = jax.grad(loss_fn)(p, xb, yb)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        p = jax.tree_util.tree_map(
            lambda w, a, b: w - 1e-3 * (a / c1) / (jnp.sqrt(b / c2) + 1e-8), p, m, v)
        return (p, m, v, t), None

    def epoch(state, Xp, yp):
        state, _ = jax.lax.scan(adam_step, state, (Xp, yp))
        return state

    if per_step:
        step = jax.jit(jax.vmap(adam_step))

        def epoch(state, Xp, yp):
            for s in range(steps):
                state, _ = step(state, (Xp[:, s], yp[:, s]))
            return state

        run = epoch
    else:
        run = jax.jit(jax.vmap(epoch))
    params = jax.vmap(init)(jax.random.split(key, k))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, zeros, jnp.zeros(k))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def batches(e):
        keys = jax.random.split(jax.random.PRNGKey(e + 1), k)
        perms = jax.vmap(lambda kk: jax.random.permutation(kk, n)[:steps * BATCH])(keys)
        idx = perms.reshape(k, steps, BATCH)
        return Xj[idx], yj[idx]

    jax.block_until_ready(run(state, *batches(0)))  # compile
    t0 = CLOCK()
    for e in range(epochs):
        state = run(state, *batches(e))
    jax.block_until_ready(state)
    return (CLOCK() - t0) / epochs


def jax_vmap_step(X, y, k, epochs):
    return jax_vmap(X, y, k, epochs, per_step=True)


MODEL_RUNNERS = {"fastbp-ensemble": fastbp_ensemble, "fastbp-sequential": fastbp_sequential,
                 "torch-vmap": torch_vmap, "jax-vmap-scan": jax_vmap,
                 "jax-vmap-step": jax_vmap_step}


def bench_models(ks, epochs, repeats, frameworks, n_rows):
    X, y = _digits()
    X, y = X[:n_rows], y[:n_rows]
    names = [n for n in MODEL_RUNNERS if n.split("-")[0] in frameworks]
    rows = []
    for n in names:  # imports, first allocations, tracing: not timed
        MODEL_RUNNERS[n](X, y, 2, 1)
    for k in ks:
        times = {n: [] for n in names}
        for _ in range(repeats):
            for n in names:
                times[n].append(MODEL_RUNNERS[n](X, y, k, epochs))
        med = {n: float(np.median(v)) for n, v in times.items()}
        rows.append({"k": k, "seconds_per_epoch": med})
        print(f"K={k:3d}  " + "  ".join(f"{n} {v * 1e3:8.1f} ms" for n, v in med.items()),
              flush=True)
    return rows


# ------------------------------------------------------------------------------ the grid
def bench_grid(repeats, frameworks, max_iter, folds):
    from sklearn.model_selection import GridSearchCV as SkGrid
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastbp.sklearn import GridSearchCV, MLPClassifier

    X, y = _digits()
    X = X.astype(np.float64)
    grid = {"learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2], "alpha": [1e-4, 1e-2]}
    common = {"hidden_layer_sizes": (128,), "max_iter": max_iter, "batch_size": BATCH,
                  "random_state": 0}
    fb_est = MLPClassifier(dtype="float32", **common)
    runs = {"fastbp GridSearchCV": lambda: GridSearchCV(fb_est, grid, cv=folds),
            "sklearn GridSearchCV(fastbp MLP)": lambda: SkGrid(fb_est, grid, cv=folds),
            "sklearn GridSearchCV(sklearn MLP, n_jobs=2)":
                lambda: SkGrid(SkMLP(**common), grid, cv=folds, n_jobs=2)}
    if "sklearn" not in frameworks:
        runs.pop("sklearn GridSearchCV(sklearn MLP, n_jobs=2)")
    times = {n: [] for n in runs}
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            for name, make in runs.items():
                t0 = CLOCK()
                results[name] = make().fit(X, y)
                times[name].append(CLOCK() - t0)
    a = results["fastbp GridSearchCV"].cv_results_
    b = results["sklearn GridSearchCV(fastbp MLP)"].cv_results_
    same = all(np.array_equal(a[key], b[key]) for key in a
               if key.startswith(("split", "mean_test")))
    med = {n: float(np.median(v)) for n, v in times.items()}
    ours = med["fastbp GridSearchCV"]
    for n, v in med.items():
        print(f"{n:45s} {v:7.2f} s   x{v / ours:5.2f} of fastbp's", flush=True)
    print(f"same cv_results_ scores as scikit-learn's search over fastbp's estimator: {same}")
    return {"seconds": med, "same_scores": bool(same), "fits": 8 * folds, "epochs": max_iter}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="models,grid")
    ap.add_argument("--ks", default="1,4,16,64")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frameworks", default="fastbp,torch,jax,sklearn")
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="cpu: CPU seconds of the process (all threads) instead of wall time")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.timer == "cpu" else time.perf_counter
    import fastbp as fb

    fb.set_num_threads(args.threads)
    frameworks = args.frameworks.split(",")
    if "torch" in frameworks:
        import torch

        torch.set_num_threads(args.threads)
    report = {"cpu": cpu_model(), "isa": fb.get_isa(), "threads": args.threads,
              "timer": args.timer,
              "python": sys.version.split()[0]}
    print(f"CPU {report['cpu']}, ISA {report['isa']}, {args.threads} threads, "
          f"{args.timer} time")
    ks = [int(k) for k in args.ks.split(",")]
    if args.quick:
        ks, args.epochs, args.repeats = [1, 2], 1, 1
    if "models" in args.parts:
        report["models"] = bench_models(ks, args.epochs, args.repeats, frameworks,
                                        256 if args.quick else 1792)
    if "grid" in args.parts:
        report["grid"] = bench_grid(args.repeats, frameworks, 2 if args.quick else 20,
                                    2 if args.quick else 4)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
