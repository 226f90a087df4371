"""Dask scale-out: joblib's dask backend on a LocalCluster of 2 worker processes.

``cross_val_score``, ``cross_validate`` (with metadata routing),
``GridSearchCV``, the blend's inner CV, and a blend inside
``cross_val_score`` (nested) run on the workers and give the same scores as a
sequential run with the same seeds.
"""

import os
import re

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
import sklearn  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    cross_val_score,
    cross_validate,
)
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from moa_sklearn.datasets import make_moa  # noqa: E402
from moa_sklearn.ensemble import StackingBlend  # noqa: E402
from moa_sklearn.metrics import neg_mean_columnwise_log_loss  # noqa: E402
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold  # noqa: E402
from moa_sklearn.preprocessing import CategoricalEncoder, RankGauss  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 single-threaded worker processes, and its Client."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def world():
    return make_moa(
        n_samples=400,
        n_test=0,
        n_genes=20,
        n_cells=8,
        n_scored=6,
        n_nonscored=6,
        random_state=0,
    )


def _knn():
    return make_pipeline(CategoricalEncoder(), RankGauss(), KNeighborsClassifier(30))


def _net(**params):
    pytest.importorskip("torch")
    from moa_sklearn.neural import TwoStepNetClassifier

    params = dict(
        hidden_sizes=(16,),
        dropouts=0.1,
        max_epochs_pretrain=2,
        max_epochs_finetune=2,
        unfreeze_every=1,
        batch_size=64,
        device="cpu",
        n_threads=1,
        random_state=0,
        **params,
    )
    return make_pipeline(
        CategoricalEncoder(), RankGauss(), TwoStepNetClassifier(**params)
    )


def _on_dask(client, func):
    """Run ``func()`` under the dask backend; return its result and the task stream.

    The stream's records say which worker ran each task.
    """
    with (
        distributed.get_task_stream(client) as stream,
        joblib.parallel_config(backend="dask"),
    ):
        result = func()
    return result, stream.data


def _assert_ran_on_workers(client, records, n_calls):
    """The stream shows ``n_calls`` calls, all run by the cluster's workers.

    joblib may batch calls into one task (key ``[mixed_]batch_of_<func>_<n>_calls``).
    """
    calls = 0
    for r in records:
        match = re.search(r"batch_of_.*_(\d+)_calls", r["key"])
        calls += int(match.group(1)) if match else 1
    assert calls >= n_calls
    workers = set(client.scheduler_info()["workers"])
    assert {r["worker"] for r in records} <= workers
    # none of the workers is this process
    assert os.getpid() not in set(client.run(os.getpid).values())


def _cv():
    return DrugMultilabelStratifiedKFold(3, random_state=0)


@pytest.mark.parametrize("make_model", [_knn, _net], ids=["knn", "two_step_net"])
def test_cross_val_score_dask_equals_sequential(client, world, make_model):
    model = make_model()
    # routing off: groups= for the outer splitter, params= for the net's
    # inner validation split
    params = (
        {"twostepnetclassifier__groups": world.groups} if make_model is _net else {}
    )

    def run(n_jobs):
        return cross_val_score(
            model,
            world.data,
            world.target,
            groups=world.groups,
            cv=_cv(),
            scoring=neg_mean_columnwise_log_loss,
            params=params,
            n_jobs=n_jobs,
        )

    sequential = run(1)
    scores, records = _on_dask(client, lambda: run(2))
    _assert_ran_on_workers(client, records, n_calls=3)
    np.testing.assert_array_equal(scores, sequential)
    assert np.isfinite(scores).all()


def test_cross_validate_routing_dask_equals_sequential(client, world):
    # metadata routing is a global config; joblib's sklearn delayed carries it
    # to the workers with each task, so y_aux reaches the net's pretraining
    with sklearn.config_context(enable_metadata_routing=True):
        model = _net()
        model[-1].set_fit_request(y_aux=True, groups=True)

        def run(n_jobs):
            return cross_validate(
                model,
                world.data,
                world.target,
                cv=_cv(),
                scoring=neg_mean_columnwise_log_loss,
                params={"groups": world.groups, "y_aux": world.target_aux},
                return_estimator=True,
                n_jobs=n_jobs,
            )

        sequential = run(1)
        result, records = _on_dask(client, lambda: run(2))
    _assert_ran_on_workers(client, records, n_calls=3)
    np.testing.assert_array_equal(result["test_score"], sequential["test_score"])
    # the auxiliary targets reached every fold's pretraining on the workers
    assert [est[-1].n_aux_ for est in result["estimator"]] == [6, 6, 6]


def test_grid_search_dask_equals_sequential(client, world):
    def run(n_jobs):
        search = GridSearchCV(
            _knn(),
            {"kneighborsclassifier__n_neighbors": [5, 30]},
            cv=_cv(),
            scoring=neg_mean_columnwise_log_loss,
            n_jobs=n_jobs,
        )
        return search.fit(world.data, world.target, groups=world.groups)

    sequential = run(1)
    search, records = _on_dask(client, lambda: run(2))
    _assert_ran_on_workers(client, records, n_calls=6)
    assert search.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
    )
    np.testing.assert_array_equal(
        search.predict_proba(world.data), sequential.predict_proba(world.data)
    )


def test_stacking_blend_dask_equals_sequential(client, world):
    # routing on, so that groups reach the net inside its Pipeline too
    def run(n_jobs):
        net = _net()
        net[-1].set_fit_request(groups=True)
        blend = StackingBlend(
            [("knn", _knn()), ("net", net)],
            cv=3,
            n_jobs=n_jobs,
            random_state=0,
        )
        return blend.fit(world.data, world.target, groups=world.groups)

    with sklearn.config_context(enable_metadata_routing=True):
        sequential = run(1)
        blend, records = _on_dask(client, lambda: run(2))
    # 2 estimators x (3 folds + 1 refit on all rows)
    _assert_ran_on_workers(client, records, n_calls=8)
    np.testing.assert_array_equal(blend.oof_predictions_, sequential.oof_predictions_)
    np.testing.assert_array_equal(blend.weights_, sequential.weights_)
    assert blend.oof_score_ == sequential.oof_score_
    np.testing.assert_array_equal(
        blend.predict_proba(world.data), sequential.predict_proba(world.data)
    )


def test_nested_blend_in_cross_val_score_dask_equals_sequential(client, world):
    # the outer folds run on the workers; each blend's inner fits, under the
    # dask backend there too, are submitted by the worker to the cluster
    model = StackingBlend(
        [("knn", _knn()), ("prior", DummyClassifier())],
        cv=3,
        n_jobs=2,
        random_state=0,
    )

    def run(n_jobs):
        return cross_val_score(
            model,
            world.data,
            world.target,
            groups=world.groups,
            cv=_cv(),
            scoring=neg_mean_columnwise_log_loss,
            params={"groups": world.groups},  # for the blend's inner CV
            n_jobs=n_jobs,
        )

    sequential = run(1)
    scores, records = _on_dask(client, lambda: run(2))
    keys = " ".join(r["key"] for r in records)
    assert "_fit_and_score" in keys and "_fit_fold" in keys and "_fit_all" in keys
    # 3 outer fits + 3 x 2 estimators x (3 inner folds + 1 refit)
    _assert_ran_on_workers(client, records, n_calls=3 + 3 * 8)
    np.testing.assert_array_equal(scores, sequential)
