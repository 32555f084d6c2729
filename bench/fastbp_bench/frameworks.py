"""The benchmark configurations and one runner per framework.

A runner builds the same network (same widths, activations, loss, Adam with torch's defaults,
float32) in its framework on seeded synthetic data and exposes two callables:

``step()``
    one Adam training step on a fixed batch, returning the loss as a Python float (each
    framework does the same work: forward, loss, backward, update, loss to the host);
``epoch()``
    one epoch over N samples (N a multiple of the batch) of shuffled mini-batches, the way a
    user of that framework trains: fastbp ``model.fit(epochs=1)``; PyTorch a standard
    ``randperm`` + index + step loop; JAX one jitted ``lax.scan`` over the epoch's batches
    (shuffle on device) - the fastest idiomatic JAX epoch.

torch and jax are imported inside their runners only, so fastbp-only runs need NumPy alone.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

__all__ = ["Config", "CONFIGS", "FRAMEWORKS", "TORCH_ACTS", "make_runner", "available",
           "gemm_shapes"]

LR = 1e-3  # Adam with torch.optim.Adam's defaults everywhere (betas 0.9/0.999, eps 1e-8)


@dataclass(frozen=True)
class Config:
    """One benchmark network: widths, hidden/output activations, batch, loss, epoch length."""

    name: str
    sizes: Tuple[int, ...]
    activation: str
    output_activation: str
    batch: int
    loss: str                    # "mse" or "softmax_cross_entropy"
    fit_steps: int               # mini-batches per fit epoch (N = fit_steps * batch)

    @property
    def n_fit(self) -> int:
        return self.fit_steps * self.batch

    @property
    def label(self) -> str:
        return "-".join(str(s) for s in self.sizes)

    def flops_per_step(self) -> float:
        """GEMM flops of one training step: forward x.W, backward dz.W^T (not for the first
        layer's input) and x^T.dz."""
        f = 0.0
        for i, (k, n) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            f += 2.0 * self.batch * k * n * (2 if i == 0 else 3)
        return f

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        d["n_fit"] = self.n_fit
        d["label"] = self.label
        d["flops_per_step"] = self.flops_per_step()
        return d


CONFIGS: Dict[str, Config] = {
    "xor": Config("xor", (2, 4, 1), "sigmoid", "sigmoid", 4, "mse", fit_steps=256),
    "digits": Config("digits", (64, 128, 10), "relu", "identity", 32, "softmax_cross_entropy",
                     fit_steps=128),
    "mnist": Config("mnist", (784, 256, 256, 10), "relu", "identity", 128,
                    "softmax_cross_entropy", fit_steps=16),
    "wide": Config("wide", (1024, 2048, 2048, 10), "relu", "identity", 256,
                   "softmax_cross_entropy", fit_steps=4),
    "tanh": Config("tanh", (32, 64, 64, 64, 64, 64, 1), "tanh", "identity", 64, "mse",
                   fit_steps=64),
    "gelu": Config("gelu", (16, 256, 256, 256, 4), "gelu", "identity", 128, "mse",
                   fit_steps=32),
    "silu": Config("silu", (100, 512, 256, 2), "silu", "identity", 256, "softmax_cross_entropy",
                   fit_steps=16),
    "online": Config("online", (256, 512, 10), "relu", "identity", 1, "softmax_cross_entropy",
                     fit_steps=256),
}

# torch.nn module and jax.nn function of each activation (torch's formulas: exact GELU).
TORCH_ACTS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "leaky_relu": "LeakyReLU",
              "elu": "ELU", "gelu": "GELU", "silu": "SiLU", "softplus": "Softplus",
              "mish": "Mish", "hardswish": "Hardswish"}


def _jax_act(jax: Any, name: str) -> Callable[[Any], Any]:
    import jax.numpy as jnp

    table = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
             "identity": lambda z: z, "leaky_relu": lambda z: jax.nn.leaky_relu(z, 0.01),
             "elu": jax.nn.elu, "gelu": lambda z: jax.nn.gelu(z, approximate=False),
             "silu": jax.nn.silu, "softplus": jax.nn.softplus,
             "mish": lambda z: z * jnp.tanh(jax.nn.softplus(z)), "hardswish": jax.nn.hard_swish}
    return table[name]

FRAMEWORKS = ("native", "reference", "torch", "jax")


def gemm_shapes(cfg: Config) -> List[Dict[str, Any]]:
    """The three GEMMs of each dense layer (rows M, inner K, columns N of C = op(A).op(B)).

    fwd  z = x.W        (batch, in) x (in, out)
    dx   dx = dz.W^T    (batch, out) x (out, in), W stored (in, out): transb
    dW   dW = x^T.dz    (in, batch) x (batch, out), x stored (batch, in): transa
    """
    out = []
    b = cfg.batch
    for li, (k, n) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
        tag = f"{cfg.name} L{li + 1}"
        out.append(dict(case=f"{tag} fwd x.W", kind="fwd", M=b, K=k, N=n, transa=False,
                        transb=False, batch=b))
        out.append(dict(case=f"{tag} dx=dz.Wt", kind="dx", M=b, K=n, N=k, transa=False,
                        transb=True, batch=b))
        out.append(dict(case=f"{tag} dW=xt.dz", kind="dW", M=k, K=b, N=n, transa=True,
                        transb=False, batch=b))
    return out


