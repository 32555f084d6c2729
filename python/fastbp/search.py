"""Hyper-parameter search whose fits train together: ``GridSearchCV`` and
``RandomizedSearchCV``, drop-ins for scikit-learn's (``from fastbp.sklearn import
GridSearchCV``).

How a search runs. The (candidate, fold) fits are put in groups (:func:`group_candidates`):
the fits of fastbp's ``MLPClassifier`` / ``MLPRegressor`` whose candidates share an
architecture form one group, across all folds; anything else is a group of one. A group
(:func:`run_group`) runs scikit-learn's own per-fit routine (``_fit_and_score``: clone, set
the parameters, fit, score) for each of its fits at once, one Python thread per fit; every
epoch those fits request from their fastbp models' engines (``model.engine.fit_epoch``, also
what ``model.fit`` calls) is trained in ONE native call for the whole group
(``_core.ensemble_fit_each``: the members in parallel over
the cores, the GIL released). The estimator's own code therefore runs unchanged around every
epoch (its stopping rule, learning-rate schedule, early stopping, warnings), and every fit
ends exactly as it would alone: ``cv_results_`` holds the scores scikit-learn's search over
the same estimator gives. A search that cannot be batched at all (another estimator, metadata
routing) is scikit-learn's search.

The grouping is a function of the candidates only, and :func:`run_group` needs nothing but
its arguments: groups can be sent to other processes (dask workers) and their results
gathered by :func:`evaluate_candidates`' caller.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV as _SkGrid
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.model_selection import RandomizedSearchCV as _SkRandom
from sklearn.model_selection._search import _insert_error_scores
from sklearn.model_selection._split import check_cv
from sklearn.model_selection._validation import (
    _fit_and_score,
    _warn_or_raise_about_fit_failures,
)
from sklearn.utils import indexable
from sklearn.utils.validation import _check_method_params

from . import model as _model
from .registry import resolve_loss
from .training import _int_arg

__all__ = [
    "GridSearchCV",
    "RandomizedSearchCV",
    "evaluate_candidates",
    "group_candidates",
    "run_group",
]

MAX_GROUP = 64  # fits trained together at most (one thread each)
_LOCAL = threading.local()


# ------------------------------------------------------------------------- the epoch batcher
class _Batcher:
    """Collects the epochs requested by a group's workers (slots 0..n-1, one thread each)
    and trains them in one native call once every worker still running is waiting."""

    def __init__(self, n_workers: int) -> None:
        self._cv = threading.Condition()
        self._workers = set(range(n_workers))
        self._pending: dict = {}
        self._results: dict = {}
        self.calls = 0

    def finished(self, slot: int) -> None:
        """Worker ``slot`` will request no more epochs."""
        with self._cv:
            self._workers.discard(slot)
            self._run_if_ready()

    def submit(self, slot: int, request: dict) -> float:
        """Worker ``slot``'s epoch: waits for the group's call, returns its epoch loss."""
        with self._cv:
            self._pending[slot] = request
            self._run_if_ready()
            while slot not in self._results:
                self._cv.wait()
            result = self._results.pop(slot)
        if isinstance(result, BaseException):
            raise result
        return result

    def _run_if_ready(self) -> None:
        if not self._pending or set(self._pending) != self._workers:
            return
        pending, self._pending = self._pending, {}
        self.calls += 1
        self._results.update(_train_requests(pending))
        self._cv.notify_all()


def _train_requests(pending: dict) -> dict:
    """One epoch for every request: one native call per dtype, the reference in a loop.
    Returns {worker: epoch loss or exception}."""
    out: dict = {}
    buckets = defaultdict(list)
    for tid, r in pending.items():
        buckets[(r["model"].backend, r["model"].dtype)].append(tid)
    for (backend, _), tids in buckets.items():
        reqs = [pending[t] for t in tids]
        if backend != "native":
            for t, r in zip(tids, reqs):
                try:
                    out[t] = float(r["model"]._engine.fit_epoch(
                        r["X"], r["y"], r["loss"], r["loss_params"], r["w"], r["batch_size"],
                        r["shuffle"], None))
                except Exception as e:  # noqa: BLE001 - handed to the fit that asked
                    out[t] = e
            continue
        from . import _core

        try:
            deltas, l1, l2 = (np.array([float(r["loss_params"].get(k, d)) for r in reqs])
                              for k, d in (("delta", 1.0), ("l1", 0.0), ("l2", 0.0)))
            values = _core.ensemble_fit_each(
                [r["model"]._engine for r in reqs], [r["X"] for r in reqs],
                [r["y"] for r in reqs], [r["w"] for r in reqs], [r["loss"] for r in reqs],
                deltas, l1, l2, [r["batch_size"] for r in reqs], [r["shuffle"] for r in reqs])
            out.update({t: float(v) for t, v in zip(tids, values)})
        except Exception as e:  # noqa: BLE001 - handed to every fit of the call
            out.update({t: e for t in tids})
    return out


class _BatchingEngine:
    """A model's engine inside a group's worker thread: ``fit_epoch`` without per-step rates
    is checked as the engine checks it and handed to the group's batcher (the epoch the
    engine's own call would train); everything else is the engine's."""

    def __init__(self, model: Any, batcher: _Batcher, slot: int) -> None:
        self._model, self._engine, self._batcher, self._slot = (model, model._engine, batcher,
                                                                 slot)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def fit_epoch(self, X: Any, y: Any, loss: str, loss_params: Any = None,
                  sample_weight: Any = None, batch_size: Any = 32, shuffle: bool = True,
                  lrs: Any = None, check_finite: Any = None) -> float:
        cf = () if check_finite is None else (check_finite,)  # (passed on positionally)
        if lrs is not None:
            return self._engine.fit_epoch(X, y, loss, loss_params, sample_weight, batch_size,
                                          shuffle, lrs, *cf)
        m = self._model
        loss = resolve_loss(loss)
        lp = dict(loss_params or {})
        bs = _int_arg("batch_size", batch_size, 1)
        Xa, ya, wa = m._X(X), m._y(y, loss), m._w(sample_weight)
        self._engine.check_batch(Xa, ya, loss, lp, wa, *cf)  # (check_finite as asked)
        return self._batcher.submit(self._slot, {"model": m, "X": Xa, "y": ya, "w": wa,
                                                 "loss": loss, "loss_params": lp,
                                                 "batch_size": bs, "shuffle": bool(shuffle)})


def _engine_of(model: Any) -> Any:
    """``model.engine``: the batching stand-in in a group's worker thread, else the engine."""
    batcher = getattr(_LOCAL, "batcher", None)
    if batcher is None:
        return model._engine
    return _BatchingEngine(model, batcher, _LOCAL.slot)


