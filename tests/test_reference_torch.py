"""Both backends — the NumPy reference and the native engine — equal PyTorch (float64, 1e-10
relative) for the same weights: every test below runs once per backend.

Checked: loss and every gradient for every loss (weights, probability targets), every
activation, batchnorm (train, running statistics, eval), layernorm, dropout (torch given the
engine's mask), residual blocks, L1/L2 penalties; parameters and optimizer state after 10
steps for every optimizer and option, with gradient clipping; fit_epoch against a torch loop.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
torch.set_num_threads(1)  # tiny tensors: threads only add overhead (and contention on CI)

from fastbp import _core  # noqa: E402
from fastbp.layers import init_parameters  # noqa: E402
from fastbp.reference import Engine as ReferenceEngine  # noqa: E402
from fastbp.reference import rng  # noqa: E402
from fastbp.reference.engine import normalize_spec  # noqa: E402


def _native_engine(spec, dtype="float64", seed=0):
    """The native engine behind the same constructor as the reference Engine."""
    spec = normalize_spec(spec)[0]
    cls = _core.Network64 if dtype == "float64" else _core.Network32

    class NativeEngine(cls):
        def __init__(self):
            super().__init__(spec, seed)
            self.spec = spec
            init_parameters(spec, self.parameters(), self.buffers(), seed)

    return NativeEngine()


Engine = ReferenceEngine


@pytest.fixture(autouse=True, params=["reference", "native"])
def backend(request):
    """Run every test of this module against both engines."""
    global Engine
    Engine = ReferenceEngine if request.param == "reference" else _native_engine
    yield request.param
    Engine = ReferenceEngine

RTOL = 1e-10
ATOL = 1e-13  # for entries that are exactly zero in one of the two


# ------------------------------------------------------------------------------ torch mirror
class TorchMirror:
    """Re-implements a spec with torch ops on leaf tensors holding the engine's parameters."""

    def __init__(self, eng: Engine):
        self.spec = eng.spec
        self.seed = eng.rng_state()[0]
        self.params = [torch.tensor(p.copy(), requires_grad=True) for p in eng.parameters()]
        self.buffers = [torch.tensor(b.copy()) for b in eng.buffers()]
        self.dense_weights = []

    def act(self, name, alpha, x):
        if name == "identity":
            return x
        if name == "sigmoid":
            return torch.sigmoid(x)
        if name == "tanh":
            return torch.tanh(x)
        if name == "relu":
            return F.relu(x)
        if name == "leaky_relu":
            return F.leaky_relu(x, negative_slope=alpha)
        if name == "elu":
            return F.elu(x, alpha=alpha)
        if name == "gelu":
            return F.gelu(x, approximate="none")
        if name == "silu":
            return F.silu(x)
        if name == "softplus":
            return F.softplus(x, beta=1.0, threshold=20.0)
        if name == "mish":
            return F.mish(x)
        if name == "hardswish":
            return F.hardswish(x)
        raise AssertionError(name)

    def forward(self, X, training, step=0):
        self._p, self._b, self._index = 0, 0, 0
        self.dense_weights = []
        return self._run(self.spec, torch.as_tensor(X), training, step)

    def _next(self):
        p = self.params[self._p]
        self._p += 1
        return p

    def _run(self, spec, x, training, step):
        for layer in spec:
            index = self._index
            self._index += 1
            t = layer["type"]
            if t == "dense":
                W, b = self._next(), self._next()
                self.dense_weights.append(W)
                x = self.act(layer["activation"], layer["alpha"], x @ W + b)
            elif t == "activation":
                x = self.act(layer["activation"], layer["alpha"], x)
            elif t == "dropout":
                if training and layer["rate"] > 0:
                    keep = rng.dropout_mask(self.seed, step, index, tuple(x.shape), layer["rate"])
                    x = x * torch.as_tensor(keep.astype(np.float64)) / (1 - layer["rate"])
            elif t == "batchnorm":
                g, b = self._next(), self._next()
                rm, rv = self.buffers[self._b], self.buffers[self._b + 1]
                self._b += 2
                x = F.batch_norm(x, rm, rv, g, b, training=training,
                                 momentum=layer["momentum"], eps=layer["eps"])
            elif t == "layernorm":
                g, b = self._next(), self._next()
                x = F.layer_norm(x, (layer["dim"],), g, b, eps=layer["eps"])
            elif t == "residual":
                x = x + self._run(layer["layers"], x, training, step)
        return x

    def loss(self, out, y, loss, loss_params=None, w=None):
        lp = loss_params or {}
        y_t = torch.as_tensor(y)
        if y_t.dtype != torch.int64:
            y_t = y_t.to(torch.float64)
        if loss == "softmax_cross_entropy":
            red = F.cross_entropy(out, y_t, reduction="none" if w is not None else "mean")
            per = red
        else:
            if y_t.dim() == 1:
                y_t = y_t.reshape(-1, 1)
            fn = {
                "mse": lambda r: F.mse_loss(out, y_t, reduction=r),
                "mae": lambda r: F.l1_loss(out, y_t, reduction=r),
                "huber": lambda r: F.huber_loss(out, y_t, reduction=r, delta=lp.get("delta", 1.0)),
                "binary_cross_entropy": lambda r: F.binary_cross_entropy_with_logits(out, y_t, reduction=r),
                # torch's log-input Poisson NLL plus the constant t log t - t of the deviance
                "poisson": lambda r: _reduced(
                    F.poisson_nll_loss(out, y_t, log_input=True, reduction="none")
                    + torch.special.xlogy(y_t, y_t) - y_t, r),
            }[loss]
            red = fn("mean") if w is None else fn("none").mean(dim=1)
            per = red
        if w is None:
            value = red
        else:
            w_t = torch.as_tensor(w)
            value = (w_t * per).sum() / w_t.sum()
        l1, l2 = lp.get("l1", 0.0), lp.get("l2", 0.0)
        for W in self.dense_weights:
            if l1:
                value = value + l1 * W.abs().sum()
            if l2:
                value = value + 0.5 * l2 * (W * W).sum()
        return value

    def loss_and_grads(self, X, y, loss, loss_params=None, w=None, step=0):
        for p in self.params:
            p.grad = None
        out = self.forward(X, True, step)
        value = self.loss(out, y, loss, loss_params, w)
        value.backward()
        return value.item(), [p.grad.detach().numpy().copy() for p in self.params]


