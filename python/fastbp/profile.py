"""Per-layer profile of a training step: native engine against the NumPy reference.

The native engine runs a whole training step in one call, so the phases of one layer cannot
be timed from inside a network. Instead every layer ``i`` (``sizes[i] -> sizes[i+1]``) is
timed as a single-layer ``Sequential`` of that shape, batch and activation:

* forward  = ``predict``;
* backward = ``loss_and_gradients`` − forward − the cost of copying the gradients out
  (``loss_and_gradients`` returns copies; that copy is measured separately with NumPy and
  subtracted);
* update   = ``train_step`` − (forward + backward).

Layers after the first are built as ``[Activation("identity"), Dense]`` so that their
backward includes the input gradient ``dX = dZ·Wᵀ`` a layer inside a network computes (the
engine skips it for the first layer). Hidden layers are timed with the ``mse`` loss against
random targets (a cheap elementwise pass), the output layer with the network's loss. Each
time is the best (minimum) of ``repeats`` measurements, each a loop calibrated to last about a
millisecond (the minimum is reported: load on the machine only adds time); the whole
network's ``train_step`` is timed the same way.

GFLOP/s counts the matrix products only: forward ``2·B·in·out``, backward ``2·B·in·out``
for ``dW`` plus ``2·B·in·out`` for ``dX`` (layers after the first). The largest absolute
differences compare the two backends from the same initial parameters: outputs of
``predict``, gradients of ``loss_and_gradients`` and parameters after one ``train_step``.

Use it through the command line: ``fastbp profile --sizes 784,256,256,10 ...``.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TypedDict

import numpy as np

__all__ = ["profile_network", "format_table", "plot_profile", "METHOD"]

METHOD = (
    "Per-layer phases are timed on single-layer models of each layer's shape: forward = "
    "predict; backward = loss_and_gradients - forward - gradient copy-out; update = "
    "train_step - loss_and_gradients (without the copy). Layers after the first include "
    "dX = dZ W^T. Best of the repeats. GFLOP/s counts the GEMMs only.")

PHASES = ("forward", "backward", "update")


def _timeit(fn: Callable[[], Any], repeats: int, target: float = 1e-3) -> float:
    """Seconds per call of ``fn``: the best (minimum) of ``repeats`` loops of about ``target``
    seconds each (interference from other processes only ever adds time)."""
    fn()  # warm-up: the first call at a batch size allocates the workspace
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, min(10000, int(target / one)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return float(np.min(times))


def _targets(loss: str, batch: int, out: int, dtype: str, rng: np.random.Generator) -> np.ndarray:
    if loss == "softmax_cross_entropy":
        return rng.integers(0, out, batch).astype(np.int64)
    if loss == "binary_cross_entropy":
        return (rng.random((batch, out)) < 0.5).astype(dtype)
    return rng.standard_normal((batch, out)).astype(dtype)


def _layer_model(fb: Any, n_in: int, n_out: int, activation: str, first: bool, dtype: str,
                 seed: int, backend: str):
    layers = [fb.Dense(n_out, activation=activation)]
    if not first:
        layers.insert(0, fb.Activation("identity"))
    return fb.Sequential(layers, input_dim=n_in, dtype=dtype, seed=seed, backend=backend)


def _max_abs(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    return float(max(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))
                     for x, y in zip(a, b)))


def _phase_times(model: Any, X: np.ndarray, y: np.ndarray, loss: str, opt: Any,
                 repeats: int) -> Dict[str, float]:
    t_fwd = _timeit(lambda: model.predict(X), repeats)
    t_lg = _timeit(lambda: model.loss_and_gradients(X, y, loss=loss), repeats)
    t_step = _timeit(lambda: model.train_step(X, y, loss=loss, optimizer=opt), repeats)
    params = [np.empty_like(p) for p in model.parameters()]
    t_copy = _timeit(lambda: [p.copy() for p in params], repeats)
    backward = max(t_lg - t_copy - t_fwd, 0.0)
    update = max(t_step - (t_lg - t_copy), 0.0)
    return {"forward": t_fwd, "backward": backward, "update": update,
            "loss_and_gradients": t_lg, "train_step": t_step, "gradient_copy": t_copy}


def profile_network(sizes: Sequence[int], activation: str = "relu", batch: int = 128,
                    optimizer: str = "adam", dtype: str = "float32", threads: Optional[int] = None,
                    loss: str = "softmax_cross_entropy", repeats: int = 5, seed: int = 0,
                    compare: Sequence[str] = (), reference: bool = True) -> Dict[str, Any]:
    """Profile the training step of ``MLP(sizes)`` layer by layer, native against reference.

    Parameters
    ----------
    sizes : sequence of int
        Widths, input first: ``[784, 256, 256, 10]``.
    activation : str
        Hidden activation (the output layer is the identity: losses take logits).
    batch : int
        Mini-batch size.
    optimizer : str
        A ``fastbp.optim`` name with its default hyper-parameters (``"adam"``, ``"sgd"``, ...).
    dtype : {"float32", "float64"}
    threads : int, optional
        Threads of the native engine (default: unchanged).
    loss : str
        Loss of the output layer.
    repeats : int
        Measurements per time (the minimum is reported).
    seed : int
        Seeds parameters and data.
    compare : sequence of str
        ``"torch"`` and/or ``"jax"``: also time the whole step in PyTorch eager / JAX jit when
        installed (a note otherwise).
    reference : bool
        Also time the NumPy reference (and the differences); off for a quick native-only run.

    Returns
    -------
    dict
        ``config``, ``layers`` (per layer: shape, flops, times per backend and phase, GFLOP/s,
        speed-up, largest absolute differences), ``network`` (whole-step times) and ``method``.
    """
    import fastbp as fb
    from fastbp import optim

    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes needs at least two positive widths, got {sizes!r}")
    if isinstance(batch, bool) or int(batch) < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    optim.get(optimizer)  # validates the name
    before_threads = fb.get_num_threads()
    if threads is not None:
        fb.set_num_threads(int(threads))
    backends = ["native"] + (["reference"] if reference else [])
    rng = np.random.default_rng(seed)
    run = _Run(activation=activation, batch=batch, optimizer=optimizer, dtype=dtype,
               seed=seed, repeats=repeats, backends=backends)
    try:
        layers = [_profile_layer(i, sizes, loss, rng, **run) for i in range(len(sizes) - 1)]
        network = _profile_step(sizes, loss, rng, compare, threads, **run)
    finally:
        fb.set_num_threads(before_threads)
    config = {"sizes": sizes, "activation": activation, "batch": int(batch),
              "optimizer": optimizer, "dtype": dtype,
              "threads": int(threads) if threads is not None else before_threads, "loss": loss,
              "repeats": int(repeats), "seed": seed, "isa": fb.get_isa(),
              "version": fb.__version__}
    return {"config": config, "layers": layers, "network": network, "method": METHOD}


class _Run(TypedDict):
    """The keyword arguments of a profile run shared by _profile_layer and _profile_step."""

    activation: str
    batch: int
    optimizer: str
    dtype: str
    seed: int
    repeats: int
    backends: List[str]


def _profile_layer(i: int, sizes: List[int], loss: str, rng: np.random.Generator, *,
                   activation: str, batch: int, optimizer: str, dtype: str, seed: int,
                   repeats: int, backends: List[str]) -> Dict[str, Any]:
    """Layer ``i`` alone: phase times per backend, GFLOP/s, speed-up, differences."""
    import fastbp as fb
    from fastbp import optim

    n_in, n_out = sizes[i], sizes[i + 1]
    last = i == len(sizes) - 2
    act = "identity" if last else activation
    layer_loss = loss if last else "mse"
    X = rng.standard_normal((batch, n_in)).astype(dtype)
    y = _targets(layer_loss, batch, n_out, dtype, rng)
    mm = 2.0 * batch * n_in * n_out
    flops = {"forward": mm, "backward": mm * (1 if i == 0 else 2)}
    row: Dict[str, Any] = {"layer": i + 1, "in": n_in, "out": n_out, "activation": act,
                           "loss": layer_loss, "flops": flops, "times": {}, "gflops": {}}
    models = {b: _layer_model(fb, n_in, n_out, act, i == 0, dtype, seed, b) for b in backends}
    if "reference" in backends:
        row["max_abs_diff"] = _differences(models["native"], models["reference"], X, y,
                                           layer_loss, optimizer)
    for b in backends:
        t = _phase_times(models[b], X, y, layer_loss, optim.get(optimizer), repeats)
        row["times"][b] = t
        row["gflops"][b] = {ph: (flops[ph] / t[ph] / 1e9 if t[ph] > 0 else None)
                            for ph in ("forward", "backward")}
    if "reference" in backends:
        row["speedup"] = {ph: (row["times"]["reference"][ph] / row["times"]["native"][ph]
                               if row["times"]["native"][ph] > 0 else None) for ph in PHASES}
    return row


def _differences(nat: Any, ref: Any, X: np.ndarray, y: np.ndarray, loss: str,
                 optimizer: str) -> Dict[str, float]:
    """Largest absolute native-reference differences: outputs, gradients, one step."""
    from fastbp import optim

    _, g_n = nat.loss_and_gradients(X, y, loss=loss)
    _, g_r = ref.loss_and_gradients(X, y, loss=loss)
    o_n, o_r = nat.predict(X), ref.predict(X)
    nat.train_step(X, y, loss=loss, optimizer=optim.get(optimizer))
    ref.train_step(X, y, loss=loss, optimizer=optim.get(optimizer))
    return {"output": _max_abs([o_n], [o_r]), "gradients": _max_abs(g_n, g_r),
            "parameters_after_step": _max_abs(nat.parameters(), ref.parameters())}


def _profile_step(sizes: List[int], loss: str, rng: np.random.Generator,
                  compare: Sequence[str], threads: Optional[int], *, activation: str,
                  batch: int, optimizer: str, dtype: str, seed: int, repeats: int,
                  backends: List[str]) -> Dict[str, Any]:
    """The whole network's train_step per backend, and PyTorch / JAX when asked."""
    import fastbp as fb
    from fastbp import optim

    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = _targets(loss, batch, sizes[-1], dtype, rng)
    network: Dict[str, Any] = {"step": {}, "notes": []}
    if "reference" in backends:
        network["notes"].append("--threads sets the native engine's threads; the reference "
                                "runs on NumPy's BLAS with its own thread count")
    for b in backends:
        m = fb.MLP(sizes, activation=activation, dtype=dtype, seed=seed, backend=b)
        opt = optim.get(optimizer)
        network["step"][b] = _timeit(
            functools.partial(m.train_step, X, y, loss=loss, optimizer=opt), repeats)
    total = 2.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    network["flops"] = 3.0 * total - 2.0 * batch * sizes[0] * sizes[1]
    for name in (c.strip().lower() for c in compare):
        if name:
            _compare_step(network, name, sizes, activation, dtype, seed, X, y, loss, optimizer,
                          repeats, threads)
    nat = network["step"]["native"]
    network["speedup"] = {k: v / nat for k, v in network["step"].items() if k != "native"}
    network["gflops"] = {k: network["flops"] / v / 1e9 for k, v in network["step"].items()}
    return network


