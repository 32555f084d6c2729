"""scikit-learn both ways: :func:`from_sklearn` and ``est.to_sklearn()``.

:func:`from_sklearn` turns a fitted ``sklearn.neural_network.MLPClassifier`` or
``MLPRegressor`` into the fitted ``fastbp.sklearn`` estimator of the same kind;
:func:`to_sklearn` goes the other way for networks scikit-learn can hold (its activations:
identity, logistic, tanh, relu). Both copy the weights (scikit-learn's ``coefs_`` are
(in, out), as fastbp's), the hyper-parameters the target estimator has, the fitted
attributes (``classes_``, ``n_features_in_``, ``feature_names_in_``, ``loss_curve_``,
``loss_``, ``best_loss_``, ``t_``, ``n_iter_``, validation scores) and keep the dtype.
Predictions are equal: the same labels, and probabilities and regression outputs to the
dtype's rounding.

The target estimator is set up by fitting it for one epoch on a few placeholder samples (one
per class) and then overwriting its weights and fitted attributes, so that every internal
attribute is the estimator's own; the optimizer state of that epoch is discarded (a later
``fit`` or ``partial_fit`` starts the optimizer afresh). Hyper-parameters the target does
not have (fastbp's ``dtype`` and ``backend``; a solver scikit-learn lacks) are left at the
target's defaults, with a ``UserWarning`` naming each that had a non-default value.

Needs scikit-learn (``pip install 'fastbp[sklearn]'``).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, List

import numpy as np

from ._tree import missing_extra

__all__ = ["from_sklearn", "to_sklearn"]

_SK_ACTIVATIONS = {"identity": "identity", "linear": "identity", "logistic": "logistic",
                   "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
_FITTED = ("loss_curve_", "loss_", "best_loss_", "t_", "n_iter_", "validation_scores_",
           "best_validation_score_", "feature_names_in_")
_PLACEHOLDER_FIT = {"max_iter": 1, "early_stopping": False, "warm_start": False,
                    "verbose": False, "solver": "adam", "shuffle": False}


def _sklearn() -> Any:
    try:
        from sklearn import neural_network
    except ImportError as exc:
        raise missing_extra("scikit-learn", "sklearn", "fastbp.io.sklearn", exc) from exc
    return neural_network


def _is_multilabel(est: Any) -> bool:
    return getattr(est, "out_activation_", "") == "logistic" and getattr(est, "n_outputs_", 1) > 1


def _placeholder_data(src: Any, is_clf: bool, dtype: np.dtype) -> tuple:
    """A few samples from which fitting the target builds the same network and labels."""
    n_in = int(src.n_features_in_)
    if not is_clf:
        n_out = int(src.n_outputs_)
        y = np.ones((2, n_out)) if n_out > 1 else np.ones(2)  # valid for every loss
        return np.zeros((2, n_in), dtype=dtype), y
    if _is_multilabel(src):
        k = len(src.classes_)
        return np.zeros((k, n_in), dtype=dtype), np.eye(k, dtype=np.int64)
    classes = np.asarray(src.classes_)
    return np.zeros((len(classes), n_in), dtype=dtype), classes


def _transfer_params(src: Any, target: Any, renames: Dict[str, Dict[Any, Any]]) -> Dict[str, Any]:
    """The hyper-parameters of ``src`` that ``target`` can take; warns about the others."""
    theirs = target.get_params()
    defaults = type(src)().get_params()
    params = {}
    for k, v in src.get_params().items():
        v = renames.get(k, {}).get(v, v) if isinstance(v, str) else v
        if k in theirs and _accepts(target, k, v):
            params[k] = v
        elif k not in ("dtype", "backend") and (k not in defaults or v != defaults[k]):
            warnings.warn(f"{type(target).__module__}.{type(target).__name__} has no "
                          f"{k}={v!r}; it keeps its default {theirs.get(k)!r}", UserWarning,
                          stacklevel=3)
    return params


def _accepts(target: Any, key: str, value: Any) -> bool:
    if key != "solver":
        return True
    allowed = getattr(type(target), "_parameter_constraints", {}).get("solver")
    if allowed is None:  # fastbp's estimator: its own solvers, lbfgs where supported
        from .. import sklearn as fsk

        return value in getattr(fsk, "_SOLVERS", (value,))
    return any(getattr(c, "options", ()) and value in c.options for c in allowed)


def _build(target: Any, src: Any, is_clf: bool, dtype: np.dtype, params: Dict[str, Any]) -> Any:
    """Fit ``target`` on placeholder data, then give it ``src``'s weights and attributes."""
    X, y = _placeholder_data(src, is_clf, dtype)
    target.set_params(**{**params, **_PLACEHOLDER_FIT})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target.fit(X, y)
    target.set_params(**{k: params.get(k, type(target)().get_params()[k])
                         for k in _PLACEHOLDER_FIT})
    if getattr(target, "out_activation_", None) != getattr(src, "out_activation_", None):
        raise ValueError(f"the output activation {src.out_activation_!r} (loss "
                         f"{getattr(src, 'loss', None)!r}) has no equivalent in "
                         f"{type(target).__module__}.{type(target).__name__}")
    coefs: List[np.ndarray] = [np.array(c, dtype=dtype) for c in src.coefs_]
    intercepts: List[np.ndarray] = [np.array(b, dtype=dtype) for b in src.intercepts_]
    target.coefs_ = coefs
    target.intercepts_ = intercepts
    for name in _FITTED:
        if hasattr(src, name):
            v = getattr(src, name)
            setattr(target, name, list(v) if isinstance(v, list) else
                    (v.copy() if isinstance(v, np.ndarray) else v))
        elif name in target.__dict__:
            delattr(target, name)
    for name in ("_optimizer", "_fb_opt"):  # the placeholder epoch's optimizer (the
        target.__dict__.pop(name, None)      # estimators' own attribute names for it)
    model = target.__dict__.get("_model")
    if model is not None:  # nor does the fastbp network keep it, or count that epoch
        model.optimizer = None
        model.epochs_trained = model.steps_trained = 0
    return target


