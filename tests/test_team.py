"""Training steps shared by a thread team (core/team.h, nn/network.cpp): networks of dense
layers large enough for a team give bitwise the same parameters, optimizer state and losses
with 1 and 2 threads, through fit (whole native epochs) and train_step, under every ISA, and
agree with the NumPy reference."""
import numpy as np
import pytest

import fastbp as fb

# (sizes, batch): each but the last is large enough for a team (>= 5e5 multiply-adds per
# forward, or a batch of one row with >= 65536 parameters), with awkward widths and batches
# (not multiples of the row blocks the products split on) and outputs of 1 (the narrow GEMM
# path), 3 and 10 units.
CASES = [
    ([32, 64, 64, 64, 1], 64),     # deep narrow, a narrow output
    ([33, 70, 65, 3], 101),        # odd widths, a last batch of 300 % 101 rows
    ([40, 96, 96, 10], 47),
    ([512, 1024, 10], 1),          # batch 1: row units, the fused update (nn/fused_update.h)
    ([256, 300, 10], 7),
    ([256, 300, 10], 1),           # batch 1 again, a wide layer of 300 (5 row units)
    ([200, 300, 260, 3], 150),     # packed products on the team: split by columns, and dW2
                                   # (300 x 260 from 150 rows) by rows (it packs less)
    ([64, 128, 10], 1),            # below the team: one thread, its optimizer pass included
]
OPTIMIZERS = {
    "adam": lambda: fb.optim.Adam(lr=3e-3),
    "sgd_momentum_clip": lambda: fb.optim.SGD(lr=0.02, momentum=0.9, clip_norm=0.5),
    "rmsprop_centered": lambda: fb.optim.RMSprop(lr=1e-3, centered=True, momentum=0.5),
}


def _data(sizes, n, dtype, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if sizes[-1] == 1:
        return X, rng.standard_normal((n, 1)).astype(dtype), "mse"
    return X, rng.integers(0, sizes[-1], n), "softmax_cross_entropy"


def _train(threads, sizes, batch, dtype, opt, steps_api, backend="native", l2=0.0,
           activation="tanh"):
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(threads)
        X, y, loss = _data(sizes, 300 if batch > 1 else 40, dtype)
        m = fb.MLP(sizes, activation=activation, dtype=dtype, seed=5, backend=backend)
        o = OPTIMIZERS[opt]()
        losses = []
        if steps_api:
            for s in range(0, len(X) - batch + 1, batch):
                losses.append(m.train_step(X[s:s + batch], y[s:s + batch], loss=loss,
                                           optimizer=o, l2=l2))
        else:
            h = m.fit(X, y, loss=loss, optimizer=o, epochs=2, batch_size=batch, l2=l2,
                      schedule=fb.schedules.StepLR(step_size=1, gamma=0.5),
                      schedule_per="step", grad_norm=False, progress=False)
            losses = h.history["loss"]
        state = m.engine.optimizer_state() if backend == "native" else None
        return [p.copy() for p in m.parameters()], np.asarray(losses, float), state
    finally:
        fb.set_num_threads(before)


def _assert_same_run(a, b):
    """Parameters, losses and optimizer state (params, losses, state, ...) bit for bit."""
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2].keys() == b[2].keys()
    for k in a[2]:
        np.testing.assert_array_equal(np.asarray(a[2][k]), np.asarray(b[2][k]))