def _compare_step(network: Dict[str, Any], name: str, *args: Any) -> None:
    """Time the step in framework ``name`` (torch or jax) into ``network``, or note why not."""
    fn = {"torch": _torch_step, "jax": _jax_step}.get(name)
    if fn is None:
        network["notes"].append(f"--compare: unknown framework {name!r} (torch, jax)")
        return
    try:
        t, note = fn(*args)
    except ImportError as exc:
        network["notes"].append(f"{name} is not installed ({exc.name or exc}): skipped")
        return
    network["step"][name] = t
    if note:
        network["notes"].append(note)


# ---------------------------------------------------------------------------- other frameworks
_TORCH_ACT = {"identity": None, "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU",
              "leaky_relu": "LeakyReLU", "elu": "ELU", "gelu": "GELU", "silu": "SiLU",
              "softplus": "Softplus"}


def _torch_step(sizes, activation, dtype, seed, X, y, loss, optimizer, repeats, threads):
    import torch

    import fastbp as fb

    # the same thread count as the native engine, for a like-for-like comparison
    torch.set_num_threads(int(threads) if threads is not None else fb.get_num_threads())
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    ref = fb.MLP(sizes, activation=activation, dtype=dtype, seed=seed, backend="reference")
    mods: List[Any] = []
    params = ref.parameters()
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1], dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(params[2 * i].T)))
            lin.bias.copy_(torch.from_numpy(params[2 * i + 1]))
        mods.append(lin)
        if i < len(sizes) - 2 and _TORCH_ACT[activation]:
            mods.append(getattr(torch.nn, str(_TORCH_ACT[activation]))())
    net = torch.nn.Sequential(*mods)
    loss_fn = {"mse": torch.nn.MSELoss(), "mae": torch.nn.L1Loss(), "huber": torch.nn.HuberLoss(),
               "binary_cross_entropy": torch.nn.BCEWithLogitsLoss(),
               "softmax_cross_entropy": torch.nn.CrossEntropyLoss()}[loss]
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[optimizer]
    kw = {"lr": 1e-3} if optimizer == "sgd" else {}
    opt = opt_cls(net.parameters(), **kw)
    xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)

    def step():
        opt.zero_grad(set_to_none=True)
        out = loss_fn(net(xt), yt)
        out.backward()
        opt.step()
        return out

    return _timeit(step, repeats), f"torch {torch.__version__} eager, {torch.get_num_threads()} thread(s)"