_model._ENGINE_HOOK[0] = _engine_of


# ------------------------------------------------------------------------- groups of fits
def _arch_key(estimator: Any, params: dict) -> Any:
    """What must agree for fits to train as one group (None: this fit trains alone)."""
    from .sklearn import _BaseMLP

    try:
        est = clone(estimator).set_params(**params)
    except Exception:  # noqa: BLE001 - invalid parameters fail in the fit, alone
        return None
    if not isinstance(est, _BaseMLP):
        return None
    p = est.get_params()
    hidden = p["hidden_layer_sizes"]
    hidden = (hidden,) if np.isscalar(hidden) else tuple(hidden)
    return (type(est).__name__, repr(hidden), repr(p["activation"]), repr(p.get("dtype")),
            repr(p.get("backend")))


def group_candidates(estimator: Any, candidate_params: Sequence[dict], n_splits: int,
                     max_group: int = MAX_GROUP) -> list[list[tuple[int, int]]]:
    """Split the (candidate, fold) fits of a search into groups trained together.

    Parameters
    ----------
    estimator : estimator
        The search's (unfitted) estimator.
    candidate_params : sequence of dict
        The candidates' parameters.
    n_splits : int
        Number of cross-validation folds.
    max_group : int
        Largest group (one thread per fit while it runs).

    Returns
    -------
    list of list of (int, int)
        Groups of (candidate index, fold index); fits of fastbp's MLP estimators whose
        candidates share an architecture are grouped across all folds, any other fit is a
        group of one.
    """
    keyed: dict = defaultdict(list)
    groups: list[list[tuple[int, int]]] = []
    for c, params in enumerate(candidate_params):
        key = _arch_key(estimator, params)
        tasks = [(c, s) for s in range(n_splits)]
        if key is None:
            groups.extend([t] for t in tasks)
        else:
            keyed[key].extend(tasks)
    for tasks in keyed.values():
        groups.extend(tasks[i:i + max_group] for i in range(0, len(tasks), max_group))
    return groups