def make_data(cfg: Config, n: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic data of the config's shapes: X float32 (n, in); y float32 (n, out)
    targets in [0, 1] for mse (XOR truth table tiled for 2-input xor), int64 labels otherwise."""
    rng = np.random.default_rng(seed)
    k, c = cfg.sizes[0], cfg.sizes[-1]
    if cfg.loss == "mse":
        if k == 2 and c == 1:
            base_x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
            base_y = np.array([[0], [1], [1], [0]], np.float32)
            reps = -(-n // 4)
            X = np.tile(base_x, (reps, 1))[:n]
            y = np.tile(base_y, (reps, 1))[:n]
            return np.ascontiguousarray(X), np.ascontiguousarray(y)
        X = rng.standard_normal((n, k)).astype(np.float32)
        y = rng.random((n, c)).astype(np.float32)
        return X, y
    X = rng.standard_normal((n, k)).astype(np.float32)
    y = rng.integers(0, c, size=n).astype(np.int64)
    return X, y


def available(framework: str) -> bool:
    """Whether ``framework`` can run here (torch / jax installed; fastbp's native module built)."""
    import importlib.util

    if framework in ("native", "reference"):
        return importlib.util.find_spec("fastbp") is not None
    if framework == "torch":
        return importlib.util.find_spec("torch") is not None
    if framework == "jax":
        return (importlib.util.find_spec("jax") is not None
                and importlib.util.find_spec("jaxlib") is not None)
    raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")


class Runner:
    """What every framework runner exposes (see the module docstring)."""

    framework = ""
    step: Callable[[], float]
    epoch: Callable[[], Any]

    def threads_in_use(self) -> Dict[str, Any]:
        return {}


# ----------------------------------------------------------------------------- fastbp
class FastbpRunner(Runner):
    def __init__(self, cfg: Config, threads: int, backend: str, seed: int = 0):
        import fastbp as fb

        self.framework = backend
        fb.set_num_threads(int(threads))
        self.fb = fb
        self.model = fb.MLP(list(cfg.sizes), activation=cfg.activation,
                            output_activation=cfg.output_activation, dtype="float32",
                            seed=seed, backend=backend)
        self.opt = fb.optim.Adam(lr=LR)
        self.xb, self.yb = make_data(cfg, cfg.batch, seed)
        self.X, self.y = make_data(cfg, cfg.n_fit, seed + 1)
        self.cfg = cfg
        # the training loop alone: no progress display, no per-epoch gradient-norm probe
        # (an extra forward/backward for monitoring); only options this fastbp has
        import inspect

        from fastbp import training

        params = inspect.signature(training.fit).parameters
        self.fit_kwargs = {k: False for k in ("progress", "grad_norm") if k in params}

    def step(self) -> float:
        return self.model.train_step(self.xb, self.yb, self.cfg.loss, self.opt)

    def epoch(self) -> Any:
        return self.model.fit(self.X, self.y, loss=self.cfg.loss, optimizer=self.opt,
                              epochs=1, batch_size=self.cfg.batch, shuffle=True,
                              **self.fit_kwargs)

    def threads_in_use(self) -> Dict[str, Any]:
        info = self.fb.info()
        d: Dict[str, Any] = {"fastbp": info.get("num_threads"), "isa": info.get("isa"),
                             "fit_kwargs": self.fit_kwargs}
        if self.framework == "reference":
            d.update(_numpy_threads())
        return d


def _numpy_threads() -> Dict[str, Any]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"numpy_blas": "unknown (threadpoolctl not installed; pinned by environment)"}
    return {"numpy_blas": [d.get("num_threads") for d in threadpool_info()
                           if d.get("user_api") == "blas"]}


# ----------------------------------------------------------------------------- torch
class TorchRunner(Runner):
    """``nn.Sequential`` + ``torch.optim.Adam`` + the zero_grad/backward/step loop."""

    framework = "torch"

    def __init__(self, cfg: Config, threads: int, seed: int = 0):
        import torch
        from torch import nn

        torch.set_num_threads(int(threads))
        torch.manual_seed(seed)
        layers: List[Any] = []
        widths = list(cfg.sizes)
        for i, (k, n) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(k, n))
            last = i == len(widths) - 2
            act = cfg.output_activation if last else cfg.activation
            if act != "identity":
                layers.append(getattr(nn, TORCH_ACTS[act])())
        self.torch = torch
        self.model = nn.Sequential(*layers)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loss_fn = nn.MSELoss() if cfg.loss == "mse" else nn.CrossEntropyLoss()
        xb, yb = make_data(cfg, cfg.batch, seed)
        X, y = make_data(cfg, cfg.n_fit, seed + 1)
        self.xb, self.yb = torch.from_numpy(xb), torch.from_numpy(yb)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.cfg = cfg
        self.gen = torch.Generator().manual_seed(seed)

    def _step(self, xb: Any, yb: Any) -> float:
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        return loss.item()

    def step(self) -> float:
        return self._step(self.xb, self.yb)

    def epoch(self) -> float:
        b = self.cfg.batch
        perm = self.torch.randperm(self.cfg.n_fit, generator=self.gen)
        total = 0.0
        for i in range(self.cfg.fit_steps):
            idx = perm[i * b:(i + 1) * b]
            total += self._step(self.X[idx], self.y[idx])
        return total / self.cfg.fit_steps

    def threads_in_use(self) -> Dict[str, Any]:
        return {"torch": self.torch.get_num_threads(),
                "torch_interop": self.torch.get_num_interop_threads()}