def _jax_step(sizes, activation, dtype, seed, X, y, loss, optimizer, repeats, threads):
    import jax
    import jax.numpy as jnp

    import fastbp as fb

    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)
    acts = {"identity": lambda z: z, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
            "relu": jax.nn.relu, "leaky_relu": lambda z: jax.nn.leaky_relu(z, 0.01),
            "elu": jax.nn.elu, "gelu": lambda z: jax.nn.gelu(z, approximate=False),
            "silu": jax.nn.silu, "softplus": jax.nn.softplus}
    f = acts[activation]
    ref = fb.MLP(sizes, activation=activation, dtype=dtype, seed=seed, backend="reference")
    params = [jnp.asarray(p) for p in ref.parameters()]

    def forward(ps, x):
        for i in range(0, len(ps), 2):
            x = x @ ps[i] + ps[i + 1]
            if i < len(ps) - 2:
                x = f(x)
        return x

    def loss_fn(ps, x, t):
        z = forward(ps, x)
        if loss == "softmax_cross_entropy":
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), t[:, None], 1))
        if loss == "binary_cross_entropy":
            return jnp.mean(jnp.logaddexp(0.0, z) - t * z)
        d = z - t
        if loss == "mse":
            return jnp.mean(d * d)
        if loss == "mae":
            return jnp.mean(jnp.abs(d))
        a = jnp.abs(d)
        return jnp.mean(jnp.where(a < 1.0, 0.5 * d * d, a - 0.5))

    # torch.optim defaults for each optimizer
    lr = {"sgd": 1e-3, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2, "adagrad": 1e-2}[optimizer]

    def update(ps, state, g):
        step = state["step"] + 1
        if optimizer == "sgd":
            return [p - lr * gi for p, gi in zip(ps, g)], dict(state, step=step)
        if optimizer in ("adam", "adamw"):
            b1, b2, eps = 0.9, 0.999, 1e-8
            m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(state["m"], g)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(state["v"], g)]
            c1, c2 = 1 - b1 ** step, 1 - b2 ** step
            if optimizer == "adamw":
                ps = [p * (1 - lr * 1e-2) for p in ps]
            new = [p - lr * (mi / c1) / (jnp.sqrt(vi / c2) + eps) for p, mi, vi in zip(ps, m, v)]
            return new, dict(state, step=step, m=m, v=v)
        if optimizer == "rmsprop":
            v = [0.99 * vi + 0.01 * gi * gi for vi, gi in zip(state["v"], g)]
            return ([p - lr * gi / (jnp.sqrt(vi) + 1e-8) for p, gi, vi in zip(ps, g, v)],
                    dict(state, step=step, v=v))
        s = [si + gi * gi for si, gi in zip(state["v"], g)]
        return ([p - lr * gi / (jnp.sqrt(si) + 1e-10) for p, gi, si in zip(ps, g, s)],
                dict(state, step=step, v=s))

    @jax.jit
    def train_step(ps, state, x, t):
        val, g = jax.value_and_grad(loss_fn)(ps, x, t)
        ps, state = update(ps, state, g)
        return ps, state, val

    zeros = [jnp.zeros_like(p) for p in params]
    holder = {"ps": params, "state": {"step": jnp.asarray(0, jnp.int32), "m": zeros,
                                      "v": list(zeros)}}
    xj = jnp.asarray(X)
    yj = jnp.asarray(y.astype(np.int32) if y.dtype.kind == "i" else y)

    def step():
        ps, st, val = train_step(holder["ps"], holder["state"], xj, yj)
        val.block_until_ready()
        holder["ps"], holder["state"] = ps, st

    note = f"jax {jax.__version__} jit on {jax.default_backend()} (XLA picks its own threads)"
    return _timeit(step, repeats), note


