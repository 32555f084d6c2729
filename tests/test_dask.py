"""Many models on a cluster: scikit-learn's GridSearchCV over fastbp's estimators with joblib's
dask backend on a dask.distributed LocalCluster, threads budgeted per worker."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastbp as fb
from fastbp import _runtime
from fastbp import distributed as dist

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                  "(pip install 'fastbp[dask]')")
joblib = pytest.importorskip("joblib")


@pytest.fixture
def client():
    before = fb.get_num_threads()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    cl = distributed.Client(cluster)
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()
        _runtime._set_threads(before)  # the workers shared this process's thread count


def test_budget_sets_threads_per_worker(client):
    per_host = dist.budget_dask_threads(client)
    assert sum(per_host.values()) == 2  # two one-thread workers on this machine
    threads = client.run(fb.get_num_threads)
    assert len(threads) == 2
    assert set(threads.values()) == {dist.threads_per_rank(2)}


def test_grid_search_on_dask_equals_local_search(client):
    from sklearn.model_selection import GridSearchCV

    from fastbp.datasets import load_digits
    from fastbp.sklearn import MLPClassifier

    X, y = load_digits("float32")
    X, y = X[:450], y[:450]
    grid = {"hidden_layer_sizes": [(16,), (32,)], "learning_rate_init": [1e-3, 3e-3]}
    est = MLPClassifier(max_iter=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: deliberately few iterations
        local = GridSearchCV(est, grid, cv=3).fit(X, y)
        dist.budget_dask_threads(client)
        with joblib.parallel_backend("dask"):
            remote = GridSearchCV(est, grid, cv=3, n_jobs=-1).fit(X, y)
    np.testing.assert_array_equal(local.cv_results_["mean_test_score"],
                                  remote.cv_results_["mean_test_score"])
    assert local.best_params_ == remote.best_params_
    np.testing.assert_array_equal(local.predict(X), remote.predict(X))


def test_fastbp_search_groups_run_on_dask_workers(client):
    """fastbp's own GridSearchCV sends its ensemble groups to the workers; the results are
    those of the search run here."""
    from fastbp.datasets import load_digits
    from fastbp.sklearn import GridSearchCV, MLPClassifier

    X, y = load_digits("float32")
    X, y = X[:300], y[:300]
    grid = {"hidden_layer_sizes": [(8,), (16,)], "learning_rate_init": [1e-3, 3e-3]}
    est = MLPClassifier(max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = GridSearchCV(est, grid, cv=2).fit(X, y)
        dist.budget_dask_threads(client)
        with distributed.get_task_stream(client) as stream:
            with joblib.parallel_backend("dask"):
                remote = GridSearchCV(est, grid, cv=2).fit(X, y)
    np.testing.assert_array_equal(local.cv_results_["mean_test_score"],
                                  remote.cv_results_["mean_test_score"])
    assert local.best_params_ == remote.best_params_
    ran = [t for t in stream.data if "run_group" in str(t.get("key", ""))
           or "Batch" in str(t.get("key", ""))]
    assert ran, [t.get("key") for t in stream.data]  # two architectures: two groups
