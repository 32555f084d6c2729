"""scikit-learn estimators backed by the fastbp engine: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` parameters, attributes, warnings
and error messages, and train with fastbp underneath. With a stochastic solver every epoch is
one native call (shuffle, mini-batches, forward, backward, update in C++); Python sees the
model once per epoch for the loss curve, convergence, early stopping and the learning-rate
schedule. With ``solver="lbfgs"`` scipy's L-BFGS-B drives the optimisation and every loss and
gradient over the full batch is one native call on the flat parameter arena.

This module needs scikit-learn (``pip install fastbp[sklearn]``; scipy comes with it);
``import fastbp`` does not import it.

How scikit-learn's conventions map onto fastbp
----------------------------------------------
dtype
    As in scikit-learn, the network computes in the dtype of the input: float32 data trains a
    float32 network, anything else float64; ``coefs_``, ``intercepts_`` and the regressor's
    predictions have that dtype. ``dtype="float32"`` (or ``"float64"``) forces a precision —
    float32 is the fast choice for float64 data.
Loss and outputs
    Multiclass (3+ classes): one logit per class, softmax cross-entropy
    (``out_activation_ = "softmax"``). Binary: ONE logit with the logistic loss
    (``out_activation_ = "logistic"``), so ``coefs_[-1]`` has shape ``(n_hidden, 1)``.
    Multilabel indicator targets: one logit per label, logistic loss. Regression:
    ``loss="squared_error"`` (identity output) or ``loss="poisson"`` (the Poisson deviance
    with a log link, ``out_activation_ = "exp"``).
``alpha`` (L2 penalty)
    scikit-learn adds ``0.5 * alpha * ||W||^2 / n_batch`` to each mini-batch loss (``n_batch``
    = the batch's sum of sample weights). fastbp's ``l2=`` penalty adds ``0.5 * l2 * ||W||^2``,
    so the estimators pass ``l2 = alpha / (s * B)`` where ``B`` is the weight of a full batch
    (L-BFGS: the sum of the sample weights; stochastic solvers: ``min(batch_size, n_samples) *
    mean(sample_weight)``) and ``s`` is the ratio between scikit-learn's objective and fastbp's
    loss: 1 for softmax cross-entropy and the Poisson deviance, the number of outputs ``k``
    for the logistic loss (fastbp averages over outputs, scikit-learn sums), ``k / 2`` for the
    squared error (scikit-learn's half squared error, summed over outputs). The penalty
    applies to the weights, not the biases, as in scikit-learn. With a stochastic solver the
    last, smaller batch of an epoch uses the same ``l2``.
``loss_``, ``loss_curve_``
    ``s`` times fastbp's loss (penalty included): scikit-learn's objective, the same number as
    scikit-learn's for classification and single-output regression (for ``k``-output
    regression the squared error is summed over outputs — the objective scikit-learn's
    gradient minimises).
``solver``
    ``"lbfgs"`` (``max_iter``, ``max_fun``, ``tol`` as scipy's ``maxiter``, ``maxfun``,
    ``gtol``, as scikit-learn passes them); ``"sgd"`` (``momentum``, ``nesterovs_momentum``);
    ``"adam"`` (``beta_1``, ``beta_2``, ``epsilon``); and fastbp's ``"adamw"`` (torch's
    default decoupled weight decay 0.01, on top of ``alpha``), ``"rmsprop"`` and ``"adagrad"``
    (both with ``eps=epsilon``). The stochastic solvers use ``learning_rate_init``.
``learning_rate``
    As in scikit-learn, used with ``solver="sgd"`` only: ``"constant"``; ``"invscaling"``
    (after each epoch ``lr = learning_rate_init / (t_ + 1) ** power_t``, ``t_`` the number of
    samples seen, as scikit-learn's code computes it); ``"adaptive"`` (divide the learning
    rate by 5 whenever the training loss — or validation score with ``early_stopping`` —
    fails to improve by ``tol`` for more than ``n_iter_no_change`` epochs; stop when that
    happens with a rate <= 1e-6).
Divergence
    As in scikit-learn: a non-finite loss does not stop training. With ``early_stopping`` the
    validation score of a diverged network is NaN and the best parameters are restored at the
    end; otherwise ``fit`` ends with scikit-learn's "Solver produced non-finite parameter
    weights" ValueError.
``class_weight`` (MLPClassifier)
    ``"balanced"`` or ``{class: weight}``; multiplies the sample weights, as
    ``sklearn.utils.class_weight.compute_sample_weight`` computes them.
Initialisation
    scikit-learn's: weights and biases uniform in ``±sqrt(f / (fan_in + fan_out))`` with
    ``f = 2`` for the logistic activation and 6 otherwise, drawn from ``random_state`` in
    scikit-learn's order (so the same ``random_state`` starts from the same network).
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastbp.sklearn needs scikit-learn >= 1.6: pip install 'fastbp[sklearn]' "
        "(or pip install scikit-learn)") from exc

from . import optim as _optim
from ._data import no_rescan
from .layers import ACTIVATIONS
from .model import MLP

__all__ = ["MLPClassifier", "MLPRegressor", "GridSearchCV", "RandomizedSearchCV"]

_ACTIVATION_ALIASES = {"logistic": "sigmoid", "linear": "identity"}
_STOCHASTIC = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
_SOLVERS = ("lbfgs",) + _STOCHASTIC
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
_NONFINITE_MSG = ("Solver produced non-finite parameter weights. The input data may contain "
                  "large values and need to be preprocessed.")


# ---------------------------------------------------------------------------- validation
def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The '{name}' parameter must be an int in the range [{low}, inf), "
                        f"got {value!r}")
    if value < low:
        raise ValueError(f"The '{name}' parameter must be an int in the range [{low}, inf), "
                         f"got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, low: float = 0.0, high: float = np.inf,
                 low_open: bool = False, high_open: bool = False) -> float:
    def what() -> str:  # (the message only when it is raised: every fit checks nine floats)
        lb = "(" if low_open else "["
        rb = ")" if high_open or high == np.inf else "]"
        return f"The '{name}' parameter must be a float in the range {lb}{low}, {high}{rb}"

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what()}, got {value!r}")
    v = float(value)
    bad = math.isnan(v) or v < low or v > high or (low_open and v == low) \
        or (high_open and v == high) or v == math.inf
    if bad:
        raise ValueError(f"{what()}, got {value!r}")
    return v


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"The '{name}' parameter must be one of "
                         f"{', '.join(map(repr, choices))}, got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"The '{name}' parameter must be True or False, got {value!r}")
    return bool(value)


def _check_n_iter_no_change(value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == np.inf:
        return np.inf
    return float(_check_int("n_iter_no_change", value, 1))


def _check_hidden(sizes: Any) -> List[int]:
    h = sizes
    if isinstance(h, numbers.Integral) and not isinstance(h, bool):
        h = [h]
    try:
        h = list(h)
    except TypeError:
        raise TypeError("hidden_layer_sizes must be an int or a sequence of ints, got "
                        f"{sizes!r}") from None
    hidden = []
    for v in h:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"hidden_layer_sizes must hold integers, got {sizes!r}")
        if v <= 0:
            raise ValueError(f"hidden_layer_sizes must be > 0, got {h}.")
        hidden.append(int(v))
    return hidden


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
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight must be finite (got NaN or infinity)")
    if np.any(w < 0):
        raise ValueError("Negative values in data passed to `sample_weight`")
    if not np.any(w > 0):
        raise ValueError("sample_weight: all weights are zero; at least one weight must be "
                         "positive")
    return w


def _issparse(X: Any) -> bool:
    """A scipy.sparse matrix or array (scipy is imported only when X may be one)."""
    if not hasattr(X, "tocsr"):
        return False
    import scipy.sparse

    return bool(scipy.sparse.issparse(X))


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The shortcuts below take plain NumPy arrays only (`type(a) is np.ndarray`: a subclass, a
# masked array say, may behave otherwise in scikit-learn's functions) whose checks there
# cannot fail or warn; anything else goes through scikit-learn's functions.


def _int_vector(y: Any) -> bool:
    """A plain 1-D NumPy array of integers."""
    return type(y) is np.ndarray and y.ndim == 1 and y.dtype.kind in "iu"


def _finite_floats(a: np.ndarray) -> bool:
    """float32/float64, all finite (the sum's test, as scikit-learn's own check starts)."""
    return a.dtype in _FLOAT_DTYPES and math.isfinite(a.sum())


def _plain_target(y: Any, n: int) -> bool:
    """Whether validate_data (multi_output, reset=False) would pass y through unchanged and
    silently: a plain 1-D NumPy array of n integers, or of n finite floats."""
    return (type(y) is np.ndarray and y.ndim == 1 and y.shape[0] == n
            and (y.dtype.kind in "iu" or _finite_floats(y)))


def _r2_plain(y: Any, y_pred: np.ndarray) -> Optional[float]:
    """scikit-learn's ``r2_score(y, y_pred)`` (one output, no weights, force_finite) by its
    own operations in its dtype, for finite float y and y_pred in 1-D arrays of at least two
    samples, where its checks pass and it warns of nothing; None for any other input."""
    if not (type(y) is np.ndarray and y.ndim == 1 and y_pred.ndim == 1
            and len(y) == len(y_pred) >= 2 and _finite_floats(y) and _finite_floats(y_pred)):
        return None
    dt = np.result_type(y.dtype, y_pred.dtype)
    yt = y.astype(dt, copy=False).reshape((-1, 1))
    yp = y_pred.astype(dt, copy=False).reshape((-1, 1))
    num = np.sum(1.0 * (yt - yp) ** 2, axis=0)
    den = np.sum(1.0 * (yt - np.average(yt, axis=0)) ** 2, axis=0)
    scores = np.ones([1], dtype=num.dtype)
    valid = (den != 0) & (num != 0)
    scores[valid] = 1 - (num[valid] / den[valid])
    scores[(num != 0) & ~(den != 0)] = 0.0
    return float(np.average(scores))


def _as_rows(X: Any, dtype: str) -> Any:
    """X as the engine takes it: a C-contiguous array, or CSR rows (int64 indices) for sparse
    input, in ``dtype``."""
    if not _issparse(X):
        return np.ascontiguousarray(X, dtype=dtype)
    X = X.tocsr().astype(dtype, copy=False)
    X.indices = X.indices.astype(np.int64, copy=False)
    X.indptr = X.indptr.astype(np.int64, copy=False)
    return X


def _csr(X: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    return X.data, X.indices, X.indptr


def _lbfgs_warning(res: Any, max_iter: int) -> int:
    """Number of L-BFGS iterations run; warns as scikit-learn does when scipy did not
    converge."""
    n_iter = min(int(res.nit), max_iter)
    if res.status != 0:
        msg = (f"lbfgs failed to converge after {n_iter} iteration(s) (status={res.status}):\n"
               f"{res.message}\n")
        if n_iter == max_iter:
            msg += ("\nIncrease the number of iterations to improve the convergence "
                    f"(max_iter={max_iter}).")
        msg += ("\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html")
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return n_iter


class _LazyRandomState:
    """``check_random_state(seed)`` made on first use (call it): one per ``fit``, as
    scikit-learn makes it, but a ``partial_fit`` that draws nothing does not seed a
    RandomState (~90 us)."""

    def __init__(self, seed: Any) -> None:
        self._seed = seed
        self._rs: Optional[np.random.RandomState] = None

    def __call__(self) -> np.random.RandomState:
        rs = self._rs
        if rs is None:
            rs = self._rs = check_random_state(self._seed)
        return rs


class _LearningRate:
    """``estimator._optimizer``: the stochastic solver's current ``learning_rate`` in
    scikit-learn's units (scikit-learn's attribute name); writing it sets the solver's rate."""

    def __init__(self, est: "_BaseMLP"):
        self._est = est

    @property
    def learning_rate(self) -> float:
        return float(self._est._learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._est._set_learning_rate(value)


# ---------------------------------------------------------------------------- base class
class _BaseMLP(BaseEstimator):
    """Shared implementation; use :class:`MLPClassifier` or :class:`MLPRegressor`."""

    _is_clf = False
    _y_numeric = True
    _loss_name: str = ""
    _out_activation: str = ""

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 dtype: Any = None, backend: str = "native"):
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
        self.max_fun = max_fun
        self.dtype = dtype
        self.backend = backend

    @classmethod
    def _get_param_names(cls) -> List[str]:
        # scikit-learn reads the names off __init__'s signature on every get_params (so on
        # every clone: ~0.1 ms each, ~40 times in a small grid search); they are read once
        # per class here (a subclass, with a signature of its own, gets its own list)
        names = cls.__dict__.get("_fb_param_names")
        if names is None:
            names = tuple(super()._get_param_names())
            cls._fb_param_names = names
        return list(names)

    # ------------------------------------------------------------------ to override
    def _prepare_targets(self, y: np.ndarray, first_pass: bool, incremental: bool,
                         classes: Any = None) -> Tuple[np.ndarray, int]:
        """Encode y for the fastbp loss; returns (targets, number of outputs)."""
        raise NotImplementedError

    def _score_outputs(self, z: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray]) -> float:
        raise NotImplementedError

    def _sample_weight(self, sample_weight: Any, y: np.ndarray,
                       incremental: bool) -> Optional[np.ndarray]:
        return _check_sample_weight(sample_weight, len(y))

    def __sklearn_is_fitted__(self) -> bool:
        return "_model" in self.__dict__

    # ------------------------------------------------------------------ parameters
    def _validate_params(self) -> Dict[str, Any]:
        act = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError("The 'activation' parameter must be one of 'logistic', "
                             f"{', '.join(map(repr, ACTIVATIONS))}, got {self.activation!r}")
        p = {
            "hidden": _check_hidden(self.hidden_layer_sizes),
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
            "n_iter_no_change": _check_n_iter_no_change(self.n_iter_no_change),
            "max_fun": _check_int("max_fun", self.max_fun, 1),
            "dtype": self._forced_dtype(),
            "backend": _check_choice("backend", self.backend, ("native", "reference")),
        }
        bs = self.batch_size
        if not (isinstance(bs, str) and bs == "auto"):
            _check_int("batch_size", bs, 1)
        if p["early_stopping"] and p["validation_fraction"] == 0.0 and \
                p["solver"] != "lbfgs":
            raise ValueError("validation_fraction must be > 0 when early_stopping=True")
        return p

    def _forced_dtype(self) -> Optional[str]:
        """The precision ``dtype=`` forces, or None to follow the input."""
        if self.dtype is None:
            return None
        try:
            name = np.dtype(self.dtype).name
        except TypeError:
            name = self.dtype
        return _check_choice("dtype", name, ("float32", "float64"))

    def _make_optimizer(self, p: Dict[str, Any], s: float) -> _optim.Optimizer:
        """The fastbp optimizer that takes scikit-learn's steps on fastbp's loss, which is
        scikit-learn's objective divided by ``s``: SGD's rate is multiplied by ``s`` and the
        adaptive methods' epsilon divided by it (their steps do not depend on the gradient's
        scale otherwise)."""
        lr = p["learning_rate_init"]
        eps = p["epsilon"] / s
        name = p["solver"]
        self._learning_rate = lr
        self._grad_scale = s
        if name == "sgd":
            mom = p["momentum"]
            return _optim.SGD(lr=lr * s, momentum=mom,
                              nesterov=p["nesterovs_momentum"] and mom > 0)
        if name == "adam":
            return _optim.Adam(lr=lr, betas=(p["beta_1"], p["beta_2"]), eps=eps)
        if name == "adamw":
            return _optim.AdamW(lr=lr, betas=(p["beta_1"], p["beta_2"]), eps=eps)
        if name == "rmsprop":
            return _optim.RMSprop(lr=lr, eps=eps)
        return _optim.Adagrad(lr=lr, eps=eps)

    def _set_learning_rate(self, value: float) -> None:
        """Set the stochastic solver's rate, in scikit-learn's units."""
        opt = self._fb_opt
        if opt is None:
            raise AttributeError("the learning rate is set by fit with a stochastic solver")
        self._learning_rate = float(value)
        scale = self._grad_scale if self.solver == "sgd" else 1.0
        opt.lr = self._learning_rate * scale

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    # ------------------------------------------------------------------ fastbp model
    def _build_model(self, p: Dict[str, Any], sizes: List[int], seed: int, dtype: str,
                     values: Sequence[np.ndarray]) -> None:
        """A fresh fastbp network of the given layer widths holding ``values`` (scikit-learn's
        order: every weight matrix, then every bias vector)."""
        model = MLP(sizes, activation=p["activation"], output_activation="identity",
                    dtype=dtype, seed=seed, backend=p["backend"], init="glorot_uniform")
        params = model.parameters()
        k = len(sizes) - 1
        for i in range(k):
            params[2 * i][...] = values[i]
            params[2 * i + 1][...] = values[k + i]
        self._model = model
        self._arch = (sizes[0], tuple(sizes[1:-1]), sizes[-1], p["activation"], dtype,
                      p["backend"])
        self.n_layers_ = len(sizes)
        self._fb_opt: Optional[_optim.Optimizer] = None

    def _initialize(self, p: Dict[str, Any], sizes: List[int], dtype: str,
                    rng: np.random.RandomState) -> None:
        """First fit: scikit-learn's initial weights and biases, drawn from ``rng`` in
        scikit-learn's order, and fresh training state."""
        factor = 2.0 if p["activation"] == "sigmoid" else 6.0
        coefs, biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
            biases.append(rng.uniform(-bound, bound, fan_out))
        self.__dict__.pop("_pending_coefs", None)
        self.__dict__.pop("_pending_intercepts", None)
        self._build_model(p, sizes, int(rng.randint(0, 2**31 - 1)), dtype, coefs + biases)
        self.n_iter_ = 0
        self.t_ = 0
        for name in ("loss_curve_", "best_loss_", "validation_scores_",
                     "best_validation_score_", "_best_arena", "loss_"):
            self.__dict__.pop(name, None)
        if p["solver"] != "lbfgs":
            self._init_stochastic_state(p)

    def _init_stochastic_state(self, p: Dict[str, Any]) -> None:
        self.loss_curve_: List[float] = []
        self._no_improvement_count = 0
        self._best_arena = self._model.engine.arena().copy()
        if p["early_stopping"]:
            self.validation_scores_: Any = []
            self.best_validation_score_: Any = -np.inf
            self.best_loss_: Any = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _adopt_pending(self, p: Dict[str, Any], sizes: List[int], dtype: str,
                       rng: np.random.RandomState) -> None:
        """Build the network from ``coefs_`` / ``intercepts_`` assigned before any fit."""
        coefs = [np.asarray(c) for c in self.__dict__.pop("_pending_coefs")]
        biases = [np.asarray(b).reshape(-1) for b in self.__dict__.pop("_pending_intercepts", [])]
        got = [coefs[0].shape[0]] + [c.shape[1] for c in coefs] if coefs else []
        if got != sizes or len(biases) != len(coefs) or \
                any(b.shape[0] != c.shape[1] for b, c in zip(biases, coefs)):
            raise ValueError(f"coefs_ and intercepts_ assigned before fit do not match the "
                             f"layer widths {sizes}")
        self._build_model(p, sizes, int(rng.randint(0, 2**31 - 1)), dtype, coefs + biases)
        for name, value in (("n_iter_", 0), ("t_", 0)):
            self.__dict__.setdefault(name, value)

    def _check_arch(self, p: Dict[str, Any], sizes: List[int]) -> None:
        now = (sizes[0], tuple(sizes[1:-1]), sizes[-1], p["activation"])
        if self._arch[:4] != now or self._arch[5] != p["backend"]:
            raise ValueError(
                "warm_start/partial_fit: the network no longer matches the data or the "
                f"parameters (was {self._arch[:4]}, now {now}); fit with warm_start=False to "
                "start afresh")

    # ------------------------------------------------------------------ attributes
    @property
    def coefs_(self) -> List[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` shaped (units of layer i, units of layer i+1): live,
        writable views into the fastbp network. Assigning a list copies it into the network
        (before the first fit, it is the network ``partial_fit`` starts from)."""
        if "_model" in self.__dict__:
            return self._model.parameters()[0::2]
        if "_pending_coefs" in self.__dict__:
            return self.__dict__["_pending_coefs"]
        raise AttributeError("coefs_ is set by fit")

    @coefs_.setter
    def coefs_(self, value: Sequence[np.ndarray]) -> None:
        if "_model" in self.__dict__:
            self._assign(value, 0, "coefs_")
        else:
            self.__dict__["_pending_coefs"] = value

    @property
    def intercepts_(self) -> List[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` shaped (units of layer i+1,): live views."""
        if "_model" in self.__dict__:
            return self._model.parameters()[1::2]
        if "_pending_intercepts" in self.__dict__:
            return self.__dict__["_pending_intercepts"]
        raise AttributeError("intercepts_ is set by fit")

    @intercepts_.setter
    def intercepts_(self, value: Sequence[np.ndarray]) -> None:
        if "_model" in self.__dict__:
            self._assign(value, 1, "intercepts_")
        else:
            self.__dict__["_pending_intercepts"] = value

    def _assign(self, value: Sequence[np.ndarray], start: int, name: str) -> None:
        views = self._model.parameters()[start::2]
        value = list(value)
        if len(value) != len(views):
            raise ValueError(f"{name} needs {len(views)} arrays, got {len(value)}")
        arrays = [np.asarray(a) for a in value]
        for i, (v, a) in enumerate(zip(views, arrays)):
            if a.shape != v.shape:
                raise ValueError(f"{name}[{i}] must have shape {v.shape}, got {a.shape}")
        for v, a in zip(views, arrays):
            v[...] = a

    @property
    def _optimizer(self) -> _LearningRate:
        """The stochastic solver's state as scikit-learn names it (``learning_rate``)."""
        if self.__dict__.get("_fb_opt") is None:
            raise AttributeError("_optimizer is set by fit with a stochastic solver")
        return _LearningRate(self)

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
        state = dict(super().__getstate__())
        model = state.pop("_model", None)
        if model is not None:
            eng = model.engine
            state["_model_state"] = {
                "params": [q.copy() for q in model.parameters()],
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
        super().__setstate__(state)
        if ms is not None:
            n_in, hidden, n_out, act, dtype, backend = self._arch
            model = MLP([n_in, *hidden, n_out], activation=act, dtype=dtype, seed=ms["seed"],
                        backend=backend, init="glorot_uniform")
            for v, a in zip(model.parameters(), ms["params"]):
                v[...] = a
            if ms["optimizer"] is not None:
                model.set_optimizer(ms["optimizer"], undoable=False)
                model.engine.set_optimizer_state(ms["optimizer_state"])
            model.engine.set_rng_state(*ms["rng_state"])
            self._model = model

    # ------------------------------------------------------------------ training
    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False,
             classes: Any = None):
        p = self._validate_params()
        if incremental and p["early_stopping"]:
            raise ValueError("partial_fit does not support early_stopping=True")
        has_net = "_model" in self.__dict__ or "_pending_coefs" in self.__dict__
        first_pass = not has_net or (not p["warm_start"] and not incremental)
        # (a later partial_fit / warm-started fit on plain arrays: validate_data would pass
        # them through unchanged; see _plain_rows)
        if first_pass or not (self._plain_rows(X) and _plain_target(y, X.shape[0])):
            X, y = validate_data(self, X, y, multi_output=True, y_numeric=self._y_numeric,
                                 dtype=(np.float64, np.float32), reset=first_pass,
                                 accept_sparse=["csr", "csc"])
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y, n_out = self._prepare_targets(y, first_pass, incremental, classes)
        w = self._sample_weight(sample_weight, y, incremental)
        sizes = [X.shape[1], *p["hidden"], n_out]
        rng = _LazyRandomState(self.random_state)
        if first_pass:
            dtype = p["dtype"] or ("float32" if X.dtype == np.float32 else "float64")
            self._initialize(p, sizes, dtype, rng())
        elif "_model" not in self.__dict__:
            self._adopt_pending(p, sizes, p["dtype"] or X.dtype.name, rng())
        else:
            self._check_arch(p, sizes)
        self.n_outputs_ = n_out
        self.out_activation_ = self._out_activation
        dt = self._model.dtype
        X = _as_rows(X, dt)
        if Y.dtype.kind == "f":
            Y = np.ascontiguousarray(Y, dtype=dt)
        if p["solver"] == "lbfgs":
            self._fit_lbfgs(p, X, Y, w)
        else:
            self._fit_stochastic(p, X, Y, w, rng, incremental)
        if not np.all(np.isfinite(self._model.engine.arena())):
            raise ValueError(_NONFINITE_MSG)
        return self

    def _scale(self, n_out: int) -> float:
        """scikit-learn's objective divided by fastbp's loss (see the module docstring)."""
        if self._loss_name == "softmax_cross_entropy":
            return 1.0
        if self._loss_name in ("binary_cross_entropy", "poisson"):
            return float(n_out)
        return n_out / 2.0

    def _objective(self, X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
                   l2: float) -> Tuple[float, np.ndarray]:
        """scikit-learn's objective and its gradient (flat, in the arena's order) at the
        current parameters, from one native call."""
        eng = self._model.engine
        s = self._scale(self._model.output_dim)
        quiet = no_rescan(self._model)  # (validate_data checked X once)
        if _issparse(X):
            loss, flat = eng.loss_and_gradients_csr(*_csr(X), Y, self._loss_name, {"l2": l2}, w,
                                                    *quiet)
            flat = flat.astype(np.float64)
        else:
            loss, grads = eng.loss_and_gradients(X, Y, self._loss_name, {"l2": l2}, w, *quiet)
            flat = np.concatenate([g.reshape(-1) for g in grads]).astype(np.float64)
        flat *= s
        return s * float(loss), flat

    def _fit_lbfgs(self, p: Dict[str, Any], X: np.ndarray, Y: np.ndarray,
                   w: Optional[np.ndarray]) -> None:
        import scipy.optimize
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        arena = self._model.engine.arena()
        s = self._scale(self._model.output_dim)
        sw_sum = float(X.shape[0]) if w is None else float(w.sum())
        l2 = p["alpha"] / (s * sw_sum)
        wt = None if w is None else np.ascontiguousarray(w, dtype=arena.dtype)
        calls = [0]

        def fun(theta: np.ndarray) -> Tuple[float, np.ndarray]:
            arena[...] = theta
            calls[0] += 1
            return self._objective(X, Y, wt, l2)

        def report(res: Any) -> None:
            print(f"Iteration {calls[0]}, loss = {float(res.fun):.8f}")

        # L-BFGS-B's own linear algebra is on (m x m) and (n_params,) arrays: BLAS threads
        # only cost it time (tens of times more on a busy machine)
        with threadpool_limits(1, user_api="blas"):
            res = scipy.optimize.minimize(
                fun, arena.astype(np.float64), method="L-BFGS-B", jac=True,
                callback=report if p["verbose"] else None,
                options={"maxfun": p["max_fun"], "maxiter": p["max_iter"], "gtol": p["tol"]})
        self.n_iter_ = _lbfgs_warning(res, p["max_iter"])
        self.loss_ = float(res.fun)
        arena[...] = res.x

    def _loss_grad_lbfgs(self, packed_coef_inter: np.ndarray, X: Any, y: Any,
                         sample_weight: Any = None, *workspace: Any) -> Tuple[float, np.ndarray]:
        """scikit-learn's L-BFGS objective at ``packed_coef_inter`` in scikit-learn's packing
        (every weight matrix, then every bias vector), with y encoded as scikit-learn's
        estimator encodes it (label-binarized classes). Sets the parameters; ``workspace``
        (scikit-learn's scratch lists) is not used."""
        check_is_fitted(self)
        params = self._model.parameters()
        sizes = np.array([q.size for q in params])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        order = list(range(0, len(params), 2)) + list(range(1, len(params), 2))
        perm = np.concatenate([np.arange(starts[i], starts[i] + sizes[i]) for i in order])
        arena = self._model.engine.arena()
        arena[perm] = packed_coef_inter
        dt = arena.dtype
        Xa = np.ascontiguousarray(X, dtype=dt)
        Ya = np.asarray(y, dtype=dt).reshape(len(Xa), -1)
        w = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=dt)
        s = self._scale(self._model.output_dim)
        sw_sum = float(len(Xa)) if w is None else float(w.sum())
        loss, flat = self._objective(Xa, np.ascontiguousarray(Ya), w, self.alpha / (s * sw_sum))
        return loss, flat[perm]

    def _batch_size(self, n: int) -> int:
        if isinstance(self.batch_size, str):
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped", stacklevel=4)
        return int(np.clip(self.batch_size, 1, n))

    def _split(self, p: Dict[str, Any], X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
               rng: "_LazyRandomState") -> Tuple[Tuple[Any, Any, Any], Any]:
        """(train, validation) parts: the validation part is held out with early stopping
        (stratified for classifiers, except for multilabel targets)."""
        if not p["early_stopping"]:
            return (X, Y, w), None
        arrays = [X, Y] + ([w] if w is not None else [])
        split = train_test_split(*arrays, random_state=rng(), test_size=p["validation_fraction"],
                                 stratify=self._stratify(Y))
        if split[1].shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        train = [a if _issparse(a) else np.ascontiguousarray(a) for a in split[0::2]]
        val = split[1::2]
        return (train[0], train[1], train[2] if w is not None else None), \
            (val[0], val[1], val[2] if w is not None else None)

    def _stratify(self, Y: np.ndarray) -> Any:
        return None

    def _fit_stochastic(self, p: Dict[str, Any], X: np.ndarray, Y: np.ndarray,
                        w: Optional[np.ndarray], rng: "_LazyRandomState",
                        incremental: bool) -> None:
        s = self._scale(self._model.output_dim)
        if not incremental or self.__dict__.get("_fb_opt") is None:
            self._fb_opt = self._make_optimizer(p, s)
        if "loss_curve_" not in self.__dict__:
            self._init_stochastic_state(p)
        (X, Y, w), val = self._split(p, X, Y, w, rng)
        n = X.shape[0]
        batch = self._batch_size(n)
        wmean = 1.0 if w is None else float(w.mean())
        lp = {"l2": p["alpha"] / (s * batch * wmean)}
        wt = None if w is None else np.ascontiguousarray(w, dtype=self._model.dtype)
        self.n_iter_ = 0
        try:
            for _ in range(p["max_iter"]):
                self._epoch(p, X, Y, wt, lp, batch, n, s)
                self._update_no_improvement_count(p, val)
                self._iteration_ends(p)
                if self._no_improvement_count > p["n_iter_no_change"]:
                    if self._trigger_stopping(p):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == p["max_iter"]:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({p['max_iter']}) "
                                  "reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning, stacklevel=4)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if p["early_stopping"]:
            self._model.engine.arena()[...] = self._best_arena

    def _epoch(self, p: Dict[str, Any], X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
               lp: Dict[str, float], batch: int, n: int, s: float) -> None:
        """One epoch in one native call, and its bookkeeping."""
        model = self._model
        model.set_optimizer(self._fb_opt, undoable=False)
        quiet = no_rescan(model)  # (validate_data checked X once)
        if _issparse(X):
            value = model.engine.fit_epoch_csr(*_csr(X), Y, self._loss_name, lp, w, batch,
                                                p["shuffle"], *quiet)
        else:
            value = model.engine.fit_epoch(X, Y, self._loss_name, lp, w, batch, p["shuffle"],
                                            None, *quiet)
        model.epochs_trained += 1
        model.steps_trained += -(-n // batch)  # (the engine's mini-batches of this epoch)
        loss = s * float(value)
        self.n_iter_ += 1
        self.t_ += n
        self.loss_ = loss
        self.loss_curve_.append(loss)
        if p["verbose"]:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")

    def _validation_score(self, X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray]) -> float:
        z = self._predict_rows(X)
        if not np.all(np.isfinite(z)):
            return float("nan")
        return float(self._score_outputs(z.astype(np.float64), Y, w))

    def _update_no_improvement_count(self, p: Dict[str, Any], val: Any) -> None:
        tol = p["tol"]
        if p["early_stopping"]:
            score = self._validation_score(*val)
            self.validation_scores_.append(score)
            if p["verbose"]:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_arena = self._model.engine.arena().copy()
            return
        last = self.loss_curve_[-1]
        if last > self.best_loss_ - tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if last < self.best_loss_:
            self.best_loss_ = last

    def _iteration_ends(self, p: Dict[str, Any]) -> None:
        if p["solver"] == "sgd" and p["learning_rate"] == "invscaling":
            self._set_learning_rate(p["learning_rate_init"] / (self.t_ + 1) ** p["power_t"])

    def _trigger_stopping(self, p: Dict[str, Any]) -> bool:
        """After ``n_iter_no_change`` epochs without improvement: True to stop, False after
        dividing an adaptive learning rate by 5."""
        what = "Validation score" if p["early_stopping"] else "Training loss"
        msg = (f"{what} did not improve more than tol={p['tol']:f} for "
               f"{int(p['n_iter_no_change'])} consecutive epochs.")
        if not (p["solver"] == "sgd" and p["learning_rate"] == "adaptive"):
            tail = " Stopping."
        elif self._learning_rate <= 1e-6:
            tail = " Learning rate too small. Stopping."
        else:
            self._set_learning_rate(self._learning_rate / 5.0)
            if p["verbose"]:
                print(msg + f" Setting learning rate to {self._learning_rate:f}")
            return False
        if p["verbose"]:
            print(msg + tail)
        return True

    # ------------------------------------------------------------------ inference
    def _logits(self, X: Any) -> np.ndarray:
        """The network's outputs before the output activation, in the network's dtype."""
        check_is_fitted(self)
        if not self._plain_rows(X):
            X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False,
                              accept_sparse=["csr", "csc"])
        return self._predict_rows(_as_rows(X, self._model.dtype))

    def _plain_rows(self, X: Any) -> bool:
        """Whether scikit-learn's ``validate_data`` would pass X through unchanged and
        silently: a 2-D float32/float64 NumPy array (not a subclass), of at least one row,
        with the features seen in fit, all finite, for an estimator fitted without feature
        names. Then ``predict`` skips it (~60 us of a ~80 us call on 32 rows), and so does a
        later ``partial_fit`` whose y is plain too (_plain_target); any other X goes through
        it, with its conversions, warnings and errors."""
        return (type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0
                and X.shape[1] == self.__dict__.get("n_features_in_")
                and "feature_names_in_" not in self.__dict__ and _finite_floats(X))

    def _predict_rows(self, X: Any) -> np.ndarray:
        """Outputs for rows already in the engine's form (dense, or CSR: one native call over
        the non-zeros)."""
        if _issparse(X):
            return self._model.engine.predict_csr(*_csr(X))
        return self._model.predict(X)

    def fit(self, X: Any, y: Any, sample_weight: Any = None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags


# ---------------------------------------------------------------------------- classifier
_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Widths of the hidden layers.
    activation : str, default="relu"
        Hidden activation: scikit-learn's ``"identity"``, ``"logistic"`` (= fastbp's
        ``"sigmoid"``), ``"tanh"``, ``"relu"``, or any other fastbp activation (``"gelu"``,
        ``"silu"``, ``"elu"``, ``"leaky_relu"``, ``"softplus"``).
    solver : {"adam", "sgd", "lbfgs", "adamw", "rmsprop", "adagrad"}, default="adam"
    alpha : float, default=1e-4
        L2 penalty, scikit-learn's convention (see the module docstring for the mapping to
        fastbp's ``l2``).
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``; not used by ``"lbfgs"``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule, with ``solver="sgd"`` only (as in scikit-learn).
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    max_iter : int, default=200
        Maximum number of epochs (L-BFGS: of iterations).
    shuffle : bool, default=True
        Shuffle the samples every epoch (fastbp's seeded shuffle).
    random_state : int, RandomState or None
        Seeds the initialisation, the shuffling and the validation split.
    tol : float, default=1e-4
    verbose : bool, default=False
        Print the loss every epoch (iteration).
    warm_start : bool, default=False
        Reuse the previous solution as the initialisation of ``fit``.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for classifiers, except with
        multilabel targets), stop when the validation score has not improved by ``tol`` for
        ``n_iter_no_change`` epochs and restore the best parameters.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's (and AdamW's) moment decay rates; ``epsilon`` is also RMSprop's and Adagrad's.
    n_iter_no_change : int or np.inf, default=10
        ``np.inf`` turns the no-improvement stop off.
    max_fun : int, default=15000
        L-BFGS: maximum number of loss and gradient evaluations.
    dtype : {None, "float32", "float64"}, default=None
        Precision of the network: None follows the input (float32 stays float32, anything
        else is float64); "float32" is the fast choice.
    backend : {"native", "reference"}, default="native"
        fastbp's C++ engine or the NumPy reference.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron classifier trained by fastbp (scikit-learn's API).