# ---------------------------------------------------------------------------- output
def _us(t: Optional[float]) -> str:
    return "-" if t is None else f"{t * 1e6:,.1f}"


def _num(v: Optional[float], fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def format_table(result: Dict[str, Any]) -> str:
    """The profile as a plain-text table (what ``fastbp profile`` prints)."""
    c = result["config"]
    has_ref = any("reference" in r["times"] for r in result["layers"])
    lines = [f"fastbp {c['version']} profile: sizes={','.join(map(str, c['sizes']))} "
             f"activation={c['activation']} batch={c['batch']} optimizer={c['optimizer']} "
             f"dtype={c['dtype']} loss={c['loss']} threads={c['threads']} isa={c['isa']} "
             f"repeats={c['repeats']}", ""]
    head = f"{'layer':<18}{'phase':<9}{'native us':>11}{'GFLOP/s':>9}"
    if has_ref:
        head += f"{'ref us':>12}{'GFLOP/s':>9}{'speed-up':>10}  max|native-ref|"
    lines += [head, "-" * len(head)]
    diff_key = {"forward": "output", "backward": "gradients", "update": "parameters_after_step"}
    for r in result["layers"]:
        name = f"{r['layer']}: {r['in']}->{r['out']} {r['activation'][:5]}"
        for j, ph in enumerate(PHASES):
            tn = r["times"]["native"][ph]
            s = f"{name if j == 0 else '':<18}{ph:<9}{_us(tn):>11}"
            s += f"{_num(r['gflops']['native'].get(ph), '{:.1f}'):>9}"
            if has_ref:
                tr = r["times"]["reference"][ph]
                s += f"{_us(tr):>12}{_num(r['gflops']['reference'].get(ph), '{:.1f}'):>9}"
                sp = r["speedup"][ph]
                s += f"{_num(sp, '{:.1f}x'):>10}  {r['max_abs_diff'][diff_key[ph]]:.2e}"
                s += f" ({diff_key[ph].replace('_', ' ')})"
            lines.append(s)
    n = result["network"]
    lines += ["", "whole network, one train_step:"]
    for k, v in n["step"].items():
        extra = "" if k == "native" else f"   native is {n['speedup'][k]:.1f}x faster"
        lines.append(f"  {k:<10}{_us(v):>12} us  {n['gflops'][k]:8.1f} GFLOP/s{extra}")
    sum_nat = sum(r["times"]["native"][ph] for r in result["layers"] for ph in PHASES)
    lines.append(f"  (sum of the native per-layer phases: {_us(sum_nat)} us)")
    for note in n["notes"]:
        lines.append(f"  note: {note}")
    if any(r["times"][b][ph] <= 0 for r in result["layers"] for b in r["times"] for ph in PHASES):
        lines.append("  note: a phase shown as 0.0 was below the timing noise (a difference of "
                     "two measured times); rerun with more --repeats on a quiet machine")
    lines += ["", "method: " + result["method"]]
    return "\n".join(lines)


def plot_profile(result: Dict[str, Any], path: str) -> None:
    """Bar chart per layer and phase, native against reference (log scale), saved to ``path``.

    Needs matplotlib (imported here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["layers"]
    backends = [b for b in ("native", "reference") if b in rows[0]["times"]]
    colors = {"forward": "#1f77b4", "backward": "#ff7f0e", "update": "#2ca02c"}
    width = 0.8 / (len(PHASES) * len(backends))
    fig, ax = plt.subplots(figsize=(max(7.0, 2.2 * len(rows) + 2), 5.0))
    x = np.arange(len(rows))
    k = 0
    for ph in PHASES:
        for b in backends:
            # a phase measured as zero (below the timing noise) gets no bar
            vals = [r["times"][b][ph] * 1e6 if r["times"][b][ph] > 0 else np.nan for r in rows]
            off = (k - (len(PHASES) * len(backends) - 1) / 2) * width
            bars = ax.bar(x + off, vals, width, color=colors[ph],
                          alpha=1.0 if b == "native" else 0.45,
                          hatch=None if b == "native" else "//", edgecolor="black", linewidth=0.5,
                          label=f"{ph} ({b})")
            for bar, v in zip(bars, vals):
                if not np.isfinite(v):
                    ax.annotate("n/a", (bar.get_x() + bar.get_width() / 2, 0), xytext=(0, 3),
                                xycoords=("data", "axes fraction"), textcoords="offset points",
                                ha="center", va="bottom", fontsize=7, rotation=90)
            if b == "native" and "speedup" in rows[0]:
                for bar, r in zip(bars, rows):
                    sp = r["speedup"][ph]
                    if sp and np.isfinite(bar.get_height()):
                        ax.annotate(f"{sp:.0f}x" if sp >= 10 else f"{sp:.1f}x",
                                    (bar.get_x() + bar.get_width(), bar.get_height()),
                                    xytext=(0, 2), textcoords="offset points", ha="center",
                                    va="bottom", fontsize=7)
            k += 1
    ax.set_yscale("log")
    positive = [r["times"][b][ph] * 1e6 for r in rows for b in backends for ph in PHASES
                if r["times"][b][ph] > 0]
    if positive:
        ax.set_ylim(min(positive) / 3, max(positive) * 3)
    ax.set_xticks(x)
    ax.set_xticklabels([f"layer {r['layer']}\n{r['in']}→{r['out']} {r['activation']}"
                        for r in rows])
    ax.set_ylabel("time per call (µs, log scale)")
    c = result["config"]
    ax.set_title(f"fastbp per-layer training step: batch {c['batch']}, {c['optimizer']}, "
                 f"{c['dtype']}, {c['threads']} thread{'s' if c['threads'] != 1 else ''}, {c['isa']}\n"
                 "labels: speed-up of native over reference; n/a: below the timing noise",
                 fontsize=10)
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(ncol=len(PHASES), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
