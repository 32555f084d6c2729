"""fastbp.sklearn.GridSearchCV / RandomizedSearchCV: the same cv_results_, best_* and refit
as scikit-learn's searches over fastbp's estimators, with the fits' epochs trained in
batched native calls."""
import warnings

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.model_selection import GridSearchCV as SkGrid
from sklearn.model_selection import KFold
from sklearn.model_selection import RandomizedSearchCV as SkRandom
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import _core, search
from fastbp.sklearn import GridSearchCV, MLPClassifier, MLPRegressor, RandomizedSearchCV


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


def _same_results(a, b):
    ra, rb = a.cv_results_, b.cv_results_
    assert sorted(ra) == sorted(rb)
    for k in ra:
        if "time" in k:
            continue
        if k == "params":
            assert ra[k] == rb[k]
        else:
            np.testing.assert_array_equal(np.asarray(ra[k]), np.asarray(rb[k]), err_msg=k)
    for attr in ("best_index_", "best_score_", "best_params_", "n_splits_", "multimetric_"):
        if hasattr(b, attr):
            assert getattr(a, attr) == getattr(b, attr), attr


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn()


@pytest.fixture
def count_calls(monkeypatch):
    calls = []
    real = _core.ensemble_fit_each

    def counted(nets, *args):
        calls.append(len(nets))
        return real(nets, *args)

    monkeypatch.setattr(_core, "ensemble_fit_each", counted)
    return calls


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grid_matches_sklearn_and_batches(digits, dtype, count_calls):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=6, batch_size=32, random_state=0,
                        dtype=dtype, n_iter_no_change=2, tol=0.05)
    grid = {"learning_rate_init": [1e-3, 1e-2, 5e-2], "alpha": [1e-4, 1e-1],
            "solver": ["adam", "sgd"]}
    ours = _quiet(lambda: GridSearchCV(est, grid, cv=3, return_train_score=True).fit(X, y))
    assert count_calls and max(count_calls) == 36  # 12 candidates x 3 folds in one call
    assert len(count_calls) <= 6  # one call per epoch (members stop on their own)
    ref = _quiet(lambda: SkGrid(est, grid, cv=3, return_train_score=True).fit(X, y))
    _same_results(ours, ref)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_array_equal(ours.best_estimator_.coefs_[0], ref.best_estimator_.coefs_[0])


def test_regressor_multimetric_refit_and_sample_weight(digits):
    X, _ = digits
    rng = np.random.default_rng(0)
    y = X @ rng.normal(size=64) + 0.1 * rng.normal(size=len(X))
    w = rng.uniform(0.5, 2.0, len(X))
    est = MLPRegressor(hidden_layer_sizes=(8, 4), max_iter=4, random_state=3,
                       dtype="float64", batch_size=16)
    grid = {"learning_rate_init": [1e-3, 1e-2], "activation": ["relu", "tanh"]}
    kw = {"cv": KFold(3, shuffle=True, random_state=1), "scoring": ["r2", "neg_mean_squared_error"],
              "refit": "r2"}
    ours = _quiet(lambda: GridSearchCV(est, grid, **kw).fit(X, y, sample_weight=w))
    ref = _quiet(lambda: SkGrid(est, grid, **kw).fit(X, y, sample_weight=w))
    _same_results(ours, ref)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_randomized_matches_sklearn(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(12,), max_iter=3, random_state=1,
                        early_stopping=True, validation_fraction=0.2)
    dist = {"learning_rate_init": loguniform(1e-4, 1e-1), "hidden_layer_sizes": [(8,), (12,)],
            "batch_size": [16, 50]}
    kw = {"n_iter": 5, "cv": 2, "random_state": 0}
    ours = _quiet(lambda: RandomizedSearchCV(est, dist, **kw).fit(X, y))
    ref = _quiet(lambda: SkRandom(est, dist, **kw).fit(X, y))
    _same_results(ours, ref)


def test_failed_fits_and_error_score(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    grid = {"learning_rate_init": [1e-3, -1.0]}

    def run(cls, **kw):
        with pytest.warns(FitFailedWarning):
            return _quiet(lambda: cls(est, grid, cv=2, **kw).fit(X, y))

    ours, ref = run(GridSearchCV), run(SkGrid)
    _same_results(ours, ref)
    assert np.isnan(ours.cv_results_["mean_test_score"][1])
    with pytest.raises(ValueError, match="learning_rate_init"):
        _quiet(lambda: GridSearchCV(est, grid, cv=2, error_score="raise").fit(X, y))


def test_unbatchable_search_is_sklearns(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,
                                                         random_state=0))
    grid = {"mlpclassifier__alpha": [1e-4, 1e-2]}
    ours = _quiet(lambda: GridSearchCV(pipe, grid, cv=2).fit(X, y))
    ref = _quiet(lambda: SkGrid(pipe, grid, cv=2).fit(X, y))
    _same_results(ours, ref)


def test_group_candidates():
    est = MLPClassifier(hidden_layer_sizes=(8,))
    cands = [{"alpha": 1e-4}, {"hidden_layer_sizes": 16}, {"alpha": 1e-2},
             {"hidden_layer_sizes": (16,), "solver": "sgd"}, {"no_such_param": 1}]
    groups = search.group_candidates(est, cands, n_splits=2)
    as_sets = sorted(sorted(g) for g in groups)
    assert as_sets == [[(0, 0), (0, 1), (2, 0), (2, 1)], [(1, 0), (1, 1), (3, 0), (3, 1)],
                       [(4, 0)], [(4, 1)]]
    big = search.group_candidates(est, [{"alpha": a} for a in range(10)], 3, max_group=8)
    assert [len(g) for g in big] == [8, 8, 8, 6]
