"""fastbp.sklearn: scikit-learn's estimator checks, accuracy against scikit-learn's own MLP,
the alpha / loss conventions, sample weights, partial_fit, warm start, schedules, pickling,
and native against reference."""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastbp.datasets import load_digits  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Small, fast instances for scikit-learn's checks, every solver family and dtype configuration
# (None follows the input, float32 forced). Each passes every check, except that with
# dtype="float32" forced on float64 data, fitting with integer sample weights and fitting on
# repeated samples agree to float32 rounding (a few ulps), not to the check's rtol=1e-7.
_FAST = dict(hidden_layer_sizes=(16,), max_iter=30, learning_rate_init=0.01, random_state=0)
_LBFGS = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=50, random_state=0)
_CHECKED = [
    MLPClassifier(**_FAST), MLPRegressor(**_FAST),
    MLPClassifier(**_FAST, dtype="float32"),
    MLPRegressor(**dict(_FAST, learning_rate_init=0.05), dtype="float32", solver="sgd",
                 momentum=0.5),
    MLPClassifier(**_LBFGS), MLPRegressor(**_LBFGS), MLPClassifier(**_LBFGS, dtype="float32"),
    MLPClassifier(**_FAST, class_weight="balanced"),
    MLPClassifier(**_FAST, dtype="float64", backend="reference", activation="logistic",
                  solver="rmsprop"),
]


def _expected_failures(est):
    if est.dtype == "float32":
        why = "float32 forced: weights vs repeated samples agree to float32 rounding"
        return {"check_sample_weight_equivalence_on_dense_data": why,
                "check_sample_weight_equivalence_on_sparse_data": why}
    return {}