def assert_close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def dense(i, o, act="identity", **kw):
    return {"type": "dense", "in": i, "out": o, "activation": act, **kw}


def _reduced(per, reduction):
    return per.mean() if reduction == "mean" else per


def data(n=12, d=5, k=3, loss="mse", seed=0):
    g = np.random.default_rng(seed)
    X = g.normal(size=(n, d))
    if loss == "softmax_cross_entropy":
        y = g.integers(0, k, n)
    elif loss == "softmax_probs":
        y = g.random((n, k))
        y /= y.sum(axis=1, keepdims=True)
    elif loss == "binary_cross_entropy":
        y = g.random((n, k))
    elif loss == "poisson":
        y = g.poisson(1.5, (n, k)).astype(np.float64)
    else:
        y = g.normal(size=(n, k))
    return X, y


def jittered_engine(spec, seed=0, jitter=0.2):
    eng = Engine(spec, "float64", seed)
    eng.arena()[:] += jitter * np.random.default_rng(seed + 7).normal(size=eng.num_params)
    return eng


def compare_loss_and_grads(spec, X, y, loss, loss_params=None, w=None, seed=0):
    eng = jittered_engine(spec, seed)
    mirror = TorchMirror(eng)
    step = eng.rng_state()[1]
    value, grads = eng.loss_and_gradients(X, y, loss, loss_params, w)
    t_value, t_grads = mirror.loss_and_grads(X, y, loss, loss_params, w, step)
    assert value == pytest.approx(t_value, rel=RTOL)
    assert len(grads) == len(t_grads)
    for g, tg in zip(grads, t_grads):
        assert_close(g, tg)
    for b, tb in zip(eng.buffers(), mirror.buffers):  # running statistics updated alike
        assert_close(b, tb.numpy())
    return eng, mirror


