"""Property-based fuzzing of the public API (hypothesis), native against the reference.

Random shapes, dtypes, memory layouts and values (NaN, +-Inf, huge, denormal, -0.0) go to
predict / train_step / loss_and_gradients / fit, and random call sequences run on a native
and a reference model side by side (a RuleBasedStateMachine). The properties: no crash;
either both backends raise the same documented exception (TypeError, ValueError,
MemoryError) and nothing changes, or both succeed with matching results.

The example counts are small so this runs in seconds with the suite; .ci/fuzz.sh runs it
longer (FASTBP_FUZZ_EXAMPLES, random seed). Crashes found become regression tests below.
"""
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule  # noqa: E402

import fastbp as fb  # noqa: E402

EXAMPLES = int(os.environ.get("FASTBP_FUZZ_EXAMPLES", "25"))
if os.environ.get("FASTBP_SANITIZED"):
    EXAMPLES = max(5, EXAMPLES // 3)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), print_blob=True)
ALLOWED = (TypeError, ValueError, MemoryError)
# (the state machine replaces optimizers with new equal ones on purpose: the model's warning
# about a new optimizer object at every call is expected there)
pytestmark = pytest.mark.filterwarnings("ignore:a new .* replaced the model's optimizer again")

SPECIAL = [np.nan, np.inf, -np.inf, 1e300, -1e300, 3e38, 5e-324, 1e-310, 1e-40, -0.0, 0.0]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
OTHER_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_]
BAD_DTYPES = [np.complex64, np.complex128, "datetime64[s]", "U3", object]


def layouts(draw, a):
    """The same values in another memory layout."""
    kind = draw(st.sampled_from(["C", "F", "strided", "reversed", "list"]))
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided" and a.ndim >= 1:
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if kind == "reversed" and a.ndim >= 1:
        return np.ascontiguousarray(a[::-1])[::-1]
    if kind == "list" and a.dtype != object and a.size < 64:
        return a.tolist()
    return a


@st.composite
def matrices(draw, cols, rows=None, special=True):
    n = draw(st.integers(0, 6) if rows is None else rows)
    c = draw(st.sampled_from([cols] * 6 + [cols - 1, cols + 1, 0]))
    shape = draw(st.sampled_from([(n, c)] * 8 + [(c,), (n, c, 1), ()]))
    pick = draw(st.integers(0, 9))
    if pick < 6:
        dt = FLOAT_DTYPES[pick % 3]
        elems = st.floats(-8, 8, width=64)
        if special:
            elems = st.one_of(elems, st.sampled_from(SPECIAL)) if pick % 2 else elems
        with np.errstate(over="ignore", invalid="ignore"):
            a = np.asarray(draw(hnp.arrays(np.float64, shape, elements=elems))).astype(dt)
    elif pick < 9:
        dt = draw(st.sampled_from(OTHER_DTYPES))
        a = draw(hnp.arrays(dt, shape, elements=hnp.from_dtype(np.dtype(dt)).filter(
            lambda v: not isinstance(v, (int, np.integer)) or abs(int(v)) < 100)
            if dt != np.bool_ else None))
    else:
        dt = draw(st.sampled_from(BAD_DTYPES))
        a = np.zeros(shape, dtype=dt)
    return layouts(draw, a)


def both(fn_native, fn_ref):
    """Run both; either both raise the same allowed exception type, or both return."""
    out = []
    for f in (fn_native, fn_ref):
        try:
            out.append(("ok", f()))
        except ALLOWED as e:
            out.append(("err", type(e)))
    (kn, vn), (kr, vr) = out
    assert kn == kr, f"native {kn} {vn!r} vs reference {kr} {vr!r}"
    if kn == "err":
        assert vn is vr, f"native raised {vn.__name__}, reference {vr.__name__}"
        return None
    return vn, vr


def tolerance(dtype):
    return (2e-3, 2e-3) if dtype == "float32" else (1e-9, 1e-9)