@parametrize_with_checks(_CHECKED, expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _digits_split():
    X, y = load_digits("float64")
    perm = np.random.default_rng(0).permutation(len(X))
    X, y = X[perm], y[perm]
    return X[:1400], y[:1400], X[1400:], y[1400:]


def test_digits_accuracy_comparable_to_sklearn():
    from sklearn.neural_network import MLPClassifier as SkMLP

    Xtr, ytr, Xte, yte = _digits_split()
    kw = dict(hidden_layer_sizes=(64,), alpha=1e-4, batch_size=64, learning_rate_init=3e-3,
              max_iter=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(Xtr, ytr)
        theirs = SkMLP(**kw).fit(Xtr, ytr)
    acc, ref = ours.score(Xte, yte), theirs.score(Xte, yte)
    assert acc > 0.93
    assert acc > ref - 0.03, (acc, ref)
    # same objective on the same scale: the final training losses are close
    assert abs(ours.loss_curve_[-1] - theirs.loss_curve_[-1]) < 0.05
    assert ours.out_activation_ == "softmax" and list(ours.classes_) == list(range(10))
    assert [c.shape for c in ours.coefs_] == [(64, 64), (64, 10)]
    assert all(c.dtype == np.float64 for c in ours.coefs_)  # the dtype of the input
    assert [b.shape for b in ours.intercepts_] == [(64,), (10,)]
    assert ours.n_layers_ == 3 and ours.n_outputs_ == 10 and ours.n_features_in_ == 64
    proba = ours.predict_proba(Xte)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(ours.classes_[proba.argmax(1)], ours.predict(Xte))
    np.testing.assert_allclose(np.exp(ours.predict_log_proba(Xte)), proba, rtol=1e-10)


def test_regression_r2_on_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (1500, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    reg = MLPRegressor(hidden_layer_sizes=(64, 64), activation="tanh", learning_rate_init=3e-3,
                       batch_size=32, max_iter=60, random_state=0, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X[:1200], y[:1200])
    assert reg.score(X[1200:], y[1200:]) > 0.97
    pred = reg.predict(X[1200:])
    assert pred.shape == (300,) and pred.dtype == np.float64
    assert reg.out_activation_ == "identity"
    assert reg.loss_curve_[-1] < reg.loss_curve_[0] / 10


def _sklearn_objective(est, X, Y, kind, w=None):
    """scikit-learn's loss_ for the current parameters, computed from coefs_ by hand."""
    a = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        a = a @ W.astype(np.float64) + b
        if i < len(est.coefs_) - 1:
            a = np.tanh(a)
    if kind == "multiclass":
        z = a - a.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        li = -logp[np.arange(len(Y)), Y]
    elif kind == "binary":
        p = 1 / (1 + np.exp(-a))
        li = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).sum(1)
    else:
        li = 0.5 * ((a - Y) ** 2).sum(1)
    sw = len(X) if w is None else w.sum()
    data = np.average(li, weights=w)
    return data + 0.5 * est.alpha * sum((W.astype(np.float64) ** 2).sum() for W in est.coefs_) / sw


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression"])
@pytest.mark.parametrize("weighted", [False, True])
def test_alpha_and_loss_follow_sklearn_conventions(kind, weighted):
    # One full-batch epoch at a negligible learning rate: loss_curve_[0] is the loss of the
    # initial parameters, which are (almost exactly) the final ones. It must equal
    # scikit-learn's objective: data loss + 0.5 * alpha * ||W||^2 / sum(weights).
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    if kind == "multiclass":
        y = Y = rng.integers(0, 3, 40)
        est = MLPClassifier
    elif kind == "binary":
        y = rng.choice(np.array(["a", "b"]), 40)
        Y = (y == "b").astype(float).reshape(-1, 1)
        est = MLPClassifier
    elif kind == "multilabel":
        y = Y = rng.integers(0, 2, (40, 3))
        est = MLPClassifier
    else:
        y = Y = rng.standard_normal((40, 2))
        est = MLPRegressor
    w = rng.uniform(0.5, 2.0, 40) if weighted else None
    m = est(hidden_layer_sizes=(7,), activation="tanh", alpha=0.5, solver="sgd", momentum=0,
            learning_rate_init=1e-300, max_iter=1, batch_size=40, dtype="float64",
            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y, sample_weight=w)
    expected = _sklearn_objective(m, X, Y, "binary" if kind == "multilabel" else kind, w)
    np.testing.assert_allclose(m.loss_curve_[0], expected, rtol=1e-10)
    assert m.out_activation_ == {"multiclass": "softmax",
                                 "regression": "identity"}.get(kind, "logistic")


def test_binary_has_one_logit_and_two_probability_columns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, learning_rate_init=0.01,
                            random_state=0).fit(X, y)
    assert clf.coefs_[-1].shape == (8, 1)
    p = clf.predict_proba(X)
    assert p.shape == (100, 2)
    np.testing.assert_allclose(p.sum(1), 1)
    assert set(clf.predict(X)) <= {"no", "yes"}
    assert clf.score(X, y) > 0.9


def test_sample_weight_zero_equals_removal_and_weights_count_like_repeats():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = rng.integers(0, 3, 60)
    w = np.ones(60)
    w[::3] = 0
    # full batches and SGD: the same gradient up to rounding gives the same model (Adam would
    # amplify rounding differences in near-zero gradient components)
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, solver="sgd", learning_rate_init=0.1,
              dtype="float64", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw).fit(X, y, sample_weight=w)
        b = MLPClassifier(**kw).fit(X[w > 0], y[w > 0])
        # weights count like repeated samples (alpha is divided by the sum of the weights)
        c = MLPClassifier(**kw).fit(X, y, sample_weight=2 * w)
        c2 = MLPClassifier(**kw).fit(np.repeat(X[w > 0], 2, 0), np.repeat(y[w > 0], 2))
        d = MLPClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c.predict_proba(X), c2.predict_proba(X), rtol=1e-9, atol=1e-12)
    assert np.abs(a.predict_proba(X) - d.predict_proba(X)).max() > 1e-4