def _one_fit(estimator, X, y, train, test, params, split_progress, candidate_progress,
             fit_kwargs):
    return _fit_and_score(clone(estimator), X, y, train=train, test=test, parameters=params,
                          split_progress=split_progress, candidate_progress=candidate_progress,
                          **fit_kwargs)


def run_group(estimator: Any, candidate_params: Sequence[dict], group: Sequence[tuple],
              X: Any, y: Any, splits: Sequence[tuple], fit_kwargs: dict) -> list[dict]:
    """Run the fits of one group and return their results (as scikit-learn's
    ``_fit_and_score`` returns them), in the group's order.

    Parameters
    ----------
    estimator : estimator
        The search's estimator (cloned for every fit).
    candidate_params : sequence of dict
    group : sequence of (candidate index, fold index)
    X, y : array-like
        The whole data set.
    splits : sequence of (train indices, test indices)
    fit_kwargs : dict
        ``_fit_and_score``'s keyword arguments (scorer, fit_params, score_params, ...).

    Returns
    -------
    list of dict
    """
    n_c, n_s = len(candidate_params), len(splits)

    def call(c: int, s: int) -> dict:
        train, test = splits[s]
        return _one_fit(estimator, X, y, train, test, candidate_params[c], (s, n_s), (c, n_c),
                        fit_kwargs)

    if len(group) == 1:
        return [call(*group[0])]
    batcher = _Batcher(len(group))
    results: list = [None] * len(group)
    # Every worker is started before any begins its fit: Thread.start() waits until the new
    # thread runs, which takes the GIL, and with the earlier workers busy in their fits'
    # Python that took ~2.5 ms a thread (82 ms for 32 on digits, before the first epoch).
    go = threading.Event()

    def worker(slot: int, c: int, s: int) -> None:
        go.wait()
        _LOCAL.batcher, _LOCAL.slot = batcher, slot
        try:
            results[slot] = call(c, s)
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller below
            results[slot] = e
        finally:
            _LOCAL.batcher = None
            batcher.finished(slot)

    threads = [threading.Thread(target=worker, args=(i, c, s), daemon=True)
               for i, (c, s) in enumerate(group)]
    started = 0
    try:
        for t in threads:
            t.start()
            started += 1
    finally:  # (a start that fails raises; the started workers must not wait for the others)
        for slot in range(started, len(threads)):
            batcher.finished(slot)
        go.set()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def evaluate_candidates(estimator: Any, candidate_params: Sequence[dict], X: Any, y: Any,
                        splits: Sequence[tuple], fit_kwargs: dict,
                        n_jobs: Any = None) -> list[dict]:
    """Every (candidate, fold) fit's result, in scikit-learn's order (candidates outer,
    folds inner), the fits trained group by group (:func:`group_candidates`).

    The groups are dispatched by joblib: one after the other in this process by default
    (``n_jobs=None`` outside any ``joblib.parallel_backend``), to joblib's workers with
    ``n_jobs``, and to the workers of a dask cluster inside
    ``joblib.parallel_backend("dask")`` (``fastbp.distributed.budget_dask_threads`` budgets
    their threads). The results do not depend on where the groups ran."""
    from joblib import Parallel, delayed

    n_s = len(splits)
    out: list = [None] * (len(candidate_params) * n_s)
    groups = group_candidates(estimator, candidate_params, n_s)
    results = Parallel(n_jobs=n_jobs)(
        delayed(run_group)(estimator, candidate_params, group, X, y, splits, fit_kwargs)
        for group in groups)
    for group, res in zip(groups, results):
        for (c, s), r in zip(group, res):
            out[c * n_s + s] = r
    return out