BASE_SPEC = [dense(5, 7, "tanh"), dense(7, 3)]


# ------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy",
                                  "softmax_cross_entropy", "softmax_probs", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_loss(loss, weighted):
    X, y = data(loss=loss)
    name = "softmax_cross_entropy" if loss == "softmax_probs" else loss
    w = np.random.default_rng(1).random(len(X)) + 0.1 if weighted else None
    compare_loss_and_grads(BASE_SPEC, X, y, name, None, w)


@pytest.mark.parametrize("delta", [0.3, 2.5])
def test_huber_delta(delta):
    X, y = data()
    compare_loss_and_grads(BASE_SPEC, X, y, "huber", {"delta": delta})


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy"])
def test_single_output_with_1d_targets(loss):
    X, y = data(k=1, loss=loss)
    compare_loss_and_grads([dense(5, 4, "relu"), dense(4, 1)], X, y[:, 0], loss)


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "softmax_cross_entropy"])
def test_huge_logits(loss):
    X, y = data(loss=loss)
    eng = Engine([dense(5, 3)], "float64", 0)
    eng.parameters()[0][:] *= 3e4  # logits of order 1e4
    mirror = TorchMirror(eng)
    value, grads = eng.loss_and_gradients(X, y, loss)
    t_value, t_grads = mirror.loss_and_grads(X, y, loss)
    assert np.isfinite(value) and value == pytest.approx(t_value, rel=RTOL)
    for g, tg in zip(grads, t_grads):
        assert_close(g, tg)


# ------------------------------------------------------------------------------ activations / layers
@pytest.mark.parametrize("act", ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu",
                                 "gelu", "silu", "softplus", "mish", "hardswish"])
def test_every_activation(act):
    X, y = data()
    X[:3] *= 15  # softplus beyond its threshold, saturated sigmoid/tanh
    spec = [dense(5, 7, act), {"type": "activation", "dim": 7, "activation": act}, dense(7, 3)]
    compare_loss_and_grads(spec, X, y, "mse")


@pytest.mark.parametrize("act,alpha", [("leaky_relu", 0.2), ("elu", 0.5)])
def test_activation_alpha(act, alpha):
    X, y = data()
    compare_loss_and_grads([dense(5, 7, act, alpha=alpha), dense(7, 3)], X, y, "mse")


def test_batchnorm_train_running_stats_and_eval():
    X, y = data(n=10)
    spec = [dense(5, 6, "relu"), {"type": "batchnorm", "dim": 6, "momentum": 0.2, "eps": 1e-4},
            dense(6, 3)]
    eng, mirror = compare_loss_and_grads(spec, X, y, "mse")
    # a second training pass moves the running statistics again, identically
    eng.loss_and_gradients(X[:4], y[:4], "mse")
    mirror.loss_and_grads(X[:4], y[:4], "mse")
    for b, tb in zip(eng.buffers(), mirror.buffers):
        assert_close(b, tb.numpy())
    X2 = np.random.default_rng(9).normal(size=(4, 5))
    with torch.no_grad():
        t_out = mirror.forward(X2, training=False).numpy()
    assert_close(eng.predict(X2), t_out)


def test_layernorm():
    X, y = data()
    spec = [dense(5, 6), {"type": "layernorm", "dim": 6, "eps": 1e-3}, dense(6, 3)]
    eng, mirror = compare_loss_and_grads(spec, X, y, "mse")
    with torch.no_grad():
        assert_close(eng.predict(X), mirror.forward(X, training=False).numpy())