def test_sample_weight_shifts_the_decision():
    # Overlapping classes: up-weighting class 1 makes the model predict it more often.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 2))
    y = (X[:, 0] + 0.8 * rng.standard_normal(400) > 0).astype(int)
    kw = dict(hidden_layer_sizes=(8,), max_iter=40, learning_rate_init=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(**kw).fit(X, y)
        heavy = MLPClassifier(**kw).fit(X, y, sample_weight=np.where(y == 1, 10.0, 1.0))
    assert heavy.predict(X).mean() > plain.predict(X).mean() + 0.1


def test_partial_fit_matches_fit_epoch_by_epoch():
    Xtr, ytr, Xte, _ = _digits_split()
    kw = dict(hidden_layer_sizes=(32,), learning_rate_init=3e-3, batch_size=50,
              random_state=3, tol=0.0, n_iter_no_change=1000)
    inc = MLPClassifier(**kw)
    with pytest.raises(ValueError, match="classes"):
        inc.partial_fit(Xtr, ytr)
    for _ in range(4):
        inc.partial_fit(Xtr, ytr, classes=np.arange(10))
    assert inc.n_iter_ == 1 and len(inc.loss_curve_) == 4 and inc.t_ == 4 * len(Xtr)
    assert inc.loss_curve_[-1] < inc.loss_curve_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = MLPClassifier(**kw, max_iter=4).fit(Xtr, ytr)
    np.testing.assert_allclose(inc.loss_curve_, full.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(inc.predict_proba(Xte), full.predict_proba(Xte), rtol=1e-5,
                               atol=1e-7)
    # the fastbp model counts what it trained, epochs and mini-batches, either way
    steps = 4 * -(-len(Xtr) // 50)
    for est in (inc, full):
        assert (est.fastbp_model_.epochs_trained, est.fastbp_model_.steps_trained) == (4, steps)
    # a subset of the classes is fine, unseen ones are not
    inc.partial_fit(Xtr[ytr < 5], ytr[ytr < 5])
    with pytest.raises(ValueError, match="classes"):
        inc.partial_fit(Xtr, ytr + 1)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(Xtr, Xtr[:, 0])


def test_regressor_partial_fit_and_warm_start():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ [1.0, -2.0, 0.5]
    reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    for _ in range(30):
        reg.partial_fit(X, y)
    assert reg.score(X, y) > 0.9
    # warm_start continues from the current weights instead of re-initialising
    warm = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=3,
                        warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X, y)
        first = warm.loss_curve_[-1]
        warm.fit(X, y)
    assert len(warm.loss_curve_) == 6 and warm.loss_curve_[3] < first
    with pytest.raises(ValueError, match="warm_start"):
        warm.set_params(hidden_layer_sizes=(5,)).fit(X, y)


@pytest.mark.parametrize("est_cls", [MLPClassifier, MLPRegressor])
def test_native_and_reference_agree(est_cls):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 6))
    y = rng.integers(0, 3, 150) if est_cls is MLPClassifier else X @ rng.standard_normal(6)
    kw = dict(hidden_layer_sizes=(12, 9), activation="tanh", max_iter=5, batch_size=20,
              learning_rate_init=0.01, alpha=1e-3, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nat = est_cls(**kw).fit(X, y)
        ref = est_cls(**kw, backend="reference").fit(X, y)
    np.testing.assert_allclose(nat.loss_curve_, ref.loss_curve_, rtol=1e-10)
    for a, b in zip(nat.coefs_ + nat.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    if est_cls is MLPClassifier:
        np.testing.assert_allclose(nat.predict_proba(X), ref.predict_proba(X), rtol=1e-9,
                                   atol=1e-12)
    else:
        np.testing.assert_allclose(nat.predict(X), ref.predict(X), rtol=1e-9, atol=1e-12)


def test_convergence_warning_and_tol_stopping():
    X, y = load_digits()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X[:300], y[:300])
    # a huge tol: no epoch after the first (which sets best_loss_) counts as an improvement,
    # so training stops after 1 + (n_iter_no_change + 1) epochs, as in scikit-learn
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, tol=1e3, n_iter_no_change=3,
                          random_state=0).fit(X[:300], y[:300])
    assert m.n_iter_ == 5


def test_early_stopping_restores_the_best_validation_parameters():
    Xtr, ytr, _, _ = _digits_split()
    clf = MLPClassifier(hidden_layer_sizes=(32,), early_stopping=True, validation_fraction=0.2,
                        n_iter_no_change=3, max_iter=200, learning_rate_init=0.01,
                        random_state=0)
    clf.fit(Xtr, ytr)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    # the restored parameters are the best epoch's: rebuild the held-out split and score it
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state

    rng = check_random_state(0)
    for fan_in, fan_out in ((64, 32), (32, 10)):  # scikit-learn's initialisation draws
        rng.uniform(size=(fan_in, fan_out))
        rng.uniform(size=fan_out)
    rng.randint(0, 2**31 - 1)  # the draw that seeds the network
    onehot = ytr[:, None] == np.arange(10)[None, :]
    _, Xv, _, yv = train_test_split(Xtr, ytr, random_state=rng, test_size=0.2, stratify=onehot)
    assert clf.score(Xv, yv) == pytest.approx(clf.best_validation_score_)
    reg = MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=20,
                       random_state=0, n_iter_no_change=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(Xtr, Xtr[:, 10])
    assert len(reg.validation_scores_) == 20


