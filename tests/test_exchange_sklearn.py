"""scikit-learn both ways: from_sklearn / to_sklearn give fitted estimators with equal
predictions (labels exactly, probabilities and outputs to the dtype's rounding)."""
import warnings

import numpy as np
import pytest

import fastbp as fb

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

import fastbp.sklearn as fsk  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 5))
Y_MULTI = np.array(["a", "b", "c"])[RNG.integers(0, 3, 60)]
Y_BIN = RNG.integers(0, 2, 60) * 7 - 2
Y_LABELS = (RNG.random((60, 3)) > 0.5).astype(int)
Y_REG = X[:, :2] @ np.array([[1.0, -2.0], [0.5, 0.3]])


def fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def tol(dtype):
    return 1e-12 if dtype == np.float64 else 1e-5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("y", [Y_MULTI, Y_BIN, Y_LABELS],
                         ids=["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("act", ["identity", "logistic", "tanh", "relu"])
def test_classifier_both_ways(act, y, dtype):
    Xd = X.astype(dtype)
    sk = fit_quietly(MLPClassifier(hidden_layer_sizes=(6, 4), activation=act, max_iter=20,
                                   random_state=0), Xd, y)
    est = fb.from_sklearn(sk)
    assert isinstance(est, fsk.MLPClassifier)
    assert est.coefs_[0].dtype == dtype
    np.testing.assert_array_equal(est.predict(Xd), sk.predict(Xd))
    np.testing.assert_allclose(est.predict_proba(Xd), sk.predict_proba(Xd), atol=tol(dtype))
    np.testing.assert_array_equal(est.classes_, sk.classes_)
    assert est.loss_curve_ == sk.loss_curve_ and est.n_iter_ == sk.n_iter_
    assert est.get_params()["hidden_layer_sizes"] == (6, 4)
    back = est.to_sklearn()
    assert type(back) is MLPClassifier and back.activation == act
    np.testing.assert_array_equal(back.predict(Xd), sk.predict(Xd))
    np.testing.assert_allclose(back.predict_proba(Xd), sk.predict_proba(Xd), atol=tol(dtype))
    for a, b in zip(back.coefs_ + back.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("y", [Y_REG, Y_REG[:, 0]], ids=["2-outputs", "1-output"])
def test_regressor_both_ways(y, dtype):
    Xd = X.astype(dtype)
    sk = fit_quietly(MLPRegressor(hidden_layer_sizes=(7,), max_iter=20, random_state=0), Xd, y)
    est = fb.from_sklearn(sk)
    assert isinstance(est, fsk.MLPRegressor)
    assert est.predict(Xd).shape == sk.predict(Xd).shape
    np.testing.assert_allclose(est.predict(Xd), sk.predict(Xd), rtol=tol(dtype), atol=tol(dtype))
    np.testing.assert_allclose(est.to_sklearn().predict(Xd), sk.predict(Xd), rtol=tol(dtype),
                               atol=tol(dtype))


def test_fastbp_estimator_to_sklearn_and_back():
    est = fit_quietly(fsk.MLPClassifier(hidden_layer_sizes=(5,), activation="sigmoid",
                                        max_iter=10, random_state=1, dtype="float64"), X, Y_MULTI)
    sk = est.to_sklearn()
    assert sk.activation == "logistic"
    np.testing.assert_array_equal(sk.predict(X), est.predict(X))
    np.testing.assert_allclose(sk.predict_proba(X), est.predict_proba(X), atol=1e-12)
    again = fb.from_sklearn(sk)
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))


def test_converted_estimators_keep_training():
    sk = fit_quietly(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, Y_MULTI)
    est = fb.from_sklearn(sk)
    before = est.predict_proba(X)
    est.partial_fit(X, Y_MULTI)
    assert est.n_iter_ >= 1 and not np.array_equal(est.predict_proba(X), before)
    back = est.to_sklearn()
    back.partial_fit(X, Y_MULTI)


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    sk = fit_quietly(MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0), df, Y_REG)
    est = fb.from_sklearn(sk)
    assert list(est.feature_names_in_) == list(df.columns)
    np.testing.assert_allclose(est.predict(df), sk.predict(df), atol=1e-12)


def test_activation_scikit_learn_lacks():
    est = fit_quietly(fsk.MLPRegressor(hidden_layer_sizes=(3,), activation="gelu", max_iter=3),
                      X, Y_REG)
    with pytest.raises(ValueError, match="'gelu'"):
        est.to_sklearn()


def test_solver_scikit_learn_lacks_warns_and_keeps_the_weights():
    est = fit_quietly(fsk.MLPRegressor(hidden_layer_sizes=(3,), solver="rmsprop", max_iter=3),
                      X, Y_REG)
    with pytest.warns(UserWarning, match="solver='rmsprop'"):
        sk = est.to_sklearn()
    assert sk.solver == "adam"
    np.testing.assert_allclose(sk.predict(X), est.predict(X), rtol=1e-5, atol=1e-5)


def test_loss_fastbp_lacks_is_rejected():
    sk = fit_quietly(MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), max_iter=3,
                                  random_state=0), X, np.abs(Y_REG[:, 0]))
    if "loss" in fsk.MLPRegressor().get_params():  # fastbp's estimator has a poisson loss
        np.testing.assert_allclose(fb.from_sklearn(sk).predict(X), sk.predict(X), rtol=1e-12)
        return
    with pytest.raises(ValueError, match="exp"), pytest.warns(UserWarning, match="poisson"):
        fb.from_sklearn(sk)


@pytest.mark.parametrize("bad, err", [
    (MLPClassifier(), ValueError),  # not fitted
    (object(), TypeError),
    ("MLPClassifier", TypeError),
])
def test_bad_input(bad, err):
    with pytest.raises(err, match="fitted|expects"):
        fb.from_sklearn(bad)


def test_unfitted_fastbp_estimator():
    with pytest.raises((ValueError, AttributeError)):
        fsk.MLPClassifier().to_sklearn()
