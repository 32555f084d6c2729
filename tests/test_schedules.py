"""Learning-rate schedules: torch.optim.lr_scheduler formulas, and how fit applies them."""

import numpy as np
import pytest

import fastbp as fb
from fastbp import schedules as S

BASE = 0.1


def _torch_lrs(make_sched, n, base=BASE):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = make_sched(torch.optim.lr_scheduler, opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


CASES = {
    "step": (lambda: S.StepLR(3, gamma=0.5), lambda L, o: L.StepLR(o, 3, gamma=0.5)),
    "step_default_gamma": (lambda: S.StepLR(4), lambda L, o: L.StepLR(o, 4)),
    "exponential": (lambda: S.ExponentialLR(0.9), lambda L, o: L.ExponentialLR(o, 0.9)),
    "cosine": (lambda: S.CosineAnnealingLR(10, eta_min=1e-3),
               lambda L, o: L.CosineAnnealingLR(o, 10, eta_min=1e-3)),
    "warmup": (lambda: S.LinearWarmup(5, start_factor=0.2),
               lambda L, o: L.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=5)),
    "warmup_then_cosine": (
        lambda: S.LinearWarmup(4, 0.25, then=S.CosineAnnealingLR(12, eta_min=0.0)),
        lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.25, 1.0, total_iters=4),
                                        L.CosineAnnealingLR(o, 12)], milestones=[4])),
    "warmup_then_step": (
        lambda: S.LinearWarmup(3, 0.5, then=S.StepLR(2, 0.3)),
        lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.5, 1.0, total_iters=3),
                                        L.StepLR(o, 2, 0.3)], milestones=[3])),
    "lambda": (lambda: S.LambdaLR(lambda t: 1.0 / (1 + t)),
               lambda L, o: L.LambdaLR(o, lambda t: 1.0 / (1 + t))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_torch(name):
    ours, theirs = CASES[name]
    n = 30  # past T_max for the cosine: torch's curve goes back up, so does the closed form
    expected = _torch_lrs(theirs, n)
    got = ours().lrs(0, n, BASE)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    # lr(t) and lrs(start, count) agree
    assert ours().lr(7, BASE) == got[7]
    np.testing.assert_array_equal(ours().lrs(5, 10, BASE), got[5:15])


def test_reduce_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    metrics = list(1.0 / np.arange(1, 8)) + list(0.14 + 0.01 * rng.random(25))
    for kwargs in (dict(factor=0.5, patience=2, threshold=1e-4),
                   dict(factor=0.3, patience=1, threshold=0.05, threshold_mode="abs",
                        cooldown=2, min_lr=0.004),
                   dict(factor=0.5, patience=0, mode="max")):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=BASE)
        tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        ours = S.ReduceLROnPlateau(monitor="val_loss", **kwargs)
        lr = BASE
        for m in metrics:
            opt.step()
            tsched.step(m)
            lr = ours.step(m, lr)
            assert lr == opt.param_groups[0]["lr"]
        assert lr < BASE  # the sequence did trigger reductions


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(0)
    with pytest.raises(ValueError, match="T_max"):
        S.CosineAnnealingLR(-1)
    with pytest.raises(ValueError, match="start_factor"):
        S.LinearWarmup(3, start_factor=0.0)
    with pytest.raises(TypeError, match="then"):
        S.LinearWarmup(3, then=S.ReduceLROnPlateau())
    with pytest.raises(ValueError, match="factor"):
        S.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(ValueError, match="negative"):
        S.LambdaLR(lambda t: -1.0).lrs(0, 3, 0.1)


def _digits(n=200):
    from fastbp.datasets import load_digits
    X, y = load_digits("float64")
    return X[:n], y[:n]


def test_fit_applies_per_epoch_schedule():
    X, y = _digits()
    m = fb.MLP([64, 16, 10], seed=0)
    opt = fb.optim.SGD(lr=0.2)
    h = m.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=5,
              schedule=S.StepLR(2, 0.5), progress=False)
    assert h["lr"] == [0.2, 0.2, 0.1, 0.1, 0.05]
    assert opt.initial_lr == 0.2 and opt.lr == 0.05
    # a second call continues the schedule from epochs_trained
    h = m.fit(X, y, loss="softmax_cross_entropy", epochs=2, schedule=S.StepLR(2, 0.5),
              progress=False)
    assert h["lr"] == [0.05, 0.025] and h.epoch == [5, 6]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_per_step_schedule_equals_manual_train_steps(dtype):
    """schedule_per='step' equals setting the rate by hand before each train_step."""
    X, y = _digits(100)
    sched = S.LinearWarmup(3, 0.1, then=S.CosineAnnealingLR(10, eta_min=0.01))
    a = fb.MLP([64, 12, 10], seed=2, dtype=dtype)
    a.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.SGD(lr=0.5, momentum=0.9),
          epochs=3, batch_size=25, shuffle=False, schedule=sched, schedule_per="step",
          progress=False, grad_norm=False)
    b = fb.MLP([64, 12, 10], seed=2, dtype=dtype)
    opt = fb.optim.SGD(lr=0.5, momentum=0.9)
    rates = sched.lrs(0, 12, 0.5)
    for t in range(12):
        opt.lr = rates[t]
        k = t % 4
        b.train_step(X[25 * k:25 * (k + 1)], y[25 * k:25 * (k + 1)], "softmax_cross_entropy", opt)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    assert a.steps_trained == 12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_per_step_schedule_native_vs_reference(dtype):
    X, y = _digits(150)
    sched = S.LinearWarmup(6, 0.05, then=S.CosineAnnealingLR(30, eta_min=1e-3))
    models = {}
    for backend in ("native", "reference"):
        m = fb.Sequential([fb.Dense(24, "relu"), fb.Dropout(0.2), fb.Dense(10)], input_dim=64,
                          dtype=dtype, seed=4, backend=backend)
        m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(lr=5e-3), epochs=3,
              batch_size=16, schedule=sched, schedule_per="step", progress=False)
        models[backend] = m
    rtol = 1e-4 if dtype == "float32" else 1e-10
    for p, q in zip(models["native"].parameters(), models["reference"].parameters()):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=rtol)
    h = models["native"].history
    assert h["lr"][0] == pytest.approx(5e-3 * 0.05)


def test_reduce_on_plateau_in_fit():
    X, y = _digits(120)
    m = fb.MLP([64, 8, 10], seed=0, dtype="float64")
    # a negligible rate keeps the loss flat (no relative improvement of 1e-4): the plateau
    # rule must halve the rate every patience + 1 = 2 epochs after the first
    L = 1e-12
    sched = S.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, eps=0.0)
    h = m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.SGD(lr=L), epochs=6,
              schedule=sched, progress=False)
    assert h["lr"] == [L, L, L, L / 2, L / 2, L / 4]
    assert m.optimizer.lr == L / 4
    with pytest.raises(ValueError, match="per epoch"):
        m.fit(X, y, loss="softmax_cross_entropy", schedule=sched, schedule_per="step")
    with pytest.raises(ValueError, match="'val_loss' is not in the epoch logs"):
        m.fit(X, y, loss="softmax_cross_entropy", schedule=S.ReduceLROnPlateau(),
              progress=False)