def test_sgd_learning_rate_schedules():
    X, y = load_digits()
    X, y = X[:200], y[:200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        inv = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling",
                            learning_rate_init=0.1, power_t=0.25, max_iter=3,
                            random_state=0).fit(X, y)
    # scikit-learn's code: learning_rate_init / (t_ + 1) ** power_t after each epoch
    assert inv._optimizer.learning_rate == 0.1 / (3 * 200 + 1) ** 0.25
    assert inv._fb_opt.lr == pytest.approx(0.1 / (3 * 200 + 1) ** 0.25)
    # adaptive: no epoch after the first improves by tol, so the rate is divided by 5 every
    # 2 epochs (at epochs 3, 5, ..., 17) while it is > 1e-6, then training stops (epoch 19)
    ada = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                        learning_rate_init=0.1, tol=1e3, n_iter_no_change=1, max_iter=100,
                        random_state=0).fit(X, y)
    assert ada._optimizer.learning_rate == pytest.approx(0.1 / 5**8)
    assert ada.n_iter_ == 19
    # constant for non-sgd solvers (as in scikit-learn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam = MLPClassifier(hidden_layer_sizes=(8,), learning_rate="invscaling", max_iter=2,
                             random_state=0).fit(X, y)
    assert adam._optimizer.learning_rate == 1e-3 == adam._fb_opt.lr


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_every_solver_and_fastbp_activation_learns(solver):
    X, y = load_digits()
    lr = {"sgd": 0.1, "adagrad": 0.05}.get(solver, 3e-3)
    act = {"sgd": "logistic", "adamw": "gelu", "rmsprop": "silu"}.get(solver, "relu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(32,), activation=act, solver=solver,
                            learning_rate_init=lr, max_iter=15, batch_size=32,
                            random_state=0).fit(X[:1200], y[:1200])
    assert clf.score(X[1200:], y[1200:]) > 0.85


def test_pickle_round_trip_keeps_predictions_and_training_state():
    X, y = load_digits()
    clf = MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    clf.partial_fit(X[:500], y[:500], classes=np.arange(10))
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clf.predict_proba(X), clone.predict_proba(X))
    # optimizer state (Adam moments, step) and the shuffle stream survive: training on agrees
    clf.partial_fit(X[:500], y[:500])
    clone.partial_fit(X[:500], y[:500])
    np.testing.assert_array_equal(clf.predict_proba(X), clone.predict_proba(X))
    for backend in ("native", "reference"):
        reg = MLPRegressor(hidden_layer_sizes=(4,), backend=backend, random_state=0)
        reg.partial_fit(X[:50], y[:50].astype(float))
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), reg.predict(X))


def test_coefs_are_writable_views():
    X = np.eye(3)
    reg = MLPRegressor(hidden_layer_sizes=(), random_state=0, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, np.arange(3.0))
    reg.coefs_ = [np.array([[1.0], [2.0], [3.0]])]
    reg.intercepts_[0][:] = 0.5
    np.testing.assert_allclose(reg.predict(X), [1.5, 2.5, 3.5])
    with pytest.raises(ValueError, match=r"coefs_\[0\]"):
        reg.coefs_ = [np.zeros((2, 1))]


@pytest.mark.parametrize("params, exc, match", [
    (dict(hidden_layer_sizes=(10, 0)), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes="abc"), TypeError, "hidden_layer_sizes"),
    (dict(activation="swish"), ValueError, "activation"),
    (dict(solver="newton"), ValueError, "solver"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(learning_rate="cyclic"), ValueError, "learning_rate"),
    (dict(learning_rate_init=0.0), ValueError, "learning_rate_init"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(max_iter=2.5), TypeError, "max_iter"),
    (dict(momentum=1.5), ValueError, "momentum"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
    (dict(beta_1=1.0), ValueError, "beta_1"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(backend="gpu"), ValueError, "backend"),
    (dict(shuffle="yes"), TypeError, "shuffle"),
])
def test_bad_parameters_name_the_argument(params, exc, match):
    X = np.zeros((10, 2))
    y = np.arange(10) % 2
    with pytest.raises(exc, match=match):
        MLPClassifier(**params).fit(X, y)


def test_bad_sample_weight_and_single_class():
    X = np.zeros((10, 2))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier().fit(X, y, sample_weight=np.ones(9))
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier().fit(X, y, sample_weight=-np.ones(10))
    # one class: fitted as scikit-learn does (binary network, that class predicted everywhere)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = MLPClassifier(max_iter=5).fit(X, np.full(10, 7))
    np.testing.assert_array_equal(one.classes_, [7])
    np.testing.assert_array_equal(one.predict(X[:3]), [7, 7, 7])
    assert one.predict_proba(X[:3]).shape == (3, 2)


def test_verbose_prints_the_loss_every_epoch(capsys):
    X, y = load_digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, verbose=True,
                      random_state=0).fit(X[:100], y[:100])
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out and "Iteration 3, loss = " in out


def test_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = load_digits()
    df = pd.DataFrame(X[:200], columns=[f"px{i}" for i in range(64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(df, y[:200])
        no_names = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X[:50], y[:50])
    assert list(clf.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X[:5])
    assert not hasattr(no_names, "feature_names_in_")


def test_importing_fastbp_does_not_import_sklearn():
    import subprocess
    import sys

    code = "import sys, fastbp; print('sklearn' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "False"