""" + _PARAMS_DOC + """    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into the sample weights (scikit-learn's
        ``compute_sample_weight``). "balanced" is not available to ``partial_fit``.

    Attributes
    ----------
    classes_ : ndarray
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_
    t_ : int
        Number of training samples seen.
    n_iter_ : int
        Epochs (iterations) run by the last ``fit`` (1 after ``partial_fit``).
    coefs_, intercepts_ : list of ndarray
        Weights (n_in, n_out) and biases per layer, as scikit-learn lays them out.
    n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_
    fastbp_model_ : fastbp.MLP
    """

    _is_clf = True
    _y_numeric = False

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 class_weight: Any = None, dtype: Any = None, backend: str = "native"):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
            backend=backend)
        self.class_weight = class_weight

    def _set_classes(self, y: np.ndarray, kind: str, classes: Any,
                     labels: Optional[np.ndarray]) -> None:
        if kind == "multilabel-indicator":
            self.classes_ = np.arange(y.shape[1])
            self._kind = "multilabel"
            return
        # (labels is None: a target type the classifier cannot use, multiclass-multioutput;
        # scikit-learn's errors: its unique_labels' from partial_fit, its LabelBinarizer's
        # from fit)
        if classes is not None:
            if labels is None:
                unique_labels(y)
            self.classes_ = np.unique(np.asarray(classes))
        elif labels is None:
            raise ValueError("Multioutput target data is not supported with label "
                             "binarization")
        else:
            self.classes_ = labels
        # One class trains as scikit-learn's does: a binary network whose targets are all 0,
        # predicting that class everywhere (predict_proba keeps its two columns).
        self._kind = "binary" if len(self.classes_) <= 2 else "multiclass"

    def _check_classes(self, y: np.ndarray, kind: str, incremental: bool,
                       labels: Optional[np.ndarray]) -> None:
        if (kind == "multilabel-indicator") != (self._kind == "multilabel"):
            raise ValueError(f"y is {kind} but the model was fitted on {self._kind} targets")
        if self._kind == "multilabel":
            if y.shape[1] != len(self.classes_):
                raise ValueError(f"y has {y.shape[1]} labels, the model {len(self.classes_)}")
            return
        if labels is None:
            labels = unique_labels(y, ys_types={kind})
        if self.warm_start and not incremental:
            if set(labels) != set(self.classes_.tolist()):
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {labels}")
        elif not set(labels.tolist()) <= set(self.classes_.tolist()):  # (np.isin: ~15 us)
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                             f"{self.classes_}. 'y' has {labels}.")

    def _prepare_targets(self, y: np.ndarray, first_pass: bool, incremental: bool,
                         classes: Any = None) -> Tuple[np.ndarray, int]:
        # (type_of_target costs ~0.1 ms: it runs once; scikit-learn's check_classification_
        # targets, which runs it again, only for the types it rejects -- for its error. Like
        # scikit-learn's MLPClassifier, no warning when classes outnumber half the samples.)
        labels: Optional[np.ndarray]
        if _int_vector(y) and len(y):
            # integer labels in a 1-D array: type_of_target's and unique_labels' answers from
            # one np.unique (their checks, mostly for data frames, cost ~0.5 ms a fit)
            labels = np.unique(y)
            kind = "multiclass" if len(labels) > 2 else "binary"
        else:
            kind = type_of_target(y, input_name="y")
            if kind not in ("binary", "multiclass", "multilabel-indicator"):
                check_classification_targets(y)
            labels = (unique_labels(y, ys_types={kind}) if kind in ("binary", "multiclass")
                      else None)
        if first_pass or "classes_" not in self.__dict__:
            self._set_classes(y, kind, classes, labels)
        else:
            self._check_classes(y, kind, incremental, labels)
        if self._kind == "multilabel":
            self._loss_name = "binary_cross_entropy"
            self._out_activation = "logistic"
            return np.asarray(y, dtype=np.float64), y.shape[1]
        idx = np.searchsorted(self.classes_, y)
        if self._kind == "binary":
            self._loss_name = "binary_cross_entropy"
            self._out_activation = "logistic"
            return idx.astype(np.float64).reshape(-1, 1), 1
        self._loss_name = "softmax_cross_entropy"
        self._out_activation = "softmax"
        return idx.astype(np.int64), len(self.classes_)

    def _sample_weight(self, sample_weight: Any, y: np.ndarray,
                       incremental: bool) -> Optional[np.ndarray]:
        w = _check_sample_weight(sample_weight, len(y))
        cw = self.class_weight
        if cw is None:
            return w
        cws = self._class_weights(cw, y, w)
        w = cws if w is None else w * cws
        if not np.any(w > 0):
            raise ValueError("class_weight and sample_weight leave no sample with a positive "
                             "weight")
        return w

    def _class_weights(self, cw: Any, y: np.ndarray, w: Optional[np.ndarray]) -> np.ndarray:
        """Per-sample weights of ``class_weight``: "balanced" gives class c the weight
        ``n_samples / (n_classes * count(c))`` over the y it is given (in ``partial_fit``, the
        batch), samples counted by their sample weights as scikit-learn's
        ``compute_class_weight`` counts them; a dict gives its value (1 for classes it does
        not name). Multilabel targets: scikit-learn's ``compute_sample_weight`` per label
        column."""
        balanced = isinstance(cw, str) and cw == "balanced"
        if not (balanced or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {cw!r}")
        if self._kind == "multilabel":
            return compute_sample_weight(cw, y)
        idx = np.searchsorted(self.classes_, y)
        if balanced:
            ws = np.ones(len(y)) if w is None else w
            counts = np.bincount(idx, weights=ws, minlength=len(self.classes_))
            with np.errstate(divide="ignore", invalid="ignore"):
                per_class = np.where(counts > 0, ws.sum() / (len(self.classes_) * counts), 0.0)
            return per_class[idx]
        unknown = [c for c in cw if c not in set(self.classes_.tolist())]
        if unknown:
            raise ValueError(f"The classes, {unknown}, are not in class_weight's classes "
                             f"{self.classes_}")
        table = np.array([float(cw.get(c, 1.0)) for c in self.classes_.tolist()])
        return table[idx]

    def _stratify(self, Y: np.ndarray) -> Any:
        if self._kind == "multilabel":
            return None
        if self._kind == "binary":
            return Y > 0.5
        return np.arange(len(self.classes_))[None, :] == Y[:, None]

    def _score_outputs(self, z: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray]) -> float:
        if self._kind == "multiclass":
            correct = (z.argmax(1) == Y).astype(np.float64)
        elif self._kind == "binary":
            correct = ((z[:, 0] > 0) == (Y[:, 0] > 0.5)).astype(np.float64)
        else:
            correct = np.all((z > 0) == (Y > 0.5), axis=1).astype(np.float64)
        return float(np.average(correct, weights=w))

    @available_if(_BaseMLP._check_solver)
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
        first = "classes_" not in self.__dict__
        if first:
            kind_2d = np.ndim(y) == 2 and np.shape(y)[1] > 1
            if classes is None and not kind_2d:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            if classes is not None and not kind_2d:
                labels = unique_labels(y)
                missing = np.setdiff1d(labels, np.unique(np.asarray(classes)))
                if len(missing):
                    raise ValueError(f"`classes={np.unique(classes)!r}` is missing labels "
                                     f"found in y: {missing}")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={np.unique(classes)!r}` is not the same as on last call "
                             f"to partial_fit, was: {self.classes_!r}")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes if first else None)

    def _probabilities(self, X: Any) -> Tuple[np.ndarray, np.dtype]:
        z = self._logits(X)
        return z.astype(np.float64), z.dtype

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the network's dtype.

        Binary problems have one logit ``z``: the columns are ``1 - sigmoid(z)`` and
        ``sigmoid(z)``. Multilabel: one sigmoid per label.
        """
        z, dt = self._probabilities(X)
        if self._kind == "multiclass":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return (e / e.sum(axis=1, keepdims=True)).astype(dt)
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the sigmoid, without overflow
        if self._kind == "binary":
            return np.hstack([1.0 - p, p]).astype(dt)
        return p.astype(dt)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``, as scikit-learn computes it (-inf where a probability
        rounds to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes (multilabel: a 0/1 indicator matrix)."""
        z = self._logits(X)
        if self._kind == "multiclass":
            return self.classes_[z.argmax(axis=1)]
        if self._kind == "binary":
            if len(self.classes_) == 1:
                return np.repeat(self.classes_, len(z))
            return self.classes_[(z[:, 0] > 0).astype(np.intp)]
        return (z > 0).astype(np.int64)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on (X, y), as scikit-learn's ``ClassifierMixin.score`` computes it
        (``accuracy_score``).

        For integer labels in a 1-D NumPy array, without sample weights, on a single-label
        model (the case of a search's scoring), the accuracy is counted directly: the same
        value, where ``accuracy_score``'s target checks (which cannot fail on such input)
        cost ~0.4-0.7 ms a call. Any other input goes through ``accuracy_score``.
        """
        y_pred = self.predict(X)
        if (sample_weight is None and _int_vector(y) and _int_vector(y_pred)
                and len(y) == len(y_pred)):
            return float(np.mean(y == y_pred))
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(y, y_pred, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# ---------------------------------------------------------------------------- regressor
class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron regressor trained by fastbp (scikit-learn's API).

    ``loss="squared_error"``: identity output; ``loss="poisson"``: the Poisson deviance with a
    log link (predictions ``exp(z)``). With ``early_stopping`` the validation score is R²
    (not stratified).
""" + _PARAMS_DOC + """    loss : {"squared_error", "poisson"}, default="squared_error"

    Attributes
    ----------
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, t_, n_iter_
    coefs_, intercepts_ : list of ndarray
    n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_
    fastbp_model_ : fastbp.MLP
    """

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, loss: str = "squared_error",
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 dtype: Any = None, backend: str = "native"):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
            backend=backend)
        self.loss = loss

    def _prepare_targets(self, y: np.ndarray, first_pass: bool, incremental: bool,
                         classes: Any = None) -> Tuple[np.ndarray, int]:
        loss = _check_choice("loss", self.loss, ("squared_error", "poisson"))
        Y = np.asarray(y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if not first_pass and "n_outputs_" in self.__dict__ and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, the model was fitted with "
                             f"{self.n_outputs_}")
        if loss == "poisson":
            if np.any(Y < 0):
                raise ValueError("Some value(s) of y are out of the valid range of the loss "
                                 "'poisson': y must be >= 0")
            self._loss_name, self._out_activation = "poisson", "exp"
        else:
            self._loss_name, self._out_activation = "mse", "identity"
        return Y, Y.shape[1]

    def _outputs(self, z: np.ndarray) -> np.ndarray:
        return np.exp(z) if self._out_activation == "exp" else z

    def _score_outputs(self, z: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray]) -> float:
        from sklearn.metrics import r2_score

        pred = self._outputs(z)
        if not np.all(np.isfinite(pred)):
            return float("nan")
        return float(r2_score(Y, pred, sample_weight=w))

    @available_if(_BaseMLP._check_solver)
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
        """Predictions in the network's dtype, shape (n_samples,) for a single output."""
        z = self._logits(X)
        out = self._outputs(z)
        return out.ravel() if out.shape[1] == 1 else out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² on (X, y), as scikit-learn's ``RegressorMixin.score`` computes it (``r2_score``).

        For one output, finite float targets in a 1-D NumPy array and no sample weights, the
        value is formed with ``r2_score``'s own operations (_r2_plain); its checks, which
        cannot fail on such input, cost ~0.25 ms a call. Any other input goes through
        ``r2_score``."""
        y_pred = self.predict(X)
        value = _r2_plain(y, y_pred) if sample_weight is None else None
        if value is not None:
            return value
        from sklearn.metrics import r2_score

        return float(r2_score(y, y_pred, sample_weight=sample_weight))


def _register_exchange_converters() -> None:
    """skl2onnx converters for these estimators, registered when skl2onnx is imported."""
    from .io.skl2onnx import install_import_hook

    install_import_hook()


_register_exchange_converters()

from .search import GridSearchCV, RandomizedSearchCV  # noqa: E402  (needs the estimators above)