# ------------------------------------------------------------------------- the search classes
class _BatchedSearch:
    """``fit`` of a scikit-learn search with the fits evaluated by
    :func:`evaluate_candidates`; everything else is scikit-learn's."""

    # provided by the scikit-learn search class this is mixed into (``BaseSearchCV``)
    estimator: Any
    cv: Any
    scoring: Any
    refit: Any
    n_jobs: Any
    verbose: int
    error_score: Any
    return_train_score: bool
    _validate_params: Callable[[], None]
    _get_scorers: Callable[[], tuple[Any, Any]]
    _get_routed_params_for_fit: Callable[[dict], Any]
    _check_input_parameters: Callable[..., None]
    _format_results: Callable[..., dict]
    _check_refit_for_multimetric: Callable[[Any], None]
    _select_best_index: Callable[[Any, Any, dict], int]

    def _candidates(self) -> list[dict]:
        raise NotImplementedError

    def _batchable(self, params: dict) -> bool:
        from sklearn import get_config

        from .sklearn import _BaseMLP

        return (isinstance(self.estimator, _BaseMLP) and set(params) <= {"sample_weight",
                                                                           "groups"}
                and not get_config().get("enable_metadata_routing", False))

    def fit(self, X: Any, y: Any = None, **params: Any):
        """Run fit with all sets of parameters (scikit-learn's ``fit``; see the class).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), optional
        **params
            ``sample_weight`` (split with the folds), ``groups`` (for the splitter).

        Returns
        -------
        self
        """
        if not self._batchable(params):
            return super().fit(X, y, **params)  # type: ignore[misc]
        self._validate_params()
        scorers, refit_metric = self._get_scorers()
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self._checked_cv_orig = cv
        self._check_input_parameters(X=X, y=y, split_params=routed.splitter.split)
        self.n_splits_ = cv.get_n_splits(X, y, **routed.splitter.split)
        splits = list(cv.split(X, y, **routed.splitter.split))
        if len(splits) != self.n_splits_:
            raise ValueError("cv.split and cv.get_n_splits return inconsistent results. "
                             f"Expected {self.n_splits_} splits, got {len(splits)}")
        candidates = self._candidates()
        base = clone(self.estimator)
        fit_kwargs = {"scorer": scorers, "fit_params": routed.estimator.fit,
                          "score_params": routed.scorer.score,
                          "return_train_score": self.return_train_score,
                          "return_n_test_samples": True, "return_times": True,
                          "return_parameters": False, "error_score": self.error_score,
                          "verbose": self.verbose, "caller": self}
        if self.verbose > 0:
            print(f"Fitting {self.n_splits_} folds for each of {len(candidates)} candidates,"
                  f" totalling {len(candidates) * self.n_splits_} fits")
        out = evaluate_candidates(base, candidates, X, y, splits, fit_kwargs, self.n_jobs)
        if len(out) < 1:
            raise ValueError("No fits were performed. Was the CV iterator empty? Were there "
                             "no candidates?")
        _warn_or_raise_about_fit_failures(out, self.error_score)
        if callable(self.scoring):
            _insert_error_scores(out, self.error_score)
        results = self._format_results(candidates, self.n_splits_, out, defaultdict(list))
        first = out[0]["test_scores"]
        self.multimetric_ = isinstance(first, dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(first)
            refit_metric = self.refit
        self._finish(X, y, routed, results, refit_metric, scorers, base)
        return self

    def _finish(self, X, y, routed, results, refit_metric, scorers, base) -> None:
        """Best candidate, refit and the fitted attributes, as scikit-learn's ``fit``."""
        from sklearn.metrics._scorer import _MultimetricScorer

        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(base).set_params(**clone(self.best_params_,
                                                                  safe=False))
            t0 = time.time()
            if y is not None:
                self.best_estimator_.fit(X, y, **routed.estimator.fit)
            else:
                self.best_estimator_.fit(X, **routed.estimator.fit)
            self.refit_time_ = time.time() - t0
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.scorer_ = scorers._scorers if isinstance(scorers, _MultimetricScorer) else scorers
        self.cv_results_ = results


class GridSearchCV(_BatchedSearch, _SkGrid):
    """scikit-learn's ``GridSearchCV`` (same parameters, attributes and results) whose fits
    of fastbp's MLP estimators train together, one native call per epoch for every
    candidate sharing an architecture across all folds (see :mod:`fastbp.search`).
    ``n_jobs`` spreads the groups over joblib's workers (a dask cluster's inside
    ``joblib.parallel_backend("dask")``); ``pre_dispatch`` applies only to searches that
    cannot be batched."""

    def _candidates(self) -> list[dict]:
        return list(ParameterGrid(self.param_grid))


class RandomizedSearchCV(_BatchedSearch, _SkRandom):
    """scikit-learn's ``RandomizedSearchCV`` (same parameters, attributes and results) whose
    fits of fastbp's MLP estimators train together (see :class:`GridSearchCV`)."""

    def _candidates(self) -> list[dict]:
        return list(ParameterSampler(self.param_distributions, self.n_iter,
                                     random_state=self.random_state))
