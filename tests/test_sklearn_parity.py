"""fastbp.sklearn against scikit-learn's own MLP: L-BFGS (objective and gradient from one
native call, checked against central differences in both backends; scipy's L-BFGS-B with
max_iter / max_fun / tol and the same warnings), dtype following the input, the Poisson loss,
class_weight, n_iter_no_change=np.inf, best_loss_ with early stopping, divergence, invscaling."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from fastbp.datasets import load_digits  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _data(kind, n=20, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if kind == "multiclass":
        return X, rng.integers(0, 3, n)
    if kind == "binary":
        return X, rng.integers(0, 2, n)
    if kind == "multilabel":
        return X, rng.integers(0, 2, (n, 3))
    if kind == "poisson":
        return X, rng.poisson(np.exp(0.3 * X[:, 0]))
    return X, rng.standard_normal((n, 2)) if kind == "regression" else rng.standard_normal(n)


def _fitted(kind, backend, **kw):
    X, y = _data(kind)
    est = MLPRegressor if kind in ("regression", "poisson") else MLPClassifier
    extra = {"loss": "poisson"} if kind == "poisson" else {}
    m = est(hidden_layer_sizes=(3,), activation="tanh", solver="lbfgs", max_iter=3, alpha=0.3,
            random_state=0, backend=backend, **extra, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
    return m, X, y


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_objective_gradient_matches_central_differences(backend, kind, weighted):
    m, X, y = _fitted(kind, backend)
    Y, _ = m._prepare_targets(y, False, True)
    w = np.random.default_rng(1).uniform(0.5, 2, len(X)) if weighted else None
    arena = m.fastbp_model_.engine.arena()
    theta = arena.copy()
    l2 = m.alpha / (m._scale(m.n_outputs_) * (len(X) if w is None else w.sum()))
    f0, g = m._objective(X, Y, w, l2)
    eps = 1e-6
    num = np.empty_like(g)
    for i in range(theta.size):
        arena[...] = theta
        arena[i] += eps
        fp = m._objective(X, Y, w, l2)[0]
        arena[i] -= 2 * eps
        fm = m._objective(X, Y, w, l2)[0]
        num[i] = (fp - fm) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    assert np.isfinite(f0)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression1", "poisson"])
def test_lbfgs_reaches_scikit_learns_solution(kind):
    # the same initial network (scikit-learn's draws), the same objective, scipy's L-BFGS-B:
    # the same optimum
    X, y = _data(kind, n=60, d=5)
    cls = (MLPRegressor, SkRegressor) if kind in ("regression1", "poisson") else \
        (MLPClassifier, SkClassifier)
    kw = dict(hidden_layer_sizes=(4,), activation="tanh", solver="lbfgs", alpha=1e-2,
              max_iter=200, tol=1e-8, random_state=0)
    if kind == "poisson":
        kw["loss"] = "poisson"
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = cls[0](**kw).fit(X, y), cls[1](**kw).fit(X, y)
    # 200 iterations from the same start: the same optimum up to where each stopped
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=5e-3, abs=1e-5)
    if kind in ("regression1", "poisson"):
        assert np.corrcoef(ours.predict(X), theirs.predict(X))[0, 1] > 0.99
    else:
        assert (ours.predict(X) == theirs.predict(X)).mean() > 0.95
    assert ours.out_activation_ == theirs.out_activation_


def test_lbfgs_limits_and_warnings():
    X, y = _data("multiclass", n=100)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        m = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=3,
                          random_state=0).fit(X, y)
    assert m.n_iter_ == 3
    with pytest.warns(ConvergenceWarning):
        m = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_fun=5,
                          random_state=0).fit(X, y)
    assert m.n_iter_ <= 5
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(m, "loss_curve_")


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_dtype_follows_the_input_and_can_be_forced(Est, solver):
    X, y = load_digits("float64")
    X, y = X[:200], y[:200]
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, solver=solver, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for data_dt, forced, expect in [(np.float64, None, np.float64),
                                        (np.float32, None, np.float32),
                                        (np.float64, "float32", np.float32),
                                        (np.float32, "float64", np.float64)]:
            m = Est(**kw, dtype=forced).fit(X.astype(data_dt), y)
            assert all(c.dtype == expect for c in m.coefs_ + m.intercepts_)
            out = m.predict_proba(X) if Est is MLPClassifier else m.predict(X)
            assert out.dtype == expect


def test_class_weight_is_sample_weight():
    X, y = _data("multiclass", n=90)
    kw = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=30, random_state=0)
    counts = np.bincount(y)
    balanced = len(y) / (3 * counts[y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw, class_weight="balanced").fit(X, y)
        b = MLPClassifier(**kw).fit(X, y, sample_weight=balanced)
        c = MLPClassifier(**kw, class_weight={0: 1.0, 1: 3.0}).fit(X, y)
        d = MLPClassifier(**kw).fit(X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-10)
    np.testing.assert_allclose(c.predict_proba(X), d.predict_proba(X), rtol=1e-10)
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight="heavy").fit(X, y)
    with pytest.raises(ValueError, match="not in class_weight"):
        MLPClassifier(class_weight={7: 2.0}).fit(X, y)


def test_poisson_predictions_are_positive_and_loss_is_the_deviance():
    X, y = _data("poisson", n=80)
    m = MLPRegressor(hidden_layer_sizes=(4,), loss="poisson", solver="sgd", max_iter=2,
                     learning_rate_init=1e-300, momentum=0, batch_size=80, alpha=0.0,
                     random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
    mu = m.predict(X)
    assert np.all(mu > 0) and m.out_activation_ == "exp"
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0)
    assert m.loss_curve_[-1] == pytest.approx(np.mean(ylogy - y + mu), rel=1e-9)
    with pytest.raises(ValueError, match="poisson"):
        MLPRegressor(loss="poisson").fit(X, -np.ones(80))


def test_n_iter_no_change_inf_best_loss_none_and_divergence():
    X, y = load_digits("float64")
    X, y = X[:100], y[:100]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(hidden_layer_sizes=(8,), tol=1e9, max_iter=30, solver="sgd",
                          n_iter_no_change=np.inf, random_state=0).fit(X, y)
    assert m.n_iter_ == 30 and m._no_improvement_count == 29
    es = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=5,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        es.fit(X, y)
    assert es.best_loss_ is None and len(es.validation_scores_) == es.n_iter_
    # a diverging fit with early stopping records NaN scores and keeps the best weights
    reg = MLPRegressor(hidden_layer_sizes=(20,), activation="identity", solver="sgd",
                       learning_rate_init=1.0, max_iter=15, early_stopping=True,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, y.astype(float))
    assert np.isnan(reg.validation_scores_[-1])
    assert all(np.all(np.isfinite(c)) for c in reg.coefs_)
    # without early stopping: scikit-learn's error
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MLPRegressor(hidden_layer_sizes=(20,), activation="identity", solver="sgd",
                         learning_rate_init=1.0, max_iter=15, random_state=0).fit(
                X, y.astype(float))


def test_invscaling_and_steps_follow_scikit_learn():
    # the same initial network and full-batch SGD without shuffling: scikit-learn's steps
    X, y = _data("regression1", n=50)
    kw = dict(hidden_layer_sizes=(5,), activation="tanh", solver="sgd", momentum=0.0,
              learning_rate="invscaling", learning_rate_init=0.05, power_t=0.3, batch_size=50,
              shuffle=False, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(**kw).fit(X, y)
        theirs = SkRegressor(**kw).fit(X, y)
    assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_target_checks_are_scikit_learns(method):
    """The target checks give what scikit-learn's MLPClassifier gives: its error for a
    continuous target, and no warning when the classes outnumber half the samples (fastbp runs
    scikit-learn's check_classification_targets only for the types it rejects)."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    many = np.arange(40) % 30  # more distinct classes than half the samples

    def run(Est, y, **kw):
        est = Est(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            getattr(est, method)(X, y, **kw)
        return [str(w.message) for w in rec if w.category is UserWarning]

    kw = {"classes": np.arange(30)} if method == "partial_fit" else {}
    ours, theirs = run(MLPClassifier, many, **kw), run(SkClassifier, many, **kw)
    assert ours == theirs == []
    for Est in (MLPClassifier, SkClassifier):
        with pytest.raises(ValueError, match="Unknown label type"):
            run(Est, rng.random(40), **kw)
    # a multiclass-multioutput target: the same error as scikit-learn's, whichever it is
    multi = rng.integers(0, 3, (40, 2))
    errors = []
    for Est in (MLPClassifier, SkClassifier):
        with pytest.raises(ValueError) as err:
            run(Est, multi, **kw)
        errors.append(str(err.value))
    assert errors[0] == errors[1]


def test_score_is_scikit_learns_accuracy():
    """MLPClassifier.score counts integer labels directly: exactly accuracy_score's value;
    any other input goes through accuracy_score itself (the same values and errors)."""
    from sklearn.base import ClassifierMixin
    from sklearn.metrics import accuracy_score

    X, y = _data("multiclass", n=60)
    Xb, yb = _data("binary", n=60)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    binary = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    multilabel = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        binary.fit(Xb, yb)
        multilabel.fit(*_data("multilabel", n=60))
    w = np.random.default_rng(1).uniform(0.5, 2.0, 60)
    unseen = y.copy()
    unseen[::7] = 99  # labels the model never predicts count as errors
    cases = [(clf, y), (clf, y.astype(np.int32)), (clf, y.astype(np.uint8)), (clf, unseen),
             (clf, y[::-1].copy()), (binary, yb), (binary, 1 - yb)]
    for est, target in cases:
        got = est.score(X, target)
        assert type(got) is float
        assert got == accuracy_score(target, est.predict(X))
        assert got == ClassifierMixin.score(est, X, target)
        # the cases that go through accuracy_score: weights, a list, a column, float labels
        assert est.score(X, target, w) == ClassifierMixin.score(est, X, target, w)
        assert est.score(X, list(target)) == got
        assert est.score(X, target.astype(np.float64)) == got
    Xm, Ym = _data("multilabel", n=60)
    assert multilabel.score(Xm, Ym) == ClassifierMixin.score(multilabel, Xm, Ym)
    # errors are accuracy_score's: continuous targets, another length, 2-D multiclass targets
    for bad in (y + 0.5, y[:-1], np.stack([y, y], axis=1)):
        with pytest.raises(ValueError) as ours:
            clf.score(X, bad)
        with pytest.raises(ValueError) as theirs:
            ClassifierMixin.score(clf, X, bad)
        assert str(ours.value) == str(theirs.value)


def test_parameter_names_are_read_once_per_class():
    """get_params / clone read the constructor's parameter names once per class; a subclass
    with parameters of its own gets its own names."""
    from sklearn.base import BaseEstimator, clone

    class Wider(MLPClassifier):
        def __init__(self, extra=3, alpha=0.0001, hidden_layer_sizes=(100,)):
            super().__init__(hidden_layer_sizes, alpha=alpha)
            self.extra = extra

    for cls in (MLPClassifier, MLPRegressor, Wider):
        want = BaseEstimator._get_param_names.__func__(cls)
        assert cls._get_param_names() == want
        assert cls._get_param_names() == want  # (the second call: the cached names)
    assert Wider._get_param_names() == ["alpha", "extra", "hidden_layer_sizes"]
    assert "extra" not in MLPClassifier().get_params()
    est = Wider(extra=5, alpha=0.5, hidden_layer_sizes=(7,))
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin.extra == 5 and twin.alpha == 0.5
    names = MLPClassifier._get_param_names()
    names.append("mutated")  # (callers get a list of their own)
    assert "mutated" not in MLPClassifier._get_param_names()


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
@pytest.mark.parametrize("n_classes", [1, 2, 3, 7])
def test_integer_targets_typed_as_scikit_learn_types_them(dtype, n_classes):
    """Integer labels in a 1-D array skip type_of_target / unique_labels (one np.unique):
    the classes, their dtype and the target kind must be what those functions give."""
    from sklearn.utils.multiclass import type_of_target, unique_labels

    rng = np.random.default_rng(n_classes)
    y = (rng.integers(0, n_classes, 40) * 3 + 2).astype(dtype)
    fast = MLPClassifier()
    Y, n_out = fast._prepare_targets(y, True, False)
    assert fast._kind == ("multiclass" if type_of_target(y) == "multiclass" else "binary")
    want = unique_labels(y)
    assert fast.classes_.dtype == want.dtype and np.array_equal(fast.classes_, want)
    # the same targets through scikit-learn's functions (float labels take that path)
    slow = MLPClassifier()
    Ys, n_slow = slow._prepare_targets(y.astype(np.float64), True, False)
    assert n_out == n_slow and np.array_equal(Y, Ys) and slow._kind == fast._kind


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_predict_shortcut_is_validate_datas_answer(Est):
    """predict skips validate_data for a plain finite 2-D float array of the fitted width
    (fitted without feature names): the same outputs as through validate_data (a list, or an
    ndarray subclass, takes that path), and every other input still meets validate_data's
    errors and warnings."""

    class Sub(np.ndarray):
        pass

    X, y = _data("multiclass" if Est is MLPClassifier else "regression", n=30)
    est = Est(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    methods = ["predict"] + (["predict_proba"] if Est is MLPClassifier else [])
    for method in methods:
        f = getattr(est, method)
        for rows in (X, X[:1], X.astype(np.float32), np.asfortranarray(X), X[:, ::1][::2]):
            np.testing.assert_array_equal(f(rows), f(rows.tolist()))
            np.testing.assert_array_equal(f(rows), f(rows.view(Sub)))
    bad = [X[:, :3], X[0], X[:0], np.where(np.arange(30)[:, None] == 4, np.nan, X),
           np.where(np.arange(30)[:, None] == 7, np.inf, X)]
    for rows in bad:
        with pytest.raises(ValueError) as ours:
            est.predict(rows)
        with pytest.raises(ValueError) as theirs:
            est.predict(rows.view(Sub))  # (a subclass: always through validate_data)
        assert str(ours.value) == str(theirs.value)
    pd = pytest.importorskip("pandas")
    named = Est(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        named.fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        named.predict(X)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_partial_fit_shortcut_is_validate_datas_answer(Est):
    """A later partial_fit on plain arrays skips validate_data (which would pass them through
    unchanged): the same training as through it (ndarray subclasses take that path), and the
    same errors and warnings for every other input."""
    from sklearn.exceptions import DataConversionWarning

    class Sub(np.ndarray):
        pass

    kind = "multiclass" if Est is MLPClassifier else "regression1"
    X, y = _data(kind, n=40)
    if Est is MLPRegressor:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
    extra = {"classes": np.unique(y)} if Est is MLPClassifier else {}
    plain, viewed = (Est(hidden_layer_sizes=(5,), random_state=0) for _ in range(2))
    plain.partial_fit(X[:10], y[:10], **extra)
    viewed.partial_fit(X[:10], y[:10], **extra)
    for lo in (10, 20, 30):
        rows, target = X[lo:lo + 10], y[lo:lo + 10]
        plain.partial_fit(rows, target)
        viewed.partial_fit(rows.view(Sub), target.view(Sub))
        if Est is MLPClassifier:
            plain.partial_fit(rows.astype(np.float32), target.astype(np.int32))
            viewed.partial_fit(rows.astype(np.float32).view(Sub), target.astype(np.int32).view(Sub))
    for a, b in zip(plain.coefs_ + plain.intercepts_, viewed.coefs_ + viewed.intercepts_):
        np.testing.assert_array_equal(a, b)
    nan_y = y[:10].astype(np.float64)
    nan_y[3] = np.nan
    bad = [(X[:10, :3], y[:10]), (np.where(np.arange(10)[:, None] == 2, np.nan, X[:10]), y[:10]),
           (X[:10], y[:9])] + ([(X[:10], nan_y)] if Est is MLPRegressor else [])
    for rows, target in bad:
        with pytest.raises(ValueError) as ours:
            plain.partial_fit(rows, target)
        with pytest.raises(ValueError) as theirs:
            plain.partial_fit(rows.view(Sub), target.view(Sub))
        assert str(ours.value) == str(theirs.value)
    with pytest.warns(DataConversionWarning):
        plain.partial_fit(X[:10], y[:10].reshape(-1, 1))


def test_partial_fit_unseen_classes_error_is_scikit_learns():
    """partial_fit with a label outside classes_ raises scikit-learn's error, with its
    message (for integer and for string labels)."""
    X, y = _data("multiclass", n=30)
    for labels in (y, np.array(["a", "b", "c"])[y]):
        bad = labels.copy()
        bad[5] = 7 if labels.dtype.kind == "i" else "z"
        msgs = []
        for Est in (MLPClassifier, SkClassifier):
            est = Est(hidden_layer_sizes=(3,), random_state=0)
            est.partial_fit(X, labels, classes=np.unique(labels))
            with pytest.raises(ValueError) as err:
                est.partial_fit(X, bad)
            msgs.append(str(err.value))
            est.partial_fit(X, labels[::-1].copy())  # (known classes still train)
        assert msgs[0] == msgs[1] and "classes not in" in msgs[0]


def test_r2_shortcut_is_r2_score():
    """MLPRegressor.score's R² for plain 1-D float targets is r2_score's value bitwise, on
    constructed cases (both dtypes, mixed, constant targets, perfect predictions, two
    samples); anything else is r2_score itself (weights, lists, 2-D, integers, NaN)."""
    from sklearn.base import RegressorMixin
    from sklearn.metrics import r2_score

    from fastbp.sklearn import _r2_plain

    rng = np.random.default_rng(3)
    for dt_y in (np.float32, np.float64):
        for dt_p in (np.float32, np.float64):
            for n in (2, 3, 17, 1000):
                y = rng.standard_normal(n).astype(dt_y) * 3 + 1
                cases = [rng.standard_normal(n), y + 0.1 * rng.standard_normal(n), y,
                         np.full(n, 2.5)]
                for p in cases:
                    p = np.asarray(p).astype(dt_p)
                    assert _r2_plain(y, p) == r2_score(y, p)
                const = np.full(n, 1.25, dt_y)
                for p in (const.astype(dt_p), const.astype(dt_p) + 1):
                    assert _r2_plain(const, p) == r2_score(const, p)
    y = rng.standard_normal(5)
    for bad in (y.tolist(), y.astype(np.int64), y[:1], np.where(np.arange(5) == 2, np.nan, y),
                y.reshape(-1, 1)):
        assert _r2_plain(bad, y.reshape(-1)[:len(np.ravel(bad))]) is None
    X, t = _data("regression1", n=30)
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, t)
    w = rng.uniform(0.5, 2.0, 30)
    for target in (t, t.astype(np.float32)):
        assert reg.score(X, target) == RegressorMixin.score(reg, X, target)
        assert reg.score(X, target, w) == RegressorMixin.score(reg, X, target, w)
    with pytest.raises(ValueError) as ours:
        reg.score(X, np.where(np.arange(30) == 3, np.nan, t))
    with pytest.raises(ValueError) as theirs:
        RegressorMixin.score(reg, X, np.where(np.arange(30) == 3, np.nan, t))
    assert str(ours.value) == str(theirs.value)


def test_score_shortcuts_take_plain_arrays_only():
    """A masked array is an ndarray subclass whose comparisons skip masked entries: score must
    hand it to scikit-learn's metric (which refuses it) rather than count it itself."""
    from sklearn.base import ClassifierMixin, RegressorMixin

    X, y = _data("multiclass", n=30)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        reg.fit(X, y.astype(np.float64))
    for est, base, target in ((clf, ClassifierMixin, y), (reg, RegressorMixin, y * 1.5)):
        masked = np.ma.masked_array(target, mask=np.arange(30) % 3 == 0)
        try:
            want = base.score(est, X, masked)
        except Exception as e:  # noqa: BLE001 - the same exception type, then
            with pytest.raises(type(e)):
                est.score(X, masked)
        else:
            assert est.score(X, masked) == want
