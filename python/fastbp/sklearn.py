"""scikit-learn estimators backed by the fastbp engine: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` parameter names and meanings
where those apply, and train with fastbp underneath: every epoch is one native call
(``model.fit(..., epochs=1)``: shuffle, mini-batches, forward, backward, update in C++);
Python sees the model once per epoch for the loss curve, convergence, early stopping and the
learning-rate schedule.

This module needs scikit-learn (``pip install fastbp[sklearn]``); ``import fastbp`` does not
import it.

How scikit-learn's conventions map onto fastbp
----------------------------------------------
Loss and outputs
    Multiclass (3+ classes): one logit per class, softmax cross-entropy
    (``out_activation_ = "softmax"``). Binary: ONE logit with the logistic loss
    (``binary_cross_entropy``; ``out_activation_ = "logistic"``), as scikit-learn does, so
    ``coefs_[-1]`` has shape ``(n_hidden, 1)``. Multilabel indicator targets: one logit per
    label, logistic loss. Regression: identity output, squared error.
``alpha`` (L2 penalty)
    scikit-learn adds ``0.5 * alpha * ||W||^2 / n_batch`` to each mini-batch loss (``n_batch``
    = the batch's sum of sample weights). fastbp's ``l2=`` penalty adds ``0.5 * l2 * ||W||^2``,
    so the estimators pass ``l2 = alpha / (s * B)`` where ``B = min(batch_size, n_samples) *
    mean(sample_weight)`` is the (expected) weight of one full batch, and ``s`` is the ratio
    between scikit-learn's objective and fastbp's loss: 1 for softmax cross-entropy, the number
    of outputs ``k`` for the logistic loss (fastbp averages over outputs, scikit-learn sums),
    ``k / 2`` for the squared error (scikit-learn's half squared error, summed over outputs).
    The penalty is applied to the weights, not the biases, as in scikit-learn. The only
    difference from scikit-learn: the last, smaller batch of an epoch uses the same ``l2``.
``loss_curve_``
    ``s`` times fastbp's epoch loss (penalty included): scikit-learn's objective, i.e. the
    same number as scikit-learn's ``loss_`` for classification and single-output regression
    (for ``k``-output regression the squared error is summed over outputs — the objective
    scikit-learn's gradient minimises).
``solver``
    ``"sgd"`` (``momentum``, ``nesterovs_momentum``), ``"adam"`` (``beta_1``, ``beta_2``,
    ``epsilon``), and fastbp's ``"adamw"`` (torch's default decoupled weight decay 0.01, on top
    of ``alpha``), ``"rmsprop"`` and ``"adagrad"`` (both with ``eps=epsilon``). All use
    ``learning_rate_init``. ``"lbfgs"`` is not supported.
``learning_rate``
    As in scikit-learn, used with ``solver="sgd"`` only: ``"constant"``; ``"invscaling"``
    (``lr = learning_rate_init / t ** power_t`` with ``t`` the number of samples seen, updated at
    the end of each epoch); ``"adaptive"`` (divide the learning rate by 5 whenever the training
    loss — or validation score with ``early_stopping`` — fails to improve by ``tol`` for
    more than ``n_iter_no_change`` epochs; stop when that happens with a rate <= 1e-6).
Initialisation
    Glorot-uniform weights and zero biases (scikit-learn's initialisation, except that
    scikit-learn narrows the range for the logistic activation), drawn from ``random_state``.
Input
    Dense arrays; converted to ``dtype`` (float32 by default). Predictions and probabilities
    are returned as float64.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastbp.sklearn needs scikit-learn >= 1.6: pip install 'fastbp[sklearn]' "
        "(or pip install scikit-learn)") from exc

from . import optim as _optim
from .layers import ACTIVATIONS
from .model import MLP

__all__ = ["MLPClassifier", "MLPRegressor", "GridSearchCV", "RandomizedSearchCV"]

_ACTIVATION_ALIASES = {"logistic": "sigmoid", "linear": "identity"}
_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


# ---------------------------------------------------------------------------- validation
def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, low: float = 0.0, high: float = np.inf,
                 low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    bad = (not np.isfinite(v) and high != np.inf) or np.isnan(v) or v < low or v > high \
        or (low_open and v == low) or (high_open and v == high)
    if bad:
        lb = "(" if low_open else "["
        rb = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{rb}, got {value!r}")
    return v


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_sample_weight(sample_weight: Any, n: int) -> Optional[np.ndarray]:
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        w = np.full(n, float(sample_weight))  # type: ignore[arg-type]
    else:
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "fiub":
            raise TypeError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
        w = w.astype(np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},) (one weight per sample), "
                         f"got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight must be finite (got NaN or infinity)")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    if not np.any(w > 0):
        raise ValueError("sample_weight: all weights are zero; at least one weight must be "
                         "positive")
    return w


# ---------------------------------------------------------------------------- base class
class _BaseMLP(BaseEstimator):
    """Shared implementation; use :class:`MLPClassifier` or :class:`MLPRegressor`."""

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, dtype: str = "float32",
                 backend: str = "native"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.backend = backend

    # ------------------------------------------------------------------ to override
    _loss_name: str = ""

    def _prepare_targets(self, y: np.ndarray, first_pass: bool, incremental: bool,
                         classes: Any = None) -> Tuple[np.ndarray, int]:
        """Encode y for the fastbp loss; returns (targets, number of outputs)."""
        raise NotImplementedError

    def __sklearn_is_fitted__(self) -> bool:
        return "_model" in self.__dict__

    def _score_val(self, X: np.ndarray, y: np.ndarray, w: Optional[np.ndarray]) -> float:
        raise NotImplementedError

    # ------------------------------------------------------------------ parameters
    def _validate_params(self) -> Dict[str, Any]:
        h = self.hidden_layer_sizes
        if isinstance(h, numbers.Integral) and not isinstance(h, bool):
            h = [h]
        try:
            h = list(h)
        except TypeError:
            raise TypeError("hidden_layer_sizes must be an int or a sequence of ints, got "
                            f"{self.hidden_layer_sizes!r}") from None
        hidden = []
        for v in h:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"hidden_layer_sizes must hold integers, got {self.hidden_layer_sizes!r}")
            if v <= 0:
                raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}")
            hidden.append(int(v))
        act = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError(f"activation must be one of 'logistic', {', '.join(map(repr, ACTIVATIONS))}, "
                             f"got {self.activation!r}")
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not supported by fastbp; use one of "
                             f"{', '.join(map(repr, _SOLVERS))}")
        p = {
            "hidden": hidden,
            "activation": act,
            "solver": _check_choice("solver", self.solver, _SOLVERS),
            "alpha": _check_float("alpha", self.alpha),
            "learning_rate": _check_choice("learning_rate", self.learning_rate, _LEARNING_RATES),
            "learning_rate_init": _check_float("learning_rate_init", self.learning_rate_init,
                                               low_open=True),
            "power_t": _check_float("power_t", self.power_t),
            "max_iter": _check_int("max_iter", self.max_iter, 1),
            "shuffle": _check_bool("shuffle", self.shuffle),
            "tol": _check_float("tol", self.tol),
            "verbose": int(self.verbose),
            "warm_start": _check_bool("warm_start", self.warm_start),
            "momentum": _check_float("momentum", self.momentum, 0.0, 1.0),
            "nesterovs_momentum": _check_bool("nesterovs_momentum", self.nesterovs_momentum),
            "early_stopping": _check_bool("early_stopping", self.early_stopping),
            "validation_fraction": _check_float("validation_fraction", self.validation_fraction,
                                                0.0, 1.0, high_open=True),
            "beta_1": _check_float("beta_1", self.beta_1, 0.0, 1.0, high_open=True),
            "beta_2": _check_float("beta_2", self.beta_2, 0.0, 1.0, high_open=True),
            "epsilon": _check_float("epsilon", self.epsilon, low_open=True),
            "n_iter_no_change": _check_int("n_iter_no_change", self.n_iter_no_change, 1),
            "dtype": _check_choice("dtype", self._dtype_name(), ("float32", "float64")),
            "backend": _check_choice("backend", self.backend, ("native", "reference")),
        }
        bs = self.batch_size
        if not (isinstance(bs, str) and bs == "auto"):
            _check_int("batch_size", bs, 1)
        if p["early_stopping"] and p["validation_fraction"] == 0.0:
            raise ValueError("validation_fraction must be > 0 when early_stopping=True")
        return p

    def _dtype_name(self) -> Any:
        if self.dtype is None:
            return None
        try:
            return np.dtype(self.dtype).name
        except TypeError:
            return self.dtype

    def _make_optimizer(self, p: Dict[str, Any]) -> _optim.Optimizer:
        lr = p["learning_rate_init"]
        s = p["solver"]
        if s == "sgd":
            mom = p["momentum"]
            return _optim.SGD(lr=lr, momentum=mom, nesterov=p["nesterovs_momentum"] and mom > 0)
        if s == "adam":
            return _optim.Adam(lr=lr, betas=(p["beta_1"], p["beta_2"]), eps=p["epsilon"])
        if s == "adamw":
            return _optim.AdamW(lr=lr, betas=(p["beta_1"], p["beta_2"]), eps=p["epsilon"])
        if s == "rmsprop":
            return _optim.RMSprop(lr=lr, eps=p["epsilon"])
        return _optim.Adagrad(lr=lr, eps=p["epsilon"])

    # ------------------------------------------------------------------ fastbp model
    def _build_model(self, p: Dict[str, Any], n_in: int, n_out: int, seed: int) -> None:
        self._model = MLP([n_in, *p["hidden"], n_out], activation=p["activation"],
                          output_activation="identity", dtype=p["dtype"], seed=seed,
                          backend=p["backend"], init="glorot_uniform")
        self._arch = (n_in, tuple(p["hidden"]), n_out, p["activation"], p["dtype"], p["backend"])

    @property
    def coefs_(self) -> List[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` shaped (units of layer i, units of layer i+1): live,
        writable views into the fastbp model."""
        if "_model" not in self.__dict__:
            raise AttributeError("coefs_ is set by fit")
        return self._model.parameters()[0::2]

    @coefs_.setter
    def coefs_(self, value: Sequence[np.ndarray]) -> None:
        self._assign(value, 0, "coefs_")

    @property
    def intercepts_(self) -> List[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` shaped (units of layer i+1,): live views."""
        if "_model" not in self.__dict__:
            raise AttributeError("intercepts_ is set by fit")
        return self._model.parameters()[1::2]

    @intercepts_.setter
    def intercepts_(self, value: Sequence[np.ndarray]) -> None:
        self._assign(value, 1, "intercepts_")

    def _assign(self, value: Sequence[np.ndarray], start: int, name: str) -> None:
        check_is_fitted(self)
        views = self._model.parameters()[start::2]
        value = list(value)
        if len(value) != len(views):
            raise ValueError(f"{name} needs {len(views)} arrays, got {len(value)}")
        for i, (v, a) in enumerate(zip(views, value)):
            a = np.asarray(a)
            if a.shape != v.shape:
                raise ValueError(f"{name}[{i}] must have shape {v.shape}, got {a.shape}")
        for v, a in zip(views, value):
            v[...] = a

    @property
    def n_layers_(self) -> int:
        """Number of layers, input and output included (as in scikit-learn)."""
        check_is_fitted(self)
        return len(self._arch[1]) + 2

    def to_sklearn(self) -> Any:
        """The equivalent fitted scikit-learn estimator (scikit-learn's activations only);
        see :func:`fastbp.io.sklearn.to_sklearn`."""
        from .io.sklearn import to_sklearn

        return to_sklearn(self)

    @property
    def fastbp_model_(self) -> MLP:
        """The underlying :class:`fastbp.MLP` (outputs are logits)."""
        check_is_fitted(self)
        return self._model

    # pickling / deepcopy: the engine is rebuilt from its parameters and optimizer state
    def __getstate__(self) -> Dict[str, Any]:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        model = state.pop("_model", None)
        if model is not None:
            eng = model.engine
            state["_model_state"] = {
                "params": [p.copy() for p in model.parameters()],
                "optimizer": model.optimizer,
                "optimizer_state": ({k: (v.copy() if isinstance(v, np.ndarray) else v)
                                     for k, v in eng.optimizer_state().items()}
                                    if model.optimizer is not None else None),
                "rng_state": tuple(eng.rng_state()),
                "seed": model.seed,
            }
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        ms = state.pop("_model_state", None)
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:  # pragma: no cover
            self.__dict__.update(state)
        if ms is not None:
            n_in, hidden, n_out, act, dtype, backend = self._arch
            model = MLP([n_in, *hidden, n_out], activation=act, dtype=dtype, seed=ms["seed"],
                        backend=backend, init="glorot_uniform")
            for v, a in zip(model.parameters(), ms["params"]):
                v[...] = a
            if ms["optimizer"] is not None:
                model.set_optimizer(ms["optimizer"])
                model.engine.set_optimizer_state(ms["optimizer_state"])
            model.engine.set_rng_state(*ms["rng_state"])
            self._model = model
            if "_optimizer" in self.__dict__ and ms["optimizer"] is not None:
                self._optimizer = model.optimizer

    # ------------------------------------------------------------------ training
    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False,
             classes: Any = None):
        p = self._validate_params()
        fitted = "_model" in self.__dict__
        if incremental and p["early_stopping"]:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not fitted or (not p["warm_start"] and not incremental)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=self._y_numeric,
                             dtype=(np.float64, np.float32), reset=first_pass)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        n, n_features = X.shape
        w = _check_sample_weight(sample_weight, n)
        Y, n_out = self._prepare_targets(y, first_pass, incremental, classes)
        X = np.ascontiguousarray(X, dtype=p["dtype"])
        if Y.dtype.kind == "f":
            Y = np.ascontiguousarray(Y, dtype=p["dtype"])

        rng = check_random_state(self.random_state)
        if first_pass or self._arch != (n_features, tuple(p["hidden"]), n_out, p["activation"],
                                        p["dtype"], p["backend"]):
            if not first_pass:
                raise ValueError(
                    "warm_start/partial_fit: the network no longer matches the data or the "
                    f"parameters (was {self._arch[:4]}, now "
                    f"{(n_features, tuple(p['hidden']), n_out, p['activation'])}); "
                    "fit with warm_start=False to start afresh")
            self._build_model(p, n_features, n_out, int(rng.randint(0, 2**31 - 1)))
            self.loss_curve_: List[float] = []
            self.t_ = 0
            self.best_loss_ = np.inf
            self.validation_scores_: Any = [] if p["early_stopping"] else None
            self.best_validation_score_: Any = -np.inf if p["early_stopping"] else None
            self._no_improvement_count = 0
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer = self._make_optimizer(p)
            self._no_improvement_count = 0
            if p["early_stopping"]:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
            else:
                self.validation_scores_ = None
                self.best_validation_score_ = None
        self.out_activation_ = self._out_activation
        self._train(p, X, Y, w, rng, incremental)
        return self

    def _scale(self, n_out: int) -> float:
        if self._loss_name == "softmax_cross_entropy":
            return 1.0
        if self._loss_name == "binary_cross_entropy":
            return float(n_out)
        return n_out / 2.0

    def _train(self, p: Dict[str, Any], X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
               rng: np.random.RandomState, incremental: bool) -> None:
        model = self._model
        opt: Any = self._optimizer
        X_val: Any = None
        Y_val: Any = None
        w_val: Any = None
        if p["early_stopping"]:
            strat = Y if (self._is_clf and Y.ndim == 1) else (
                Y.ravel() if (self._is_clf and Y.shape[1] == 1) else None)
            arrays = [X, Y] + ([w] if w is not None else [])
            split = train_test_split(*arrays, random_state=rng,
                                     test_size=p["validation_fraction"], stratify=strat)
            X, X_val, Y, Y_val = split[:4]
            if w is not None:
                w, w_val = split[4], split[5]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small: increase "
                                 "validation_fraction or the number of samples")
            X = np.ascontiguousarray(X)
            Y = np.ascontiguousarray(Y)
        n = X.shape[0]
        if isinstance(self.batch_size, str):
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` larger than the number of samples; it is "
                              "clipped to the number of samples")
            batch = int(np.clip(self.batch_size, 1, n))
        scale = self._scale(model.output_dim)
        wmean = 1.0 if w is None else float(w.mean())
        l2 = p["alpha"] / (scale * batch * wmean)
        wt = None if w is None else np.ascontiguousarray(w, dtype=p["dtype"])
        sgd_sched = p["solver"] == "sgd" and p["learning_rate"] != "constant"

        self.n_iter_ = 0
        best_params = None
        for _ in range(p["max_iter"]):
            h = model.fit(X, Y, loss=self._loss_name, optimizer=opt, epochs=1, batch_size=batch,
                          shuffle=p["shuffle"], sample_weight=wt, progress=False,
                          grad_norm=False, l2=l2)
            loss = float(h.history["loss"][-1]) * scale
            if not np.isfinite(loss):
                raise ValueError("Solver produced a non-finite loss: the input data may "
                                 "contain large values and need to be preprocessed, or "
                                 "learning_rate_init is too large")
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = loss
            self.loss_curve_.append(loss)
            if p["verbose"]:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            # no-improvement count: validation score (early stopping) or training loss
            if p["early_stopping"]:
                score = self._score_val(X_val, Y_val, w_val)
                self.validation_scores_.append(score)
                if p["verbose"]:
                    print(f"Validation score: {score:f}")
                if score < self.best_validation_score_ + p["tol"]:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params = [q.copy() for q in model.parameters()]
            else:
                if loss > self.best_loss_ - p["tol"]:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                self.best_loss_ = min(self.best_loss_, loss)
            if sgd_sched and p["learning_rate"] == "invscaling":
                opt.lr = p["learning_rate_init"] / (self.t_ ** p["power_t"])
            if self._no_improvement_count > p["n_iter_no_change"]:
                what = "Validation score" if p["early_stopping"] else "Training loss"
                msg = (f"{what} did not improve more than tol={p['tol']:f} for "
                       f"{p['n_iter_no_change']} consecutive epochs.")
                if sgd_sched and p["learning_rate"] == "adaptive" and opt.lr > 1e-6:
                    opt.lr = opt.lr / 5.0
                    self._no_improvement_count = 0
                    if p["verbose"]:
                        print(msg + f" Setting learning rate to {opt.lr:f}")
                else:
                    if p["verbose"]:
                        print(msg + " Stopping.")
                    break
            if incremental:
                break
            if self.n_iter_ == p["max_iter"]:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({p['max_iter']}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning)
        if p["early_stopping"] and best_params is not None:
            for v, a in zip(model.parameters(), best_params):
                v[...] = a
        if not all(np.all(np.isfinite(q)) for q in model.parameters()):
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        X = np.ascontiguousarray(X, dtype=self._model.dtype)
        return self._model.predict(X).astype(np.float64)

    def fit(self, X: Any, y: Any, sample_weight: Any = None):
        """Train the network on (X, y) for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights: the loss is ``sum_i w_i l_i / sum_i w_i``.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        return tags


# ---------------------------------------------------------------------------- classifier
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastbp (scikit-learn's API).

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Widths of the hidden layers.
    activation : str, default="relu"
        Hidden activation: scikit-learn's ``"identity"``, ``"logistic"`` (= fastbp's
        ``"sigmoid"``), ``"tanh"``, ``"relu"``, or any other fastbp activation (``"gelu"``,
        ``"silu"``, ``"elu"``, ``"leaky_relu"``, ``"softplus"``).
    solver : {"adam", "sgd", "adamw", "rmsprop", "adagrad"}, default="adam"
    alpha : float, default=1e-4
        L2 penalty, scikit-learn's convention (see the module docstring for the mapping to
        fastbp's ``l2``).
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule, with ``solver="sgd"`` only (as in scikit-learn).
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the samples every epoch (fastbp's seeded shuffle).
    random_state : int, RandomState or None
        Seeds the initialisation, shuffling, dropout and the validation split.
    tol : float, default=1e-4
    verbose : bool, default=False
        Print the loss every epoch.
    warm_start : bool, default=False
        Reuse the previous solution as the initialisation of ``fit``.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified), stop when the validation
        accuracy has not improved by ``tol`` for ``n_iter_no_change`` epochs and restore the
        best parameters.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's (and AdamW's) moment decay rates; ``epsilon`` is also RMSprop's and Adagrad's.
    n_iter_no_change : int, default=10
    dtype : {"float32", "float64"}, default="float32"
        Precision of the fastbp network.
    backend : {"native", "reference"}, default="native"
        fastbp's C++ engine or the NumPy reference.

    Attributes
    ----------
    classes_ : ndarray
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_
    t_ : int
        Number of training samples seen.
    n_iter_ : int
        Epochs run by the last ``fit`` (1 after ``partial_fit``).
    coefs_, intercepts_ : list of ndarray
        Weights (n_in, n_out) and biases per layer, as scikit-learn lays them out.
    n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_
    fastbp_model_ : fastbp.MLP
    """

    _is_clf = True
    _y_numeric = False

    def _prepare_targets(self, y: np.ndarray, first_pass: bool, incremental: bool,
                         classes: Any = None) -> Tuple[np.ndarray, int]:
        check_classification_targets(y)
        kind = type_of_target(y)
        if first_pass:
            if kind == "multilabel-indicator":
                self.classes_ = np.arange(y.shape[1])
                self._kind = "multilabel"
            else:
                if classes is not None:
                    self.classes_ = np.unique(np.asarray(classes))
                else:
                    self.classes_ = unique_labels(y)
                if len(self.classes_) < 2:
                    raise ValueError("MLPClassifier needs samples of at least 2 classes in the "
                                     f"data, but the data contains only one class: "
                                     f"{self.classes_[0]!r}")
                self._kind = "binary" if len(self.classes_) == 2 else "multiclass"
        else:
            if (kind == "multilabel-indicator") != (self._kind == "multilabel"):
                raise ValueError(f"y is {kind} but the model was fitted on {self._kind} targets")
            if self._kind == "multilabel":
                if y.shape[1] != len(self.classes_):
                    raise ValueError(f"y has {y.shape[1]} labels, the model {len(self.classes_)}")
            else:
                new = np.setdiff1d(unique_labels(y), self.classes_)
                if self.warm_start and not incremental and \
                        set(unique_labels(y)) != set(self.classes_.tolist()):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {unique_labels(y)}")
                if len(new):
                    raise ValueError(f"`y` has classes not in `self.classes_`: {new}; "
                                     f"self.classes_ has {self.classes_}")
        if self._kind == "multilabel":
            self._loss_name = "binary_cross_entropy"
            self._out_activation = "logistic"
            Y = np.asarray(y, dtype=np.float64)
            self.n_outputs_ = Y.shape[1]
        else:
            missing = np.setdiff1d(np.unique(y), self.classes_)
            if len(missing):
                raise ValueError(f"`classes={self.classes_}` is missing labels found in y: {missing}")
            idx = np.searchsorted(self.classes_, y)
            if self._kind == "binary":
                self._loss_name = "binary_cross_entropy"
                self._out_activation = "logistic"
                Y = idx.astype(np.float64).reshape(-1, 1)
                self.n_outputs_ = 1
            else:
                self._loss_name = "softmax_cross_entropy"
                self._out_activation = "softmax"
                Y = idx.astype(np.int64)
                self.n_outputs_ = len(self.classes_)
        n_out = 1 if self._kind == "binary" else len(self.classes_)
        return Y, n_out

    def _score_val(self, X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray]) -> float:
        z = self._model.predict(X)
        if self._kind == "multiclass":
            correct = (z.argmax(1) == Y).astype(np.float64)
        elif self._kind == "binary":
            correct = ((z[:, 0] > 0) == (Y[:, 0] > 0.5)).astype(np.float64)
        else:
            correct = np.all((z > 0) == (Y > 0.5), axis=1).astype(np.float64)
        return float(np.average(correct, weights=w))

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None):
        """One epoch over (X, y), continuing from the current state (optimizer included).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), optional
        classes : array-like, optional
            All the classes; required on the first call (not for multilabel targets).

        Returns
        -------
        self
        """
        first = "_model" not in self.__dict__
        if first:
            kind_2d = np.ndim(y) == 2 and np.shape(y)[1] > 1
            if classes is None and not kind_2d:
                raise ValueError("classes must be passed on the first call to partial_fit")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={np.unique(classes)!r}` is not the same as on the "
                             f"first call to partial_fit, {self.classes_!r}")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes if first else None)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), float64.

        Binary problems have one logit ``z``: the columns are ``1 - sigmoid(z)`` and
        ``sigmoid(z)``. Multilabel: one sigmoid per label.
        """
        z = self._logits(X)
        if self._kind == "multiclass":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the sigmoid, without overflow
        if self._kind == "binary":
            return np.hstack([1.0 - p, p])
        return p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        z = self._logits(X)
        if self._kind == "multiclass":
            z = z - z.max(axis=1, keepdims=True)
            return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        if self._kind == "binary":
            z = np.hstack([np.zeros_like(z), z])
            return z - np.logaddexp(z[:, :1], z[:, 1:])
        return -np.logaddexp(0.0, -z)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes (multilabel: a 0/1 indicator matrix)."""
        z = self._logits(X)
        if self._kind == "multiclass":
            return self.classes_[z.argmax(axis=1)]
        if self._kind == "binary":
            return self.classes_[(z[:, 0] > 0).astype(np.intp)]
        return (z > 0).astype(np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# ---------------------------------------------------------------------------- regressor
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastbp (scikit-learn's API).

    Identity output, squared error. The parameters are those of :class:`MLPClassifier`;
    with ``early_stopping`` the validation score is R² (not stratified).

    Attributes
    ----------
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, t_, n_iter_
    coefs_, intercepts_ : list of ndarray
    n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_ ("identity")
    fastbp_model_ : fastbp.MLP
    """

    _is_clf = False
    _y_numeric = True
    _loss_name = "mse"
    _out_activation = "identity"

    def _prepare_targets(self, y: np.ndarray, first_pass: bool, incremental: bool,
                         classes: Any = None) -> Tuple[np.ndarray, int]:
        Y = np.asarray(y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if first_pass:
            self.n_outputs_ = Y.shape[1]
            self._y_1d = np.ndim(y) == 1
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, the model was fitted with "
                             f"{self.n_outputs_}")
        return Y, Y.shape[1]

    def _score_val(self, X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray]) -> float:
        from sklearn.metrics import r2_score

        return float(r2_score(Y, self._model.predict(X).astype(np.float64), sample_weight=w))

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None):
        """One epoch over (X, y), continuing from the current state (optimizer included).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, float64, shape (n_samples,) if fitted on a 1-D y."""
        z = self._logits(X)
        return z.ravel() if z.shape[1] == 1 else z


def _register_exchange_converters() -> None:
    """skl2onnx converters for these estimators, registered when skl2onnx is imported."""
    from .io.skl2onnx import install_import_hook

    install_import_hook()


_register_exchange_converters()

from .search import GridSearchCV, RandomizedSearchCV  # noqa: E402  (needs the estimators above)