def moderate(X):
    """Comparable inputs: numeric, small values (outputs cannot overflow)."""
    try:
        a = np.asarray(X)
    except Exception:  # noqa: BLE001
        return False
    if a.dtype.kind not in "fiub" or a.size == 0:
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.abs(a.astype(np.float64)) <= 1e3))


SPECS = {
    "mlp": lambda: [fb.Dense(6, "tanh"), fb.Dense(3)],
    "dropout-bn": lambda: [fb.Dense(6, "gelu"), fb.Dropout(0.3), fb.BatchNorm(), fb.Dense(3)],
    "ln-res": lambda: [fb.Dense(5, "sigmoid"), fb.LayerNorm(),
                       fb.Residual([fb.Dense(5, "softplus")]), fb.Dense(3, "identity")],
}


def pair(spec_name, dtype, seed=0):
    return tuple(fb.Sequential(SPECS[spec_name](), input_dim=4, dtype=dtype, seed=seed,
                               backend=b) for b in ("native", "reference"))


@SETTINGS
@given(data=st.data(), spec=st.sampled_from(sorted(SPECS)),
       dtype=st.sampled_from(["float32", "float64"]))
def test_fuzz_predict(data, spec, dtype):
    mn, mr = pair(spec, dtype)
    X = data.draw(matrices(4))
    res = both(lambda: mn.predict(X), lambda: mr.predict(X))
    if res is not None:
        a, b = res
        assert a.shape == b.shape and a.dtype == b.dtype == np.dtype(dtype)
        if moderate(X):
            assert np.isfinite(a).all()
            np.testing.assert_allclose(a, b, *tolerance(dtype))


@st.composite
def targets(draw, loss, n):
    k = 3
    if loss == "softmax_cross_entropy" and draw(st.booleans()):
        lab = draw(st.sampled_from(["ok", "ok", "ok", "high", "neg", "float", "short"]))
        y = np.asarray(draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1))))
        if lab == "high" and n:
            y[-1] = k
        elif lab == "neg" and n:
            y[0] = -1
        elif lab == "float":
            y = y.astype(np.float64)
        elif lab == "short":
            y = y[:-1]
        return layouts(draw, y)
    shape = draw(st.sampled_from([(n, k)] * 6 + [(n, k - 1), (n,), (n + 1, k)]))
    elems = st.floats(0, 1) if loss in ("binary_cross_entropy", "softmax_cross_entropy") \
        else st.floats(-5, 5)
    y = np.asarray(draw(hnp.arrays(np.float64, shape, elements=st.one_of(
        elems, st.sampled_from([np.nan]) if draw(st.integers(0, 9)) == 0 else elems))))
    return layouts(draw, y)


@st.composite
def weights(draw, n):
    kind = draw(st.sampled_from(["none", "none", "ok", "zero", "neg", "short"]))
    if kind == "none":
        return None
    w = np.asarray(draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.1, 3))))
    if kind == "zero":
        w[:] = 0
    elif kind == "neg" and n:
        w[0] = -1
    elif kind == "short":
        w = w[:-1]
    return w


LOSSES = ["mse", "mae", "huber", "binary_cross_entropy", "softmax_cross_entropy"]


def state_of(m):
    eng = m._engine
    st_ = eng.optimizer_state()
    return ([p.copy() for p in m.parameters()], [b.copy() for b in m.buffers()],
            tuple(int(v) for v in eng.rng_state()), int(st_["step"]))


def assert_state_close(mn, mr, dtype, exact_counters=True):
    pn, bn, rn, sn = state_of(mn)
    pr, br, rr, sr = state_of(mr)
    rtol, atol = tolerance(dtype)
    for a, b in zip(pn + bn, pr + br):
        np.testing.assert_allclose(a, b, rtol, atol)
    if exact_counters:
        assert rn == rr and sn == sr


@SETTINGS
@given(data=st.data(), spec=st.sampled_from(sorted(SPECS)),
       dtype=st.sampled_from(["float32", "float64"]), loss=st.sampled_from(LOSSES),
       method=st.sampled_from(["train_step", "loss_and_gradients"]))