def test_dropout_and_residual():
    X, y = data(loss="softmax_cross_entropy")
    block = [dense(6, 6, "gelu"), {"type": "dropout", "dim": 6, "rate": 0.25},
             {"type": "layernorm", "dim": 6}]
    spec = [dense(5, 6, "relu"), {"type": "dropout", "dim": 6, "rate": 0.5},
            {"type": "residual", "dim": 6, "layers": block}, dense(6, 3)]
    eng = jittered_engine(spec)
    eng.set_rng_state(eng.rng_state()[0], 5, 0)
    mirror = TorchMirror(eng)
    value, grads = eng.loss_and_gradients(X, y, "softmax_cross_entropy")
    t_value, t_grads = mirror.loss_and_grads(X, y, "softmax_cross_entropy", step=5)
    assert value == pytest.approx(t_value, rel=RTOL)
    for g, tg in zip(grads, t_grads):
        assert_close(g, tg)
    with torch.no_grad():  # inference: dropout off
        assert_close(eng.predict(X), mirror.forward(X, training=False).numpy())


@pytest.mark.parametrize("lp", [{"l1": 0.01}, {"l2": 0.1}, {"l1": 0.02, "l2": 0.05}])
def test_penalties(lp):
    X, y = data()
    spec = [dense(5, 6, "elu"), {"type": "batchnorm", "dim": 6}, dense(6, 3)]
    compare_loss_and_grads(spec, X, y, "mse", lp, np.linspace(0.5, 1.5, len(X)))


# ------------------------------------------------------------------------------ optimizers
def torch_optimizer(name, hyper, params):
    h = {k: v for k, v in hyper.items() if k not in ("clip_norm", "clip_value")}
    if name in ("adam", "adamw") and ("beta1" in h or "beta2" in h):
        h["betas"] = (h.pop("beta1", 0.9), h.pop("beta2", 0.999))
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[name]
    return cls(params, foreach=False, **h)


OPT_CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.1}),
    ("adam", {}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05}),
    ("adam", {"lr": 0.01, "amsgrad": True}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.5}),
    ("rmsprop", {"lr": 0.005, "centered": True, "weight_decay": 0.01}),
    ("rmsprop", {"lr": 0.005, "centered": True, "momentum": 0.7, "eps": 1e-5}),
    ("adagrad", {}),
    ("adagrad", {"lr": 0.05, "lr_decay": 0.1, "initial_accumulator_value": 0.3,
                 "weight_decay": 0.02, "eps": 1e-8}),
]

TORCH_STATE = {"momentum_buffer": "momentum_buffer", "exp_avg": "exp_avg",
               "exp_avg_sq": "exp_avg_sq", "max_exp_avg_sq": "max_exp_avg_sq",
               "square_avg": "square_avg", "grad_avg": "grad_avg", "sum": "sum"}

OPT_SPEC = [dense(5, 7, "relu"), {"type": "batchnorm", "dim": 7},
            {"type": "dropout", "dim": 7, "rate": 0.2}, dense(7, 3)]


def run_both(name, hyper, loss="softmax_cross_entropy", lp=None, steps=10, spec=OPT_SPEC):
    X, y = data(n=24, loss=loss)
    eng = jittered_engine(spec)
    mirror = TorchMirror(eng)
    eng.set_optimizer(name, hyper)
    topt = torch_optimizer(name, hyper, mirror.params)
    for k in range(steps):
        rows = slice((k % 3) * 8, (k % 3) * 8 + 8)
        step = eng.rng_state()[1]
        value = eng.train_step(X[rows], y[rows], loss, lp)
        topt.zero_grad()
        out = mirror.forward(X[rows], True, step)
        t_value = mirror.loss(out, y[rows], loss, lp)
        t_value.backward()
        if hyper.get("clip_value") is not None:
            torch.nn.utils.clip_grad_value_(mirror.params, hyper["clip_value"])
        if hyper.get("clip_norm") is not None:
            torch.nn.utils.clip_grad_norm_(mirror.params, hyper["clip_norm"])
        topt.step()
        assert value == pytest.approx(t_value.item(), rel=RTOL)
    return eng, mirror, topt


@pytest.mark.parametrize("name,hyper", OPT_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPT_CASES)])
def test_optimizer_ten_steps(name, hyper):
    eng, mirror, topt = run_both(name, hyper)
    for p, tp in zip(eng.parameters(), mirror.params):
        assert_close(p, tp.detach().numpy())
    for b, tb in zip(eng.buffers(), mirror.buffers):
        assert_close(b, tb.numpy())
    state = eng.optimizer_state()
    assert state["step"] == 10
    tstate = [topt.state[p] for p in mirror.params]
    for key in set(state) - {"step"}:
        flat = np.concatenate([s[TORCH_STATE[key]].detach().numpy().ravel() for s in tstate])
        assert_close(state[key], flat)
    if name not in ("sgd", "rmsprop"):
        assert all(int(s["step"]) == 10 for s in tstate)