def _check_fitted_mlp(est: Any, kinds: tuple, what: str) -> bool:
    if not isinstance(est, kinds):
        raise TypeError(f"{what} expects a fitted {' or '.join(k.__name__ for k in kinds)}, "
                        f"got {type(est).__module__}.{type(est).__qualname__}")
    if getattr(est, "coefs_", None) is None:
        raise ValueError(f"{what}: the {type(est).__name__} is not fitted; call fit first")
    return isinstance(est, kinds[0])


def from_sklearn(estimator: Any) -> Any:
    """The fitted ``fastbp.sklearn`` estimator equal to a fitted scikit-learn MLP.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted.

    Returns
    -------
    fastbp.sklearn.MLPClassifier or fastbp.sklearn.MLPRegressor
        Fitted, in the dtype of ``estimator.coefs_``, predicting what ``estimator`` predicts.

    Raises
    ------
    TypeError
        If ``estimator`` is not one of scikit-learn's MLP estimators.
    ValueError
        If it is not fitted.
    """
    nn = _sklearn()
    from .. import sklearn as fsk

    is_clf = _check_fitted_mlp(estimator, (nn.MLPClassifier, nn.MLPRegressor),
                               "fastbp.from_sklearn")
    target = fsk.MLPClassifier() if is_clf else fsk.MLPRegressor()
    dtype = np.dtype(estimator.coefs_[0].dtype)
    params = _transfer_params(estimator, target, {})
    if target.get_params().get("dtype") is not None:  # a fixed precision: make it the weights'
        params["dtype"] = dtype.name
    return _build(target, estimator, is_clf, dtype, params)


def to_sklearn(estimator: Any) -> Any:
    """The fitted scikit-learn MLP equal to a fitted ``fastbp.sklearn`` estimator.

    Parameters
    ----------
    estimator : fastbp.sklearn.MLPClassifier or fastbp.sklearn.MLPRegressor
        Fitted, with one of scikit-learn's activations (identity, logistic/sigmoid, tanh,
        relu).

    Returns
    -------
    sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted, with fastbp's weights in their dtype.

    Raises
    ------
    TypeError
        If ``estimator`` is not a fastbp.sklearn MLP estimator.
    ValueError
        If it is not fitted, or its activation has no scikit-learn equivalent (the message
        names it).
    """
    nn = _sklearn()
    from .. import sklearn as fsk

    is_clf = _check_fitted_mlp(estimator, (fsk.MLPClassifier, fsk.MLPRegressor),
                               "to_sklearn")
    act = estimator.activation
    if act not in _SK_ACTIVATIONS:
        raise ValueError(f"activation {act!r} has no scikit-learn equivalent; scikit-learn's "
                         "MLPs support identity, logistic, tanh and relu")
    target = nn.MLPClassifier() if is_clf else nn.MLPRegressor()
    dtype = np.dtype(estimator.coefs_[0].dtype)
    params = _transfer_params(estimator, target, {"activation": _SK_ACTIVATIONS})
    return _build(target, estimator, is_clf, dtype, params)