def test_fuzz_train_step_and_gradients(data, spec, dtype, loss, method):
    mn, mr = pair(spec, dtype)
    X = data.draw(matrices(4, rows=st.integers(0, 5)))
    n = np.asarray(X).shape[0] if np.ndim(X) >= 1 else 0
    y = data.draw(targets(loss, n))
    w = data.draw(weights(n))
    lp = data.draw(st.sampled_from([{}, {}, {"l2": 0.1}, {"l1": 0.01}, {"delta": 0.5},
                                    {"l2": float("nan")}, {"delta": -1.0}]))
    if loss != "huber":
        lp.pop("delta", None)
    opt = fb.optim.SGD(lr=0.01, momentum=0.5)
    before_n, before_r = state_of(mn), state_of(mr)
    if method == "train_step":
        res = both(lambda: mn.train_step(X, y, loss, opt, sample_weight=w, **lp),
                   lambda: mr.train_step(X, y, loss, fb.optim.SGD(lr=0.01, momentum=0.5),
                                         sample_weight=w, **lp))
    else:
        res = both(lambda: mn.loss_and_gradients(X, y, loss, sample_weight=w, **lp),
                   lambda: mr.loss_and_gradients(X, y, loss, sample_weight=w, **lp))
    if res is None:  # rejected by both: nothing changed
        for m, before in ((mn, before_n), (mr, before_r)):
            after = state_of(m)
            for a, b in zip(before[0] + before[1], after[0] + after[1]):
                np.testing.assert_array_equal(a, b)
            assert before[2:] == after[2:]
        return
    if not moderate(X):
        return
    rtol, atol = tolerance(dtype)
    a, b = res
    if method == "loss_and_gradients":
        assert np.isfinite(a[0])
        np.testing.assert_allclose(a[0], b[0], rtol, atol)
        for ga, gb in zip(a[1], b[1]):
            np.testing.assert_allclose(ga, gb, rtol, atol)
    else:
        assert np.isfinite(a)
        np.testing.assert_allclose(a, b, rtol, atol)
        assert_state_close(mn, mr, dtype)