@pytest.mark.parametrize("sizes,batch", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_team_fit_is_bitwise_the_one_thread_fit(isa, sizes, batch, dtype, opt):
    a = _train(1, sizes, batch, dtype, opt, steps_api=False, l2=1e-3)
    b = _train(2, sizes, batch, dtype, opt, steps_api=False, l2=1e-3)
    _assert_same_run(a, b)


@pytest.mark.parametrize("activation", ["gelu", "silu", "elu", "softplus", "mish"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_team_costly_derivative_is_bitwise_the_one_thread_one(isa, activation, dtype):
    """A derivative that evaluates exp / erf is shared by the team: rows of dz per thread,
    then the bias sums by 64-column blocks in row order (nn/layers.cpp team_backward_bias).
    Layers of 96 and 70 units (two column blocks, 47-row batches) and one of 12 (the first
    thread's sweep); 1, 2 and 3 threads give the same bits, and match the reference."""
    sizes, batch = [40, 96, 70, 12, 3], 47
    runs = [_train(t, sizes, batch, dtype, "adam", steps_api=False, l2=1e-3,
                   activation=activation) for t in (1, 2, 3)]
    for other in runs[1:]:
        for x, y in zip(runs[0][0], other[0]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(runs[0][1], other[1])
    if dtype == "float64":
        ref = _train(2, sizes, batch, dtype, "adam", steps_api=False, l2=1e-3,
                     backend="reference", activation=activation)
        for x, y in zip(runs[1][0], ref[0]):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("sizes,batch", CASES[:2] + CASES[3:4] + CASES[5:])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_team_train_step_is_bitwise_the_one_thread_step(isa, sizes, batch, dtype):
    a = _train(1, sizes, batch, dtype, "adam", steps_api=True)
    b = _train(2, sizes, batch, dtype, "adam", steps_api=True)
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("sizes,batch", [CASES[1], CASES[3], CASES[4]])
def test_team_fit_matches_the_reference(sizes, batch):
    native = _train(2, sizes, batch, "float64", "adam", steps_api=False, l2=1e-3)
    ref = _train(2, sizes, batch, "float64", "adam", steps_api=False, l2=1e-3,
                 backend="reference")
    for x, y in zip(native[0], ref[0]):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(native[1], ref[1], rtol=1e-10)


@pytest.mark.parametrize("threads", [3, 4])
def test_team_of_any_size_is_bitwise_the_one_thread_fit(threads):
    """Teams of 3 and 4 threads (their row, panel and arena shares fall differently), also when
    they outnumber the cores (then the team's backoff may send calls to one thread: the same
    bits either way)."""
    a = _train(1, CASES[1][0], CASES[1][1], "float64", "adam", steps_api=False, l2=1e-3)
    b = _train(threads, CASES[1][0], CASES[1][1], "float64", "adam", steps_api=False, l2=1e-3)
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[1], b[1])


def _loss_data(loss, n, k, dtype, rng):
    """Targets for every loss kind (softmax_cross_entropy with labels and with probabilities)."""
    if loss == "softmax_cross_entropy":
        return rng.integers(0, k, n)
    if loss == "softmax_probabilities":
        p = rng.random((n, k)) + 0.05
        return (p / p.sum(1, keepdims=True)).astype(dtype)
    if loss == "binary_cross_entropy":
        return rng.random((n, k)).astype(dtype)
    if loss == "poisson":
        return rng.poisson(1.5, (n, k)).astype(dtype)
    return rng.standard_normal((n, k)).astype(dtype)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy", "poisson",
                                  "softmax_cross_entropy", "softmax_probabilities"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_team_shared_loss_is_bitwise_the_one_thread_loss(isa, loss, dtype):
    """A team of 2 or 3 shares the loss rows of a batch (nn/network.cpp team_loss, losses.h
    loss_rows): the same losses and parameters as one thread, for every loss, with sample
    weights -- the mini-batches of 47 rows split on 16-row blocks, and one whose weights are
    all zero -- and close to the reference."""
    rng = np.random.default_rng(11)
    sizes, n, batch = [40, 96, 70, 5], 235, 47
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = _loss_data(loss, n, sizes[-1], dtype, rng)
    w = rng.random(n).astype(dtype)
    w[47:94] = 0.0  # (without shuffling, the second mini-batch weighs nothing)
    name = "softmax_cross_entropy" if loss == "softmax_probabilities" else loss
    runs = []
    for threads, backend in [(1, "native"), (2, "native"), (3, "native"), (2, "reference")]:
        before = fb.get_num_threads()
        try:
            fb.set_num_threads(threads)
            m = fb.MLP(sizes, activation="tanh", dtype=dtype, seed=5, backend=backend)
            h = m.fit(X, y, loss=name, optimizer=fb.optim.Adam(lr=3e-3), epochs=2,
                      batch_size=batch, shuffle=False, sample_weight=w, l2=1e-3,
                      grad_norm=False, progress=False)
            runs.append(([p.copy() for p in m.parameters()], np.asarray(h.history["loss"])))
        finally:
            fb.set_num_threads(before)
    for params, losses in runs[1:3]:
        np.testing.assert_array_equal(losses, runs[0][1])
        for x, y_ in zip(params, runs[0][0]):
            np.testing.assert_array_equal(x, y_)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(runs[1][1], runs[3][1], **tol)
    for x, y_ in zip(runs[1][0], runs[3][0]):
        np.testing.assert_allclose(x, y_, **tol)


def _layered(backend="native", dtype="float64"):
    """Dense layers with activation, dropout, norm and residual layers around them (widths
    of more than one 64-column block: the norm layers' columns split over the team)."""
    layers = [fb.Dense(150), fb.BatchNorm(), fb.Activation("tanh"), fb.Dropout(0.25),
              fb.Residual([fb.Dense(150, "relu"), fb.Dropout(0.1), fb.Dense(150),
                           fb.LayerNorm(), fb.Activation("gelu")]),
              fb.Dense(45, "silu"), fb.Dropout(0.3), fb.Dense(10)]
    return fb.Sequential(layers, input_dim=37, seed=4, dtype=dtype, backend=backend)


def test_which_networks_a_team_can_run():
    assert _layered().engine.team_capable
    assert fb.MLP([8, 16, 2]).engine.team_capable
    for norm in (fb.BatchNorm(), fb.LayerNorm()):
        m = fb.Sequential([fb.Dense(16), norm, fb.Dense(2)], input_dim=8)
        assert m.engine.team_capable
    assert fb.Sequential([fb.Residual([fb.Dense(8), fb.BatchNorm()])],
                         input_dim=8).engine.team_capable


def _train_layered(threads, dtype, steps_api, backend="native"):
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(threads)
        rng = np.random.default_rng(7)
        X = rng.standard_normal((330, 37)).astype(dtype)  # 330 % 96: a short last batch
        y = rng.integers(0, 10, 330)
        m = _layered(backend, dtype)
        # (96 rows: 96 * (37*150 + 2*150*150 + 150*45 + 45*10) = 5.5e6 multiply-adds per
        # forward, a team's step)
        opt = fb.optim.Adam(lr=2e-3)
        if steps_api:
            losses = [m.train_step(X[s:s + 96], y[s:s + 96], loss="softmax_cross_entropy",
                                   optimizer=opt) for s in range(0, 288, 96)]
        else:
            h = m.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=2,
                      batch_size=96, l2=1e-3, grad_norm=False, progress=False)
            losses = h.history["loss"]
        return [p.copy() for p in m.parameters()], np.asarray(losses, float)
    finally:
        fb.set_num_threads(before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("steps_api", [False, True])
def test_team_with_activation_dropout_norm_residual_layers_is_bitwise(isa, dtype, steps_api):
    """Activation, dropout, norm and residual layers on a team: each thread sweeps its rows
    (the dropout draws depend on the element alone) or, for batch statistics and parameter
    gradients, its columns over all rows in row order, so 2 and 3 threads give the one-thread
    bits."""
    one = _train_layered(1, dtype, steps_api)
    for threads in (2, 3):
        other = _train_layered(threads, dtype, steps_api)
        for x, y in zip(one[0], other[0]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(one[1], other[1])


def test_team_with_activation_dropout_norm_residual_layers_matches_the_reference():
    native = _train_layered(2, "float64", False)
    ref = _train_layered(2, "float64", False, backend="reference")
    # (atol 1e-10: two norm layers' parameters near zero differ by ~2e-11 after these
    # epochs, on one thread as on two)
    for x, y in zip(native[0], ref[0]):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(native[1], ref[1], rtol=1e-10)


def test_batchnorm_batch_of_one_row_is_refused_outside_any_team():
    """A batch of one row is refused by batchnorm; a step large enough for a team still raises
    the error (a team region must not throw: team_threads keeps such a batch on one thread)."""
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(2)
        m = fb.Sequential([fb.Dense(1024), fb.BatchNorm(), fb.Dense(600)], input_dim=600,
                          seed=0, dtype="float32")  # 1.2e6 multiply-adds for one row
        X = np.ones((1, 600), np.float32)
        with pytest.raises(ValueError, match="batchnorm needs more than 1 sample"):
            m.train_step(X, np.ones((1, 600), np.float32), loss="mse", optimizer="adam")
        m.train_step(np.ones((2, 600), np.float32), np.ones((2, 600), np.float32), loss="mse",
                     optimizer="adam")  # (two rows train, on the team)
    finally:
        fb.set_num_threads(before)


# ---------------------------------------------------------------- hidden units by strips
# A two-layer network whose hidden width is whole strips of 64 units (128-256) and whose step
# is below the team's size: fit_epoch on 2 threads owns the hidden units by strips, each
# thread's strips of W1 / b1 / their gradient and optimizer state in private arrays for the
# epoch (nn/network_split.cpp). Only an execution strategy: the bits are one thread's.
SPLIT_CASES = [
    ([64, 128, 10], 32, 600, "softmax_cross_entropy"),  # the digits net; a last batch of 24
    ([30, 256, 3], 20, 410, "softmax_cross_entropy"),   # 4 strips, 2 per thread; last batch 10
    ([64, 192, 1], 17, 400, "mse"),                     # 3 strips (1 + 2); one output
    ([7, 128, 2], 5, 203, "binary_cross_entropy"),      # a batch of 5, a last batch of 3
]
SPLIT_OPTIMIZERS = {
    "adam": lambda: fb.optim.Adam(lr=3e-3),
    "adam_amsgrad_wd": lambda: fb.optim.Adam(lr=3e-3, amsgrad=True, weight_decay=1e-3),
    "adamw": lambda: fb.optim.AdamW(lr=3e-3, weight_decay=1e-2),
    "sgd_nesterov": lambda: fb.optim.SGD(lr=0.01, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: fb.optim.RMSprop(lr=1e-3, centered=True, momentum=0.5),
}


def _split_fit(threads, case, dtype, opt, pen, activation="relu", epochs=2, weights=False):
    sizes, batch, n, loss = case
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(threads)
        rng = np.random.default_rng(11)
        X = rng.standard_normal((n, sizes[0])).astype(dtype)
        y = _loss_data(loss, n, sizes[-1], dtype, rng)
        w = rng.random(n).astype(dtype) + 0.5 if weights else None
        m = fb.MLP(sizes, activation=activation, dtype=dtype, seed=7)
        h = m.fit(X, y, loss=loss, optimizer=SPLIT_OPTIMIZERS[opt](), epochs=epochs,
                  batch_size=batch, sample_weight=w, progress=False,
                  schedule=fb.schedules.StepLR(step_size=3, gamma=0.7), schedule_per="step",
                  **pen)
        return m, np.asarray(h.history["loss"], float)
    finally:
        fb.set_num_threads(before)


def _assert_same_model(a, b):
    for x, y in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(x, y)
    sa, sb = a.engine.optimizer_state(), b.engine.optimizer_state()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(np.asarray(sa[k]), np.asarray(sb[k]))
    assert tuple(a.engine.rng_state()) == tuple(b.engine.rng_state())


@pytest.mark.parametrize("case", SPLIT_CASES, ids=lambda c: "-".join(map(str, c[0])))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", sorted(SPLIT_OPTIMIZERS))
@pytest.mark.parametrize("pen", [{}, {"l1": 1e-4, "l2": 1e-3}], ids=["none", "l1l2"])
def test_split_fit_is_bitwise_the_one_thread_fit(isa, case, dtype, opt, pen):
    (a, la), (b, lb) = (_split_fit(t, case, dtype, opt, pen) for t in (1, 2))
    _assert_same_model(a, b)
    np.testing.assert_array_equal(la, lb)
    assert a.engine.split_epochs == 0
    # the strips are taken wherever the strip products take the whole products' kernels
    # (gemm_path): on the AVX2 and AVX-512 sets; the generic set packs these shapes. (A first
    # epoch always starts by strips; one whose team waited too long hands its rest to one
    # thread and leaves the next epochs to it: the same bits.)
    if isa != "generic":
        assert b.engine.split_epochs >= 1


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "leaky_relu"])
def test_split_fit_with_weights_and_activations(isa, activation):
    case = SPLIT_CASES[1]
    (a, la), (b, lb) = (_split_fit(t, case, "float32", "adam", {"l2": 1e-3},
                                   activation=activation, weights=True) for t in (1, 2))
    _assert_same_model(a, b)
    np.testing.assert_array_equal(la, lb)
    assert (b.engine.split_epochs >= 1) == (isa != "generic")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_fit_epoch_equals_train_steps_and_the_reference(dtype):
    """fit_epoch by strips (2 threads) against train_step on the same mini-batches (the
    permutation's order, per-step learning rates, sample weights): the same parameters bit for
    bit, the loss to rounding (the penalty sums in block order either way); and against the
    NumPy reference."""
    from fastbp.reference import rng as ref_rng

    sizes, batch, n = [20, 128, 5], 16, 200
    r = np.random.default_rng(3)
    X = r.standard_normal((n, sizes[0])).astype(dtype)
    y = r.integers(0, sizes[-1], n)
    w = (r.random(n) + 0.5).astype(dtype)
    steps = -(-n // batch)
    lrs = np.linspace(3e-3, 1e-3, steps)
    pen = {"l1": 1e-4, "l2": 1e-3}
    models = [fb.MLP(sizes, dtype=dtype, seed=1, backend=b)
              for b in ("native", "native", "reference")]
    for m in models:
        m.engine.set_optimizer("adam", {"lr": 1e-3})
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(2)
        loss = models[0].engine.fit_epoch(X, y, "softmax_cross_entropy", pen, w, batch, True,
                                          lrs)
        ref = models[2].engine.fit_epoch(X, y, "softmax_cross_entropy", pen, w, batch, True,
                                         lrs)
    finally:
        fb.set_num_threads(before)
    assert models[0].engine.split_epochs == 1
    seed = models[1].engine.rng_state()[0]
    perm = ref_rng.shuffle_permutation(seed, 0, n)
    total = 0.0
    for k in range(steps):
        idx = perm[batch * k:batch * (k + 1)]
        models[1].engine.set_lr(lrs[k])
        total += models[1].engine.train_step(X[idx], y[idx], "softmax_cross_entropy", pen,
                                             w[idx]) * len(idx)
    np.testing.assert_array_equal(models[0].engine.arena(), models[1].engine.arena())
    assert loss == pytest.approx(total / n, rel=1e-12 if dtype == "float64" else 1e-6)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(models[0].engine.arena(), models[2].engine.arena(), **tol)
    assert loss == pytest.approx(ref, rel=1e-9 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("at", [1, 5, 12])
def test_split_epoch_handed_to_one_thread_midway_keeps_the_bits(isa, at):
    """A split epoch whose team waits too long hands the rest of the epoch to fit_epoch's
    one-thread loop (forced here at a given step): the same parameters, optimizer state,
    counters and losses as one thread throughout; the next epochs stay on one thread."""
    case = SPLIT_CASES[1]
    a, la = _split_fit(1, case, "float64", "adam", {"l2": 1e-3}, weights=True)
    sizes, batch, n, loss = case
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(2)
        rng = np.random.default_rng(11)
        X = rng.standard_normal((n, sizes[0]))
        y = _loss_data(loss, n, sizes[-1], "float64", rng)
        w = rng.random(n) + 0.5
        b = fb.MLP(sizes, activation="relu", dtype="float64", seed=7)
        b.engine._set_split_yield_at(at)
        h = b.fit(X, y, loss=loss, optimizer=SPLIT_OPTIMIZERS["adam"](), epochs=2,
                  batch_size=batch, sample_weight=w, progress=False,
                  schedule=fb.schedules.StepLR(step_size=3, gamma=0.7), schedule_per="step",
                  l2=1e-3)
    finally:
        fb.set_num_threads(before)
    _assert_same_model(a, b)
    np.testing.assert_array_equal(la, np.asarray(h.history["loss"], float))
    assert b.engine.split_epochs == (0 if isa == "generic" else 1)


def test_split_follows_a_change_of_optimizer():
    """The strips' private optimizer state follows the optimizer's state arrays when the
    optimizer changes between fits (SGD's momentum buffer, then Adagrad's sum: one array of
    another kind, then Adam's two): one thread and two give the same bits."""
    case = ([30, 128, 3], 16, 300, "softmax_cross_entropy")
    runs = []
    for threads in (1, 2):
        before = fb.get_num_threads()
        try:
            fb.set_num_threads(threads)
            r = np.random.default_rng(2)
            X = r.standard_normal((case[2], case[0][0]))
            y = r.integers(0, 3, case[2])
            m = fb.MLP(case[0], dtype="float64", seed=3)
            m.engine._set_split_yield_at(-2)  # (never hand over: every epoch by strips)
            for opt in (fb.optim.SGD(lr=0.01, momentum=0.9), fb.optim.Adagrad(lr=0.01),
                        fb.optim.Adam(lr=1e-3)):
                m.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=1,
                      batch_size=case[1], progress=False, l2=1e-3)
            runs.append(m)
        finally:
            fb.set_num_threads(before)
    _assert_same_model(*runs)
    assert runs[1].engine.split_epochs == (0 if fb.get_isa() == "generic" else 3)


def test_split_is_not_taken_where_it_cannot_pay_or_apply():
    """Below 8 steps an epoch, with gradient clipping, with a hidden width not whole strips,
    and above the team's step size, fit_epoch keeps its usual threads."""
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(2)
        r = np.random.default_rng(0)
        X = r.standard_normal((400, 16)).astype(np.float32)
        y = r.integers(0, 3, 400)
        for sizes, batch, opt, n in [([16, 128, 3], 64, fb.optim.Adam(), 400),  # 7 steps
                                     ([16, 128, 3], 16, fb.optim.Adam(clip_norm=1.0), 400),
                                     ([16, 100, 3], 16, fb.optim.Adam(), 400),
                                     ([16, 64, 3], 16, fb.optim.Adam(), 400),
                                     ([16, 128, 128, 3], 16, fb.optim.Adam(), 400)]:
            m = fb.MLP(sizes, seed=0)
            m.fit(X[:n], y[:n], loss="softmax_cross_entropy", optimizer=opt, epochs=1,
                  batch_size=batch, progress=False)
            assert m.engine.split_epochs == 0, sizes
        m = fb.MLP([16, 128, 3], seed=0)
        m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(), epochs=1,
              batch_size=16, progress=False)
        assert m.engine.split_epochs == (0 if fb.get_isa() == "generic" else 1)
    finally:
        fb.set_num_threads(before)


_KEPT_OFF = r'''
import multiprocessing as mp, os, sys, time
import numpy as np
cpus = sorted(os.sched_getaffinity(0))[:2]
os.sched_setaffinity(0, cpus)

def spin(stop):
    while not stop.is_set():
        pass

if __name__ == "__main__":
    import fastbp as fb
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 256)).astype(np.float32)
    y = rng.integers(0, 10, 128)

    def run(threads, seconds=None, steps=None):
        fb.set_num_threads(threads)
        m = fb.MLP([256, 256, 256, 10], dtype="float32", seed=3)
        opt = fb.optim.Adam(lr=1e-3)
        n, t0 = 0, time.perf_counter()
        while (steps is None and time.perf_counter() - t0 < seconds) or (steps is not None and n < steps):
            m.train_step(x, y, "softmax_cross_entropy", opt)
            n += 1
        return m, n

    stop = mp.Event()
    spinners = [mp.Process(target=spin, args=(stop,)) for _ in cpus]
    for p in spinners:
        p.start()
    try:
        team, steps = run(2, seconds=float(sys.argv[1]))
    finally:
        stop.set()
        for p in spinners:
            p.join()
    alone, _ = run(1, steps=steps)
    same = all(np.array_equal(a, b) for a, b in zip(team.parameters(), alone.parameters()))
    print(team.engine.team_backoffs, steps, same)
'''


def test_team_backs_off_when_kept_off_its_cores(tmp_path):
    """Busy processes on the team's two CPUs keep its threads off them about half the time:
    the network goes to one thread for a while (core/team.h TeamBackoff, counted by
    team_backoffs), products included, and the parameters stay bitwise those of one thread."""
    import os
    import subprocess
    import sys

    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs and sched_setaffinity")
    if fb.info()["openmp"] == "none":
        pytest.skip("no OpenMP: no team")
    script = tmp_path / "kept_off.py"
    script.write_text(_KEPT_OFF)
    out = subprocess.run([sys.executable, str(script), "1.5"], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert out.returncode == 0, out.stderr
    backoffs, steps, same = out.stdout.split()
    assert same == "True"
    assert int(steps) > 0 and int(backoffs) >= 1, out.stdout


def test_team_probe_times_one_thread_against_the_team():
    """Every second or so (and first after 8 team calls) a network times a few calls on one
    thread against its team's (core/team.h TeamProbe): when one thread wins (forced here by
    the margin), the network backs off to one thread; the bits are one thread's throughout."""
    if fb.info()["openmp"] == "none" or fb.info()["max_num_threads"] < 2:
        pytest.skip("no team")
    X, y, loss = _data([64, 128, 128, 10], 256, "float32")
    runs = []
    before = fb.get_num_threads()
    for threads in (2, 1):
        fb.set_num_threads(threads)
        try:
            m = fb.MLP([64, 128, 128, 10], dtype="float32", seed=2)
            m.engine._set_team_probe_margin(1e9)
            o = fb.optim.Adam(lr=1e-3)
            for s in range(0, 256, 64):
                for _ in range(4):
                    m.train_step(X[s:s + 64], y[s:s + 64], loss=loss, optimizer=o)
            runs.append(m)
        finally:
            fb.set_num_threads(before)
    team, alone = runs
    assert team.engine.team_probes >= 1 and team.engine.team_backoffs >= 1
    assert alone.engine.team_probes == 0
    for a, b in zip(team.parameters(), alone.parameters()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Steps shared by batch rows (nn/network_rows.cpp): a network of dense layers whose every
# product of a thread's rows (and of its part of the weight gradients) takes the whole
# product's path runs each thread's rows through forward, loss and backward with no meeting,
# then forms the gradients of its part of the arena. The bits are one thread's.
ROWS_CASES = [
    ([32, 64, 64, 64, 1], 64),   # deep narrow, one output (the narrow path, split by rows)
    ([48, 64, 64, 64, 3], 57),   # odd batch (28 + 29 rows), 3 outputs
    ([64, 128, 10], 56),         # the digits shape, 10 outputs
    ([64, 128, 10], 32),         # 3e5 multiply-adds: below the per-operation team's size,
                                 # a team only by rows (kRowsMinStepWork)
]
ROWS_OPTIMIZERS = {
    "adam": (lambda: fb.optim.Adam(lr=3e-3), {}),
    "adam_amsgrad_wd": (lambda: fb.optim.Adam(lr=3e-3, amsgrad=True, weight_decay=1e-3), {}),
    "adam_l1l2": (lambda: fb.optim.Adam(lr=3e-3), {"l1": 1e-4, "l2": 1e-3}),
    "adamw": (lambda: fb.optim.AdamW(lr=3e-3, weight_decay=0.01), {}),
    "sgd_momentum": (lambda: fb.optim.SGD(lr=0.02, momentum=0.9, nesterov=True), {}),
    "rmsprop_centered": (lambda: fb.optim.RMSprop(lr=1e-3, centered=True, momentum=0.5), {}),
    "adagrad": (lambda: fb.optim.Adagrad(lr=1e-2), {}),
}


def _rows_train(threads, sizes, batch, dtype, opt, activation="tanh", fit=False,
                weights=False, output_activation="identity", allowed=True):
    make, pen = ROWS_OPTIMIZERS[opt]
    before = fb.get_num_threads()
    try:
        fb.set_num_threads(threads)
        X, y, loss = _data(sizes, 4 * batch + batch // 2, dtype)
        w = np.random.default_rng(9).uniform(0.2, 2.0, len(X)) if weights else None
        m = fb.MLP(sizes, activation=activation, output_activation=output_activation,
                   dtype=dtype, seed=5)
        m.engine._set_rows_allowed(allowed)
        o = make()
        if fit:
            h = m.fit(X, y, loss=loss, optimizer=o, epochs=2, batch_size=batch,
                      sample_weight=w, grad_norm=False, progress=False, **pen)
            losses = h.history["loss"]
        else:
            losses = [m.train_step(X[s:s + batch], y[s:s + batch], loss=loss, optimizer=o,
                                   sample_weight=None if w is None else w[s:s + batch], **pen)
                      for s in range(0, len(X) - batch + 1, batch)]
        return ([p.copy() for p in m.parameters()], np.asarray(losses, float),
                m.engine.optimizer_state(), m.engine.rows_steps)
    finally:
        fb.set_num_threads(before)


def _need_team():
    if fb.info()["openmp"] == "none" or fb.info()["max_num_threads"] < 2:
        pytest.skip("no team")


@pytest.mark.parametrize("sizes,batch", ROWS_CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", sorted(ROWS_OPTIMIZERS))
def test_rows_step_is_bitwise_the_one_thread_step(isa, sizes, batch, dtype, opt):
    _need_team()
    one = _rows_train(1, sizes, batch, dtype, opt)
    rows = _rows_train(2, sizes, batch, dtype, opt)
    assert one[3] == 0
    assert rows[3] > 0 or isa == "generic"  # (shared by rows; the generic set packs these)
    _assert_same_run(one, rows)


@pytest.mark.parametrize("activation", fb.registry.activations())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rows_fit_with_weights_every_activation(isa, activation, dtype):
    """Every activation's dz by rows and its bias sums afterwards (bias_grad: the lanes past
    the end of a flat 3-unit output hold the derivative's value at zero), with sample weights,
    a last batch of 28 rows, and a sigmoid output; fit and train_step."""
    _need_team()
    sizes, batch = [48, 64, 64, 64, 3], 57
    for fit in (True, False):
        one = _rows_train(1, sizes, batch, dtype, "adam_l1l2", activation, fit=fit,
                          weights=True, output_activation="sigmoid")
        rows = _rows_train(2, sizes, batch, dtype, "adam_l1l2", activation, fit=fit,
                           weights=True, output_activation="sigmoid")
        assert rows[3] > 0 or isa == "generic"
        _assert_same_run(one, rows)


@pytest.mark.parametrize("opt", ["adam", "adam_l1l2"])
@pytest.mark.parametrize("fit", [False, True])
def test_rows_step_matches_the_team_that_shares_each_product(opt, fit):
    _need_team()
    if fb.get_isa() == "generic":
        pytest.skip("the generic kernel set packs these products")
    rows = _rows_train(2, [32, 64, 64, 64, 1], 64, "float32", opt, fit=fit)
    team = _rows_train(2, [32, 64, 64, 64, 1], 64, "float32", opt, fit=fit, allowed=False)
    assert rows[3] > 0 and team[3] == 0
    _assert_same_run(rows, team)


def test_rows_step_is_not_taken_where_it_cannot_apply():
    """Clipping and a penalty that does not fold into the update read the whole gradient
    before it; a packed product's rows are not formed alone; layers other than dense ones
    keep the team that shares each product. The bits are one thread's in each case."""
    _need_team()
    X, y, loss = _data([32, 64, 64, 64, 1], 64, "float32")
    cases = [
        ([32, 64, 64, 64, 1], lambda: fb.optim.Adam(lr=1e-3, clip_norm=0.5), {}, None),
        ([32, 64, 64, 64, 1], lambda: fb.optim.SGD(lr=1e-2, momentum=0.9), {"l2": 1e-3}, None),
        ([32, 64, 64, 64, 1], lambda: fb.optim.Adam(lr=1e-3), {}, "dropout"),
    ]
    before = fb.get_num_threads()
    try:
        for sizes, make, pen, extra in cases:
            runs = []
            for threads in (1, 2):
                fb.set_num_threads(threads)
                if extra == "dropout":
                    m = fb.Sequential([fb.Dense(64, activation="tanh"), fb.Dropout(0.1),
                                       fb.Dense(64, activation="tanh"),
                                       fb.Dense(64, activation="tanh"), fb.Dense(1)],
                                      input_dim=32, dtype="float32", seed=1)
                else:
                    m = fb.MLP(sizes, activation="tanh", dtype="float32", seed=1)
                o = make()
                for _ in range(6):
                    m.train_step(X, y, loss=loss, optimizer=o, **pen)
                runs.append(m)
            assert runs[1].engine.rows_steps == 0
            for a, b in zip(runs[0].parameters(), runs[1].parameters()):
                np.testing.assert_array_equal(a, b)
        fb.set_num_threads(2)
        X2, y2, loss2 = _data([200, 300, 260, 3], 150, "float32")
        m = fb.MLP([200, 300, 260, 3], dtype="float32", seed=1)  # (packed products)
        o = fb.optim.Adam(lr=1e-3)
        for _ in range(3):
            m.train_step(X2, y2, loss=loss2, optimizer=o)
        assert m.engine.rows_steps == 0
    finally:
        fb.set_num_threads(before)