# ----------------------------------------------------------------------------- jax
class JaxRunner(Runner):
    """A jitted ``value_and_grad`` + Adam (torch's formula, in jax.numpy) step; the epoch is
    one jitted ``lax.scan`` over on-device shuffled batches. Parameters and optimizer state
    are donated, as a JAX user would."""

    framework = "jax"

    def __init__(self, cfg: Config, threads: int, seed: int = 0):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.cfg = jax, jnp, cfg
        rng = np.random.default_rng(seed)
        params = []
        for k, n in zip(cfg.sizes[:-1], cfg.sizes[1:]):
            bound = 1.0 / np.sqrt(k)  # torch.nn.Linear's default range
            params.append((jnp.asarray(rng.uniform(-bound, bound, (k, n)).astype(np.float32)),
                           jnp.asarray(rng.uniform(-bound, bound, (n,)).astype(np.float32))))
        hidden, output = _jax_act(jax, cfg.activation), _jax_act(jax, cfg.output_activation)
        classify = cfg.loss == "softmax_cross_entropy"

        def loss_fn(ps, x, y):
            h = x
            for i, (W, b) in enumerate(ps):
                h = h @ W + b
                h = output(h) if i == len(ps) - 1 else hidden(h)
            if classify:
                logp = jax.nn.log_softmax(h, axis=-1)
                return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
            return jnp.mean((h - y) ** 2)

        b1, b2, eps = 0.9, 0.999, 1e-8
        tmap = jax.tree_util.tree_map

        def update(ps, state, x, y):
            m, v, t = state
            loss, g = jax.value_and_grad(loss_fn)(ps, x, y)
            t = t + 1
            m = tmap(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
            v = tmap(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
            bc1 = 1 - b1 ** t
            bc2 = 1 - b2 ** t
            step_size = LR / bc1
            ps = tmap(lambda p, m_, v_: p - step_size * m_ / (jnp.sqrt(v_) / jnp.sqrt(bc2) + eps),
                      ps, m, v)
            return ps, (m, v, t), loss

        def epoch_fn(ps, state, X, Y, key):
            n = X.shape[0]
            perm = jax.random.permutation(key, n)
            Xs = X[perm].reshape(cfg.fit_steps, cfg.batch, X.shape[1])
            Ys = Y[perm].reshape((cfg.fit_steps, cfg.batch) + Y.shape[1:])

            def body(carry, xy):
                ps_, st_ = carry
                ps_, st_, loss = update(ps_, st_, xy[0], xy[1])
                return (ps_, st_), loss

            (ps, state), losses = jax.lax.scan(body, (ps, state), (Xs, Ys))
            return ps, state, jnp.mean(losses)

        zeros = tmap(jnp.zeros_like, params)
        self.params = params
        self.state = (zeros, tmap(jnp.zeros_like, params), jnp.zeros((), jnp.float32))
        self._update = jax.jit(update, donate_argnums=(0, 1))
        self._epoch = jax.jit(epoch_fn, donate_argnums=(0, 1))
        xb, yb = make_data(cfg, cfg.batch, seed)
        X, y = make_data(cfg, cfg.n_fit, seed + 1)
        if classify:
            yb, y = yb.astype(np.int32), y.astype(np.int32)
        self.xb, self.yb = jnp.asarray(xb), jnp.asarray(yb)
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        self.key = jax.random.PRNGKey(seed)

    def step(self) -> float:
        self.params, self.state, loss = self._update(self.params, self.state, self.xb, self.yb)
        return float(loss)

    def epoch(self) -> float:
        self.key, sub = self.jax.random.split(self.key)
        self.params, self.state, loss = self._epoch(self.params, self.state, self.X, self.y, sub)
        return float(loss)

    def threads_in_use(self) -> Dict[str, Any]:
        import os

        return {"jax_xla_flags": os.environ.get("XLA_FLAGS", ""),
                "jax_devices": [str(d) for d in self.jax.devices()]}


def make_runner(framework: str, cfg: Config, threads: int, seed: int = 0) -> Runner:
    """Build the runner of ``framework`` (native, reference, torch or jax) for ``cfg``."""
    if framework in ("native", "reference"):
        return FastbpRunner(cfg, threads, framework, seed)
    if framework == "torch":
        return TorchRunner(cfg, threads, seed)
    if framework == "jax":
        return JaxRunner(cfg, threads, seed)
    raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")