# ---------------------------------------------------------------------- stateful
class NativeVsReference(RuleBasedStateMachine):
    """Random call sequences on a native and a reference float64 model in lockstep."""

    @initialize(spec=st.sampled_from(sorted(SPECS)), seed=st.integers(0, 2**32))
    def setup(self, spec, seed):
        self.mn, self.mr = pair(spec, "float64", seed)
        self.opts = None
        self.rng = np.random.default_rng(seed)

    def _batch(self, n, bad):
        X = self.rng.uniform(-2, 2, (n, 4))
        y = self.rng.integers(0, 3, n)
        if bad == "nan" and n:
            X[0, 0] = np.nan
        elif bad == "shape":
            X = X[:, :3]
        elif bad == "label" and n:
            y[0] = 7
        return X, y

    @rule(name=st.sampled_from(["sgd", "sgd-nesterov", "sgd-wd"]),
          lr=st.sampled_from([1e-3, 1e-2, 0.05]))
    def set_optimizer(self, name, lr):
        kw = {"sgd": {}, "sgd-nesterov": {"momentum": 0.9, "nesterov": True},
              "sgd-wd": {"momentum": 0.5, "weight_decay": 1e-3}}[name]
        self.opts = (fb.optim.SGD(lr=lr, **kw), fb.optim.SGD(lr=lr, **kw))

    @precondition(lambda self: self.opts is not None)
    @rule(n=st.integers(0, 7), bad=st.sampled_from([None, None, None, "nan", "shape", "label"]),
          loss=st.sampled_from(["softmax_cross_entropy", "mse"]))
    def train_step(self, n, bad, loss):
        X, y = self._batch(n, bad)
        if loss == "mse":
            y = np.eye(3)[np.clip(y, 0, 2)] if n else np.zeros((0, 3))
            if bad == "label":
                y = y[:, :2]
        both(lambda: self.mn.train_step(X, y, loss, self.opts[0]),
             lambda: self.mr.train_step(X, y, loss, self.opts[1]))

    @rule(n=st.integers(0, 7), bad=st.sampled_from([None, None, "nan", "shape"]))
    def predict(self, n, bad):
        X, _ = self._batch(n, bad)
        res = both(lambda: self.mn.predict(X), lambda: self.mr.predict(X))
        if res is not None:
            np.testing.assert_allclose(res[0], res[1], 1e-9, 1e-9)

    @rule(n=st.integers(0, 7), bad=st.sampled_from([None, None, "nan", "label"]))
    def loss_and_gradients(self, n, bad):
        X, y = self._batch(n, bad)
        res = both(lambda: self.mn.loss_and_gradients(X, y, "softmax_cross_entropy"),
                   lambda: self.mr.loss_and_gradients(X, y, "softmax_cross_entropy"))
        if res is not None:
            np.testing.assert_allclose(res[0][0], res[1][0], 1e-9, 1e-9)
            for a, b in zip(res[0][1], res[1][1]):
                np.testing.assert_allclose(a, b, 1e-9, 1e-9)

    @rule(which=st.integers(0, 50), value=st.floats(-2, 2))
    def write_parameter(self, which, value):
        pn, pr = self.mn.parameters(), self.mr.parameters()
        i = which % len(pn)
        pn[i].flat[which % pn[i].size] = value
        pr[i].flat[which % pr[i].size] = value

    @precondition(lambda self: self.opts is not None)
    @rule(n=st.integers(1, 12), bs=st.integers(1, 8), bad=st.sampled_from([None, None, "nan"]))
    def fit(self, n, bs, bad):
        X, y = self._batch(n, bad)
        both(lambda: self.mn.fit(X, y, loss="softmax_cross_entropy", optimizer=self.opts[0],
                                 epochs=1, batch_size=bs, progress=False, grad_norm=False),
             lambda: self.mr.fit(X, y, loss="softmax_cross_entropy", optimizer=self.opts[1],
                                 epochs=1, batch_size=bs, progress=False, grad_norm=False))

    @invariant()
    def same_state(self):
        if hasattr(self, "mn"):
            assert_state_close(self.mn, self.mr, "float64")


NativeVsReference.TestCase.settings = settings(
    max_examples=max(3, EXAMPLES // 3), stateful_step_count=12, deadline=None,
    suppress_health_check=list(HealthCheck))
TestNativeVsReference = NativeVsReference.TestCase


# ---------------------------------------------------------------------- regressions
# Crashes / wrong answers found by fuzzing, kept as plain tests.
def test_regression_uint64_label_above_int64_range():
    for backend in ("native", "reference"):
        m = fb.MLP([2, 3], backend=backend)
        with pytest.raises(ValueError):
            m.loss_and_gradients(np.ones((1, 2)), np.array([2**64 - 1], np.uint64),
                                 "softmax_cross_entropy")


def test_regression_float64_overflow_to_float32_inf():
    for backend in ("native", "reference"):
        m = fb.MLP([2, 3], dtype="float32", backend=backend)
        with pytest.raises(ValueError):
            m.predict(np.array([[1e300, 0.0]]))


def test_regression_batchnorm_fit_with_batches_of_one_changes_nothing():
    # found by NativeVsReference: fit(n=1, batch_size=1) on a BatchNorm model was rejected
    # by the native engine only after its epoch counter had advanced
    for backend in ("native", "reference"):
        m = fb.Sequential([fb.Dense(3), fb.BatchNorm(), fb.Dense(2)], input_dim=2,
                          dtype="float64", backend=backend)
        for n, bs in ((1, 1), (5, 1), (3, 2)):
            before = tuple(m._engine.rng_state())
            with pytest.raises(ValueError):
                m.fit(np.ones((n, 2)), np.zeros(n, np.int64), loss="softmax_cross_entropy",
                      optimizer="sgd", batch_size=bs, progress=False, grad_norm=False)
            assert tuple(m._engine.rng_state()) == before