@pytest.mark.parametrize("clip", [{"clip_norm": 0.05}, {"clip_value": 0.01},
                                  {"clip_value": 0.02, "clip_norm": 0.03}, {"clip_norm": 1e6}])
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_clipping(name, clip):
    hyper = {"lr": 0.1, "momentum": 0.9, **clip} if name == "sgd" else {"lr": 0.01, **clip}
    eng, mirror, _ = run_both(name, hyper, loss="mse", lp={"l2": 0.01})
    for p, tp in zip(eng.parameters(), mirror.params):
        assert_close(p, tp.detach().numpy())


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy"])
def test_optimizer_with_every_loss_and_penalties(loss):
    # mae's gradients are sums of +-1/(n k) terms that can cancel to an exact 0, which both
    # sides compute as a different +-1e-17; Adam's normalisation g / (|g| + eps) would turn that
    # round-off into a visible difference, so mae is paired with SGD (round-off stays 1e-17).
    name, hyper = ("sgd", {"lr": 0.05, "momentum": 0.9}) if loss == "mae" else ("adamw", {"lr": 0.01})
    eng, mirror, _ = run_both(name, hyper, loss=loss, lp={"l1": 0.001, "l2": 0.01})
    for p, tp in zip(eng.parameters(), mirror.params):
        assert_close(p, tp.detach().numpy())


def test_fit_epoch_matches_torch_loop_with_shuffle_and_lrs():
    X, y = data(n=23, loss="softmax_cross_entropy")
    w = np.random.default_rng(4).random(23) + 0.1
    spec = [dense(5, 6, "silu"), {"type": "dropout", "dim": 6, "rate": 0.3},
            {"type": "layernorm", "dim": 6}, dense(6, 3)]
    eng = jittered_engine(spec)
    mirror = TorchMirror(eng)
    eng.set_optimizer("sgd", {"lr": 0.1, "momentum": 0.9})
    topt = torch_optimizer("sgd", {"lr": 0.1, "momentum": 0.9}, mirror.params)
    seed = eng.rng_state()[0]
    for epoch in range(2):
        lrs = np.array([0.1, 0.08, 0.06, 0.04, 0.02]) * (epoch + 1)
        perm = rng.shuffle_permutation(seed, epoch, 23)
        total = 0.0
        step0 = eng.rng_state()[1]
        for k in range(5):
            idx = perm[k * 5:(k + 1) * 5]
            for g in topt.param_groups:
                g["lr"] = lrs[k]
            topt.zero_grad()
            out = mirror.forward(X[idx], True, step0 + k)
            value = mirror.loss(out, y[idx], "softmax_cross_entropy", None, w[idx])
            value.backward()
            topt.step()
            total += value.item() * len(idx)
        ours = eng.fit_epoch(X, y, "softmax_cross_entropy", None, w, 5, True, lrs)
        assert ours == pytest.approx(total / 23, rel=RTOL)
        assert eng.rng_state()[1:] == (step0 + 5, epoch + 1)
    for p, tp in zip(eng.parameters(), mirror.params):
        assert_close(p, tp.detach().numpy())


@pytest.mark.parametrize("n,d,h,k", [(2, 1, 1, 1), (7, 7, 33, 2), (33, 3, 7, 5), (5, 33, 1, 3)])
def test_odd_shapes(n, d, h, k):
    X, y = data(n=n, d=d, k=k, loss="softmax_cross_entropy")
    spec = [dense(d, h, "gelu"), {"type": "batchnorm", "dim": h}, {"type": "layernorm", "dim": h},
            dense(h, k)]
    compare_loss_and_grads(spec, X, y, "softmax_cross_entropy", {"l1": 1e-3})
