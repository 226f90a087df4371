"""StackingBlend and ControlVehicleClassifier: weights, OOF, routing, controls."""

import os
import signal
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import make_column_transformer
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)

from moa_sklearn.ensemble import (
    ControlVehicleClassifier,
    SeedAveragingClassifier,
    StackingBlend,
)
from moa_sklearn.exceptions import DrugLeakageWarning
from moa_sklearn.metrics import (
    mean_columnwise_log_loss,
    multilabel_proba,
    neg_mean_columnwise_log_loss,
)
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold

# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)

# every fit of a _Spy appends a record here (clones share the module)
_LOG = []


class _Spy(ClassifierMixin, BaseEstimator):
    """Predicts the training prevalence; records what each fit received.

    Column 0 of X is the row id, so a record tells which rows were seen.
    """

    def __init__(self, tag="spy"):
        self.tag = tag

    def fit(self, X, y, y_aux=None, groups=None):
        X = np.asarray(X, dtype=float)
        _LOG.append(
            dict(
                tag=self.tag,
                ids=X[:, 0].astype(int),
                y_aux_ids=None if y_aux is None else np.asarray(y_aux)[:, 0],
                groups=None if groups is None else np.asarray(groups),
            )
        )
        self.prior_ = np.clip(np.asarray(y, dtype=float).mean(axis=0), 0.01, 0.99)
        self.classes_ = np.arange(self.prior_.size)
        return self

    def predict_proba(self, X):
        return np.tile(self.prior_, (len(X), 1))

    def predict(self, X):
        return (self.predict_proba(X) > 0.5).astype(int)


class _Constant(ClassifierMixin, BaseEstimator):
    """A useless classifier: P(label = 1) = 0.5 everywhere."""

    def fit(self, X, y, **fit_params):
        self.n_labels_ = np.asarray(y).shape[1]
        self.classes_ = np.arange(self.n_labels_)
        return self

    def predict_proba(self, X):
        return np.full((len(X), self.n_labels_), 0.5)


@pytest.fixture
def log():
    _LOG.clear()
    yield _LOG
    _LOG.clear()


@pytest.fixture(autouse=True)
def _no_routing_leak():
    yield
    sklearn.set_config(enable_metadata_routing=False)


def _world(n_drugs=40, size=6, n_labels=4, seed=0):
    """Drugs of ``size`` replicate rows; labels constant within a drug;
    column 0 of X is the row id, the other columns carry the labels."""
    rng = np.random.RandomState(seed)
    Yd = (rng.uniform(size=(n_drugs, n_labels)) < 0.3).astype(int)
    Y = np.repeat(Yd, size, axis=0)
    groups = np.repeat(np.arange(n_drugs), size)
    n = Y.shape[0]
    signal = Y @ rng.normal(size=(n_labels, 6)) * 2 + rng.normal(size=(n, 6))
    X = np.column_stack([np.arange(n), signal])
    return X, Y, groups


def _knn():
    # column 0 (the row id) is scaled away from mattering much
    return make_pipeline(StandardScaler(), KNeighborsClassifier(15))


def test_weights_on_the_simplex_and_blend_not_worse_than_best_base():
    X, Y, groups = _world()
    blend = StackingBlend(
        [
            ("knn", _knn()),
            ("prior", DummyClassifier(strategy="prior")),
            ("knn5", make_pipeline(StandardScaler(), KNeighborsClassifier(5))),
        ],
        cv=4,
        random_state=0,
    ).fit(X, Y, groups=groups)
    assert blend.weights_.shape == (3,)
    assert (blend.weights_ >= 0).all()
    assert blend.weights_.sum() == pytest.approx(1.0)
    assert blend.oof_predictions_.shape == (3, X.shape[0], Y.shape[1])
    assert set(blend.oof_scores_) == {"knn", "prior", "knn5"}
    for m, name in enumerate(["knn", "prior", "knn5"]):
        assert blend.oof_scores_[name] == pytest.approx(
            mean_columnwise_log_loss(Y, blend.oof_predictions_[m])
        )
    assert blend.oof_score_ <= min(blend.oof_scores_.values()) + 1e-9
    assert blend.oof_score_ == pytest.approx(
        mean_columnwise_log_loss(Y, blend.oof_proba_)
    )
    proba = blend.predict_proba(X)
    assert proba.shape == Y.shape
    assert ((proba > 0) & (proba < 1)).all()
    assert blend.predict(X).shape == Y.shape
    assert list(blend.named_estimators_) == ["knn", "prior", "knn5"]
    # predict_proba is the weighted blend of the refitted base estimators
    expected = sum(
        w * multilabel_proba(e, X) for w, e in zip(blend.weights_, blend.estimators_)
    )
    np.testing.assert_allclose(proba, np.clip(expected, 1e-15, 1 - 1e-15))


def test_useless_estimator_gets_no_weight():
    X, Y, groups = _world()
    # clipped, the knn's probabilities are never 0 for a positive, where a
    # mixture with 0.5 would help
    blend = StackingBlend(
        [("useless", _Constant()), ("good", _knn())],
        cv=4,
        clip=(0.01, 0.99),
        random_state=0,
    ).fit(X, Y, groups=groups)
    assert blend.weights_[1] > 0.99
    assert blend.oof_scores_["useless"] == pytest.approx(np.log(2))
    assert blend.oof_score_ < 0.5 * np.log(2)


def test_per_target_weights_with_shrinkage():
    X, Y, groups = _world()
    est = [("useless", _Constant()), ("good", _knn()), ("prior", DummyClassifier())]
    shrunk = StackingBlend(
        est, cv=4, weights="per_target", shrinkage=0.3, random_state=0
    ).fit(X, Y, groups=groups)
    W = shrunk.target_weights_
    assert W.shape == (Y.shape[1], 3)
    assert (W >= 0).all()
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert not np.allclose(W, shrunk.weights_)  # targets differ
    full = StackingBlend(
        est, cv=4, weights="per_target", shrinkage=1.0, random_state=0
    ).fit(X, Y, groups=groups)
    np.testing.assert_allclose(full.target_weights_, np.tile(full.weights_, (4, 1)))
    # per-target optimum (no shrinkage) fits the OOF predictions at least as well
    free = StackingBlend(
        est, cv=4, weights="per_target", shrinkage=0.0, random_state=0
    ).fit(X, Y, groups=groups)
    assert free.oof_score_ <= full.oof_score_ + 1e-9


def test_fixed_and_uniform_weights():
    X, Y, groups = _world()
    est = [("useless", _Constant()), ("good", _knn())]
    fixed = StackingBlend(est, cv=3, weights=[1, 3]).fit(X, Y, groups=groups)
    np.testing.assert_allclose(fixed.weights_, [0.25, 0.75])
    uniform = StackingBlend(est, cv=3, weights="uniform").fit(X, Y, groups=groups)
    np.testing.assert_allclose(uniform.weights_, [0.5, 0.5])


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(estimators=[]), "non-empty list"),
        (dict(weights="best"), "'weights' parameter of StackingBlend must be"),
        (dict(weights=[1.0]), "weights must be"),
        (dict(shrinkage=2.0), "shrinkage"),
        (dict(clip=(0.9, 0.1)), "clip"),
        (dict(cv="five"), "'cv' parameter of StackingBlend must be"),
        (dict(cv=1), "'cv' parameter of StackingBlend must be"),
    ],
)
def test_bad_params(params, match):
    X, Y, groups = _world(n_drugs=12)
    blend = StackingBlend([("a", _Spy()), ("b", _Spy())], cv=3).set_params(**params)
    with pytest.raises(ValueError, match=match):
        blend.fit(X, Y, groups=groups)


def test_base_estimator_without_predict_proba_is_rejected():
    from sklearn.svm import LinearSVC

    X, Y, groups = _world(n_drugs=12)
    with pytest.raises(TypeError, match="predict_proba"):
        StackingBlend([("svc", LinearSVC())], cv=3).fit(X, Y[:, 0], groups=groups)


def test_inner_cv_is_drug_grouped_and_base_refitted_on_all_rows(log):
    X, Y, groups = _world()
    StackingBlend([("spy", _Spy())], cv=4, random_state=0).fit(X, Y, groups=groups)
    assert len(log) == 5  # 4 inner folds + the refit on all rows
    seen_test = []
    for record in log[:4]:
        left_out = np.setdiff1d(np.arange(len(X)), record["ids"])
        seen_test.append(left_out)
        # whole drugs are left out (groups reached the drug-grouped splitter)
        assert not set(groups[record["ids"]]) & set(groups[left_out])
    np.testing.assert_array_equal(np.sort(np.concatenate(seen_test)), np.arange(240))
    np.testing.assert_array_equal(log[4]["ids"], np.arange(len(X)))


@pytest.mark.parametrize("routing", [False, True])
def test_y_aux_and_groups_sliced_per_inner_fold(log, routing):
    X, Y, groups = _world()
    y_aux = X[:, :1].copy()  # the row id, to check alignment
    sklearn.set_config(enable_metadata_routing=routing)
    spy = _Spy()
    if routing:
        spy.set_fit_request(y_aux=True, groups=True)
    blend = StackingBlend([("spy", spy), ("prior", DummyClassifier())], cv=3)
    blend.fit(X, Y, groups=groups, y_aux=y_aux)
    assert len(log) == 4
    for record in log:
        np.testing.assert_array_equal(record["y_aux_ids"], record["ids"])
        np.testing.assert_array_equal(record["groups"], groups[record["ids"]])
    assert len(log[-1]["ids"]) == len(X)


@pytest.mark.parametrize("routing", [False, True])
def test_metadata_no_base_estimator_takes_raises(routing):
    X, Y, groups = _world(n_drugs=12)
    sklearn.set_config(enable_metadata_routing=routing)
    blend = StackingBlend([("prior", DummyClassifier())], cv=3)
    with pytest.raises((TypeError, ValueError), match="y_aux"):
        blend.fit(X, Y, groups=groups, y_aux=X[:, :1])


def test_set_params_and_grid_search_over_a_base_parameter():
    X, Y, groups = _world()
    blend = StackingBlend([("knn", _knn()), ("prior", DummyClassifier())], cv=3)
    assert blend.get_params()["knn__kneighborsclassifier__n_neighbors"] == 15
    blend.set_params(knn__kneighborsclassifier__n_neighbors=7)
    assert blend.estimators[0][1][-1].n_neighbors == 7
    # routing on: GridSearchCV gives groups to its splitter and to the blend's
    # (with routing off it gives groups to its own splitter only)
    sklearn.set_config(enable_metadata_routing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DrugLeakageWarning)
        search = GridSearchCV(
            blend,
            {"knn__kneighborsclassifier__n_neighbors": [3, 25]},
            cv=DrugMultilabelStratifiedKFold(3, random_state=0),
            scoring=neg_mean_columnwise_log_loss,
        ).fit(X, Y, groups=groups)
    assert search.best_params_["knn__kneighborsclassifier__n_neighbors"] in (3, 25)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_replace_a_base_estimator_by_name():
    blend = StackingBlend([("a", _Spy()), ("b", _Spy())])
    blend.set_params(b=DummyClassifier())
    assert isinstance(blend.estimators[1][1], DummyClassifier)


def _drug_grouped_cv_scores(model, X, Y, groups, routing):
    """cross_val_score under a drug-grouped 3-fold CV, drug ids passed on.

    Routing off: groups= reaches the outer splitter, params= the model's fit.
    No DrugLeakageWarning may come (the inner splits get the drug ids).
    """
    cv = DrugMultilabelStratifiedKFold(3, random_state=0)
    kwargs = {"params": {"groups": groups}}
    if not routing:
        kwargs["groups"] = groups
    with warnings.catch_warnings():
        warnings.simplefilter("error", DrugLeakageWarning)
        return cross_val_score(
            model, X, Y, cv=cv, scoring=neg_mean_columnwise_log_loss, **kwargs
        )


@pytest.mark.parametrize("routing", [False, True])
def test_nested_in_cross_val_score_with_groups(routing):
    X, Y, groups = _world()
    sklearn.set_config(enable_metadata_routing=routing)
    blend = StackingBlend(
        [("knn", _knn()), ("prior", DummyClassifier())], cv=3, random_state=0
    )
    scores = _drug_grouped_cv_scores(blend, X, Y, groups, routing)
    assert scores.shape == (3,)
    assert (scores < 0).all()


def test_groups_for_the_outer_splitter_only_warn():
    X, Y, groups = _world()
    blend = StackingBlend(
        [("knn", _knn()), ("prior", DummyClassifier())], cv=3, random_state=0
    )
    cv = DrugMultilabelStratifiedKFold(3, random_state=0)
    with pytest.warns(DrugLeakageWarning, match="StackingBlend got no drug ids"):
        cross_val_score(blend, X, Y, cv=cv, groups=groups)


def test_n_jobs_gives_the_same_result():
    X, Y, groups = _world(n_drugs=20)
    est = [("knn", _knn()), ("prior", DummyClassifier())]
    a = StackingBlend(est, cv=3, random_state=0).fit(X, Y, groups=groups)
    b = StackingBlend(est, cv=3, random_state=0, n_jobs=2).fit(X, Y, groups=groups)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))


class _Threaded(ClassifierMixin, BaseEstimator):
    """A classifier with an ``n_threads`` parameter that records the value
    it was fitted with."""

    def __init__(self, n_threads=None, random_state=None):
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y):
        self.threads_at_fit_ = self.n_threads
        self.prior_ = DummyClassifier().fit(X, y)
        self.classes_ = self.prior_.classes_
        return self

    def predict_proba(self, X):
        return self.prior_.predict_proba(X)


@pytest.mark.parametrize(
    "n_jobs, cv, refit, cores, expected",
    [
        (None, 3, True, 8, None),  # one process: the engines' own setting
        (2, 3, True, 8, 4),  # 12 fits, 2 at once on 8 cores
        (3, 2, False, 8, 2),  # 6 fold fits, 3 at once
        (3, 2, True, 2, 1),  # 3 at once on 2 cores: at least 1
    ],
)
def test_parallel_fits_share_the_cores_and_predict_with_all(
    monkeypatch, n_jobs, cv, refit, cores, expected
):
    import joblib

    monkeypatch.setattr(joblib, "cpu_count", lambda: cores)
    X, Y, groups = _world(n_drugs=20)
    est = [
        ("default", _Threaded()),
        ("asked", _Threaded(n_threads=3)),  # the user's setting is kept
        ("piped", make_pipeline(StandardScaler(), _Threaded())),
    ]
    blend = StackingBlend(est, cv=cv, refit=refit, n_jobs=n_jobs, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blend.fit(X, Y, groups=groups)
    # the asked 3 threads above each fit's share of the cores: said
    said = [w for w in caught if "more threads than there are" in str(w.message)]
    assert len(said) == (expected is not None and expected < 3)
    fitted = [*blend.estimators_]
    if not refit:
        fitted = [m for models in blend.estimators_ for m in models.estimators_]
    for model in fitted:
        net = model[-1] if hasattr(model, "steps") else model
        assert net.n_threads in (None, 3)  # None again: predict on every core
        if net.n_threads is None:
            assert net.threads_at_fit_ == expected
        else:
            assert net.threads_at_fit_ == 3
    # the blend's own parameters are untouched
    assert blend.estimators[0][1].n_threads is None
    seeds = SeedAveragingClassifier(_Threaded(), n_seeds=2, n_jobs=2, random_state=0)
    seeds.fit(X, Y)
    assert [e.threads_at_fit_ for e in seeds.estimators_] == [cores // 2] * 2
    assert [e.n_threads for e in seeds.estimators_] == [None, None]


class _RestartWarnsFromAThread(ClassifierMixin, BaseEstimator):
    """A base whose fit warns as loky's management thread does when it
    replaces a worker, and with another warning that must get through."""

    def fit(self, X, y):
        import threading

        from moa_sklearn.ensemble._base import _WORKER_RESTART

        def warn():
            warnings.warn(
                f"{_WORKER_RESTART}. This can be caused by ...",
                UserWarning,
                stacklevel=1,
            )
            warnings.warn("another warning", UserWarning, stacklevel=1)

        thread = threading.Thread(target=warn)
        thread.start()
        thread.join()
        self.prior_ = DummyClassifier().fit(X, y)
        self.classes_ = self.prior_.classes_
        return self

    def predict_proba(self, X):
        return self.prior_.predict_proba(X)


def test_fits_side_by_side_warn_when_their_threads_outnumber_the_cores():
    """Parallel fits in local processes give each fit its share of the cores
    (n_threads left at None); an n_threads set above that share starts more
    threads than cores: a warning names it and what to do."""
    from moa_sklearn.ensemble._base import _sharing_cores

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared, keys = _sharing_cores(make_pipeline(_Threaded()), 1)
        assert keys == ["_threaded__n_threads"]
        assert shared.get_params()["_threaded__n_threads"] == 1
        _sharing_cores(_Threaded(n_threads=1), 1)  # its share: fine
        _sharing_cores(_Threaded(n_threads=4), None)  # one process: fine
    with pytest.warns(UserWarning, match="more threads than there are cores") as rec:
        _sharing_cores(make_pipeline(_Threaded(n_threads=2)), 1)
    message = str(rec[0].message)
    assert "_threaded__n_threads=2" in message and "n_jobs=1" in message


def test_a_replaced_worker_is_not_warned_about_other_warnings_are():
    X, Y, groups = _world(n_drugs=20)
    blend = StackingBlend([("a", _RestartWarnsFromAThread())], cv=2, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blend.fit(X, Y, groups=groups)
    messages = [str(w.message) for w in caught]
    assert "another warning" in messages
    assert not [m for m in messages if m.startswith("A worker stopped")]
    # and outside the blend's fits the filter is gone
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _RestartWarnsFromAThread().fit(X, Y)
    assert any(str(w.message).startswith("A worker stopped") for w in caught)


def test_one_dimensional_targets():
    X, Y, groups = _world()
    y = np.where(Y[:, 0] == 1, "moa", np.where(Y[:, 1] == 1, "other", "none"))
    blend = StackingBlend([("knn", _knn()), ("prior", DummyClassifier())], cv=3)
    blend.fit(X, y, groups=groups)
    proba = blend.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(blend.predict(X)) <= set(blend.classes_)


def test_seed_averaged_net_as_base_estimator():
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from moa_sklearn.neural import TwoStepNetClassifier

    X, Y, groups = _world(n_drugs=20)
    net = TwoStepNetClassifier(
        hidden_sizes=(16,),
        dropouts=0.1,
        max_epochs_pretrain=2,
        max_epochs_finetune=2,
        unfreeze_every=1,
        batch_size=32,
        n_seeds=2,
        device="cpu",
        n_threads=1,
        random_state=0,
    )
    blend = StackingBlend([("net", net), ("prior", DummyClassifier())], cv=3)
    blend.fit(X, Y, groups=groups)
    assert len(blend.named_estimators_["net"].models_) == 2
    assert blend.predict_proba(X).shape == Y.shape


# ---------------------------------------------------------------- controls
def _raw_frame(n_drugs=30, seed=0):
    X, Y, groups = _world(n_drugs=n_drugs, seed=seed)
    n = len(X)
    cp_type = np.where(groups % 5 == 0, "ctl_vehicle", "trt_cp")
    Y[cp_type == "ctl_vehicle"] = 0
    frame = pd.DataFrame(X, columns=["id"] + [f"g-{i}" for i in range(X.shape[1] - 1)])
    frame.insert(1, "cp_type", cp_type)
    assert len(frame) == n
    return frame, Y, groups


class _Numeric(ClassifierMixin, BaseEstimator):
    """Drops the raw string column, then delegates (a stand-in for features)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def get_metadata_routing(self):
        return MetadataRouter(owner=self).add(
            estimator=self.estimator,
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )

    def fit(self, X, y, **fit_params):
        if sklearn.get_config()["enable_metadata_routing"]:
            fit_params = process_routing(self, "fit", **fit_params).estimator.fit
        self.estimator_ = clone(self.estimator).fit(
            X.drop(columns="cp_type"), y, **fit_params
        )
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.estimator_.predict_proba(X.drop(columns="cp_type"))

    def predict(self, X):
        return self.estimator_.predict(X.drop(columns="cp_type"))


def test_control_rows_never_seen_and_predicted_at_the_floor(log):
    X, Y, groups = _raw_frame()
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    clf = ControlVehicleClassifier(_Numeric(_Spy()), control_proba=1e-4)
    clf.fit(X, Y, groups=groups, y_aux=X[["id"]].to_numpy())
    assert clf.n_controls_ == control.sum() > 0
    (record,) = log
    assert not control[record["ids"]].any()
    np.testing.assert_array_equal(record["ids"], np.flatnonzero(~control))
    np.testing.assert_array_equal(record["groups"], groups[~control])
    np.testing.assert_array_equal(record["y_aux_ids"], record["ids"])
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape
    assert (proba[control] == 1e-4).all()
    assert (proba[~control] > 0.01 - 1e-12).all()  # the spy's prior, clipped
    assert (clf.predict(X)[control] == 0).all()


def test_control_column_encoded_and_by_index():
    X, Y, groups = _raw_frame()
    enc = X.assign(cp_type=(X["cp_type"] == "ctl_vehicle").astype(int)).rename(
        columns={"cp_type": "cp_type_ctl_vehicle"}
    )
    a = ControlVehicleClassifier(_knn(), column="cp_type_ctl_vehicle", control=1)
    b = ControlVehicleClassifier(_knn(), column=1, control=1)
    pa = a.fit(enc, Y).predict_proba(enc)
    pb = b.fit(enc.to_numpy(), Y).predict_proba(enc.to_numpy())
    np.testing.assert_allclose(pa, pb)
    assert a.n_controls_ == b.n_controls_ > 0
    assert (pa[enc["cp_type_ctl_vehicle"] == 1] == 5e-4).all()


def test_control_column_missing_is_a_clear_error():
    X, Y, _ = _raw_frame()
    clf = ControlVehicleClassifier(_knn(), column="cp_type_ctl_vehicle", control=1)
    with pytest.raises(ValueError, match="control column 'cp_type_ctl_vehicle'"):
        clf.fit(X.drop(columns="cp_type"), Y)
    with pytest.raises(ValueError, match="not a DataFrame"):
        ControlVehicleClassifier(_knn()).fit(X.drop(columns="cp_type").to_numpy(), Y)
    with pytest.raises(ValueError, match="control_proba"):
        ControlVehicleClassifier(_knn(), control_proba=0.0).fit(X, Y)


@pytest.mark.parametrize("routing", [False, True])
def test_controls_around_a_blend_in_cross_val_score(routing):
    X, Y, groups = _raw_frame()
    sklearn.set_config(enable_metadata_routing=routing)
    model = ControlVehicleClassifier(
        _Numeric(StackingBlend([("knn", _knn()), ("prior", DummyClassifier())], cv=3))
    )
    scores = _drug_grouped_cv_scores(model, X, Y, groups, routing)
    assert (scores < 0).all()


def test_control_column_from_the_raw_input_around_a_feature_pipeline(small_world):
    from moa_sklearn.preprocessing import make_moa_features

    X, Y = small_world.data, small_world.target
    features = make_moa_features(
        n_components={"g": 5, "c": 2}, n_clusters={"g": 3, "c": 2}, random_state=0
    )
    clf = ControlVehicleClassifier(make_pipeline(features, KNeighborsClassifier(20)))
    proba = clf.fit(X, Y).predict_proba(X)
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    assert clf.n_controls_ == control.sum() > 0
    # the features too were fitted on treated rows only
    encode = clf.estimator_[0].named_steps["encode"]
    cp_type = list(encode.feature_names_in_[encode.columns_]).index("cp_type")
    assert list(encode.categories_[cp_type]) == ["trt_cp"]
    assert (proba[control] == 5e-4).all()
    assert ((proba > 0) & (proba < 1)).all()


def test_no_inner_cv_with_fixed_weights(log):
    X, Y, groups = _world(n_drugs=12)
    blend = StackingBlend(
        [("spy", _Spy()), ("prior", DummyClassifier())],
        cv=None,
        weights=np.array([3.0, 1.0]),
    ).fit(X, Y, groups=groups)
    assert len(log) == 1  # fitted once, on all rows
    np.testing.assert_allclose(blend.weights_, [0.75, 0.25])
    assert blend.oof_predictions_ is None and blend.oof_score_ is None
    assert blend.predict_proba(X).shape == Y.shape
    with pytest.raises(ValueError, match="cv=None"):
        blend.set_params(weights="optimize").fit(X, Y)


class _SeededSpy(_Spy):
    """A spy with a seed: its prior is shifted by the seed (to see the mean)."""

    def __init__(self, tag="spy", random_state=None):
        self.tag = tag
        self.random_state = random_state

    def fit(self, X, y, y_aux=None, groups=None):
        super().fit(X, y, y_aux=y_aux, groups=groups)
        _LOG[-1]["seed"] = self.random_state
        return self


def test_seed_averaging_sets_every_nested_random_state(log):
    from sklearn.decomposition import PCA

    X, Y, groups = _world(n_drugs=12)
    pipe = make_pipeline(PCA(3, random_state=None), _SeededSpy())
    avg = SeedAveragingClassifier(pipe, n_seeds=3, random_state=0)
    avg.fit(X, Y)
    assert len(avg.estimators_) == 3
    for est, seed in zip(avg.estimators_, avg.seeds_):
        assert est[0].random_state == seed
        assert est[1].random_state == seed
    assert len(set(avg.seeds_)) == 3
    assert avg.predict_proba(X).shape == Y.shape


def test_seed_averaging_is_the_mean_of_the_copies():
    from sklearn.tree import DecisionTreeClassifier

    X, Y, _ = _world(n_drugs=12)
    avg = SeedAveragingClassifier(
        DecisionTreeClassifier(max_features=2, max_depth=3), n_seeds=4, random_state=0
    ).fit(X, Y)
    copies = [multilabel_proba(e, X) for e in avg.estimators_]
    assert not np.allclose(copies[0], copies[1])
    np.testing.assert_allclose(
        avg.predict_proba(X), np.clip(np.mean(copies, axis=0), 1e-15, 1 - 1e-15)
    )


def test_seed_averaging_needs_a_random_state():
    X, Y, _ = _world(n_drugs=12)
    with pytest.raises(ValueError, match="no random_state"):
        SeedAveragingClassifier(KNeighborsClassifier()).fit(X, Y)
    with pytest.raises(ValueError, match="n_seeds"):
        SeedAveragingClassifier(_SeededSpy(), n_seeds=0).fit(X, Y)


@pytest.mark.parametrize("routing", [False, True])
def test_seed_averaged_base_in_a_blend_gets_y_aux(log, routing):
    X, Y, groups = _world(n_drugs=12)
    sklearn.set_config(enable_metadata_routing=routing)
    spy = _SeededSpy()
    if routing:
        spy.set_fit_request(y_aux=True, groups=False)
    avg = SeedAveragingClassifier(spy, n_seeds=2, random_state=0)
    blend = StackingBlend([("avg", avg), ("prior", DummyClassifier())], cv=3)
    if routing:
        blend.fit(X, Y, groups=groups, y_aux=X[:, :1])
    else:
        # routing off, groups reach the splitter only: the averager's fit
        # takes **fit_params, not a named groups
        blend.fit(X, Y, groups=groups)
    assert len(log) == 2 * 4  # 2 seeds x (3 folds + the refit)
    assert len({r["seed"] for r in log}) == 2
    if routing:
        for record in log:
            np.testing.assert_array_equal(record["y_aux_ids"], record["ids"])


class _SeededConstant(_Constant):
    def __init__(self, random_state=None):
        self.random_state = random_state


@pytest.mark.parametrize(
    "model",
    [
        StackingBlend([("c", _Constant())], cv=3),
        SeedAveragingClassifier(_SeededConstant(), n_seeds=2),
    ],
    ids=["StackingBlend", "SeedAveragingClassifier"],
)
def test_probability_of_exactly_one_half_predicts_zero(model):
    """predict is proba > 0.5 (OneVsRestClassifier's rule), so predict and
    predict_proba().round() agree even on ties, as scikit-learn checks."""
    X, Y, groups = _world()
    params = {"groups": groups} if isinstance(model, StackingBlend) else {}
    model = clone(model).fit(X, Y, **params)
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(proba, 0.5)
    pred = model.predict(X)
    np.testing.assert_array_equal(pred, 0)
    np.testing.assert_array_equal(pred, proba.round().astype(int))


# ------------------------------------------- base models that misbehave
class _Broken(ClassifierMixin, BaseEstimator):
    """A classifier whose predict_proba is broken in one way (``fault``)."""

    def __init__(self, fault="nan", random_state=None):
        self.fault = fault
        self.random_state = random_state

    def fit(self, X, y):
        if self.fault == "ctrl_c":  # a real Ctrl-C while this base model fits
            os.kill(os.getpid(), signal.SIGINT)
        y = np.asarray(y)
        if y.ndim == 2:
            self.n_out_ = y.shape[1]
            self.classes_ = np.arange(self.n_out_)
        else:
            self.classes_ = np.unique(y)
            self.n_out_ = self.classes_.size
        return self

    def predict_proba(self, X):
        n = len(X)
        p = np.full((n, self.n_out_), 1.0 / self.n_out_)
        if self.fault == "nan":
            p[n // 2, 0] = np.nan
        elif self.fault == "inf":
            p[0, -1] = np.inf
        elif self.fault == "logits":
            p[0, 0] = 2.5
        elif self.fault == "rows":
            p = p[:-1]
        elif self.fault == "columns":
            p = p[:, :-1]
        elif self.fault == "ragged":
            return [np.ones((n, 2)), np.ones((n - 1, 2))]
        return p


_FAULTS = {
    "nan": "1 NaN",
    "inf": "infinite",
    "logits": "outside [0, 1]",
    "rows": "shape",
    "columns": "shape",
    "ragged": "",
}


@pytest.fixture(scope="module")
def small_xy():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    Y = (rng.uniform(size=(60, 3)) < 0.4).astype(int)
    Y[:, 2] = X[:, 0] > 0
    return X, Y


@pytest.mark.parametrize("fault", sorted(_FAULTS))
@pytest.mark.parametrize("first", [True, False])
def test_blend_names_a_broken_base_estimator(small_xy, fault, first):
    X, Y = small_xy
    good = ("knn", KNeighborsClassifier(5))
    bad = ("broken", _Broken(fault))
    blend = StackingBlend([bad, good] if first else [good, bad], cv=3, random_state=0)
    with pytest.raises(ValueError, match="StackingBlend") as info:
        blend.fit(X, Y)
    message = str(info.value)
    assert "'broken' (_Broken)" in message and _FAULTS[fault] in message
    assert "KNeighbors" not in message and "left" not in message


def test_blend_checks_base_outputs_at_predict_time(small_xy):
    X, Y = small_xy
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(5)), ("broken", _Broken("none"))],
        cv=None,
        weights="uniform",
    ).fit(X, Y)
    assert np.isfinite(blend.predict_proba(X)).all()
    blend.named_estimators_["broken"].fault = "nan"
    with pytest.raises(ValueError, match=r"'broken' \(_Broken\) returned 1 NaN"):
        blend.predict_proba(X)


@pytest.mark.parametrize("fault", sorted(_FAULTS))
def test_seed_averaging_names_a_broken_base_estimator(small_xy, fault):
    X, Y = small_xy
    avg = SeedAveragingClassifier(_Broken(fault), n_seeds=2, random_state=0)
    with pytest.raises(ValueError, match="SeedAveragingClassifier") as info:
        avg.fit(X, Y).predict_proba(X)
    assert "(_Broken) with seed" in str(info.value)
    assert _FAULTS[fault] in str(info.value)


@pytest.mark.parametrize("fault", sorted(_FAULTS))
@pytest.mark.parametrize("column", [None, 0])
def test_control_vehicle_names_a_broken_base_estimator(small_xy, fault, column):
    X, Y = small_xy
    X = X.copy()
    X[::5, 0] = -1.0  # every fifth row is a control row
    Y = Y.copy()
    Y[::5] = 0
    clf = ControlVehicleClassifier(_Broken(fault), column=column, control=-1.0)
    with pytest.raises(ValueError, match=r"ControlVehicleClassifier.*\(_Broken\)"):
        clf.fit(X, Y).predict_proba(X)


@pytest.mark.parametrize("fault", ["nan", "logits", "columns"])
def test_broken_base_estimator_with_1d_target(small_xy, fault):
    X, Y = small_xy
    y = Y[:, 2]
    for meta in (
        StackingBlend([("broken", _Broken(fault))], cv=3, random_state=0),
        SeedAveragingClassifier(_Broken(fault), n_seeds=2, random_state=0),
        ControlVehicleClassifier(_Broken(fault), column=None),
    ):
        with pytest.raises(ValueError, match=type(meta).__name__):
            meta.fit(X, y).predict_proba(X)


def test_ctrl_c_in_a_base_estimator_propagates(small_xy, sigint_raises):
    X, Y = small_xy
    good = ("knn", KNeighborsClassifier(5))
    for meta in (
        StackingBlend([good, ("broken", _Broken("ctrl_c"))], cv=3, random_state=0),
        StackingBlend([("broken", _Broken("ctrl_c"))], cv=None, weights="uniform"),
        SeedAveragingClassifier(_Broken("ctrl_c"), n_seeds=2, random_state=0),
        ControlVehicleClassifier(_Broken("ctrl_c"), column=None),
    ):
        with pytest.raises(KeyboardInterrupt):
            meta.fit(X, Y)
        assert not any(hasattr(meta, a) for a in ("estimators_", "estimator_"))


def test_nan_in_y_names_the_column(small_xy):
    X, Y = small_xy
    Y = pd.DataFrame(Y.astype(float), columns=["a", "b", "c"])
    Y.iloc[4, 1] = np.nan
    for meta in (
        StackingBlend([("knn", KNeighborsClassifier(5))], cv=3),
        SeedAveragingClassifier(_Broken("none"), n_seeds=2, random_state=0),
        ControlVehicleClassifier(KNeighborsClassifier(5), column=None),
    ):
        with pytest.raises(ValueError, match=r"y contains NaN in column\(s\) \['b'\]"):
            meta.fit(X, Y)


# ------------------------------------------------------ one reader, one rule


@pytest.mark.parametrize(
    "meta",
    [
        StackingBlend([("knn", KNeighborsClassifier(5))], cv=3),
        SeedAveragingClassifier(_Broken("none"), n_seeds=2, random_state=0),
        ControlVehicleClassifier(KNeighborsClassifier(5), column=None),
    ],
    ids=lambda m: type(m).__name__,
)
def test_meta_estimators_read_y_alike(small_xy, meta):
    # ControlVehicleClassifier used to fit a 2-D y of other values than 0/1
    X, Y = small_xy
    with pytest.raises(ValueError, match="0/1 label indicator matrix"):
        clone(meta).fit(X, Y * 2)
    fitted = clone(meta).fit(X, pd.DataFrame(Y, columns=["a", "b", "c"]))
    np.testing.assert_array_equal(fitted.classes_, [0, 1, 2])
    assert fitted.predict(X).dtype == Y.dtype


def test_transform_gives_each_base_models_probabilities(small_xy):
    X, Y = small_xy
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(5)), ("prior", DummyClassifier())],
        cv=3,
        clip=(0.01, 0.99),
        random_state=0,
    ).fit(X, Y)
    T = blend.transform(X)
    assert T.shape == (60, 2 * 3)
    per_model = T.reshape(60, 2, 3)
    np.testing.assert_allclose(
        per_model[:, 0], multilabel_proba(blend.named_estimators_["knn"], X)
    )
    np.testing.assert_allclose(per_model[:, 1], np.tile(Y.mean(axis=0), (60, 1)))
    # predict_proba blends, then clips, exactly these
    blended = np.einsum("nmk,km->nk", per_model, blend.target_weights_)
    np.testing.assert_allclose(blend.predict_proba(X), np.clip(blended, 0.01, 0.99))
    assert list(blend.get_feature_names_out()) == [
        f"stackingblend_{name}{j}" for name in ("knn", "prior") for j in range(3)
    ]
    # a 1-D target: a column per class and base model
    y = np.array(["a", "b", "c"])[Y[:, 0] + Y[:, 2]]
    blend.fit(X, y)
    assert blend.transform(X).shape == (60, 2 * 3)


def test_control_rule_reaches_per_model_probabilities():
    X, Y, groups = _raw_frame()
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    blend = StackingBlend([("knn", _knn()), ("prior", DummyClassifier())], cv=3)
    features = make_column_transformer(("drop", ["cp_type"]), remainder="passthrough")
    clf = ControlVehicleClassifier(
        make_pipeline(features, blend), control_proba=1e-4
    ).fit(X, Y, stackingblend__groups=groups)
    per_model = clf.transform(X).reshape(len(X), 2, Y.shape[1])
    assert (per_model[control] == 1e-4).all()
    # the treated rows: the pipeline's (features, then the blend's transform)
    np.testing.assert_allclose(
        per_model[~control],
        clf.estimator_.transform(X[~control]).reshape(-1, 2, Y.shape[1]),
    )
    assert clf.get_feature_names_out().size == 2 * Y.shape[1]
    # the control rule is the same in predict_proba and predict
    assert (clf.predict_proba(X)[control] == 1e-4).all()
    assert (clf.predict(X)[control] == 0).all()
    assert not hasattr(ControlVehicleClassifier(KNeighborsClassifier()), "transform")


def test_control_rows_of_a_1d_target_get_the_first_class():
    X, Y, _ = _raw_frame()
    y = np.where(Y[:, 0] == 1, "moa", "none")
    clf = ControlVehicleClassifier(_Numeric(KNeighborsClassifier()), control_proba=0.1)
    proba = clf.fit(X, y).predict_proba(X)
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    np.testing.assert_array_equal(clf.classes_, ["moa", "none"])
    np.testing.assert_allclose(proba[control], [[0.9, 0.1]] * control.sum())
    assert (clf.predict(X)[control] == "moa").all()
    # with more classes the first must stay the most probable
    y3 = np.array(["a", "b", "c"])[Y[:, 0] + Y[:, 1]]
    with pytest.raises(ValueError, match="too large for 3 classes"):
        clf.set_params(control_proba=0.4).fit(X, y3)


class _CountingKNN(KNeighborsClassifier):
    """KNN that counts its fits (class attribute; the blend runs in-process)."""

    n_fits = 0

    def fit(self, X, y):
        type(self).n_fits += 1
        return super().fit(X, y)


def test_refit_false_predicts_with_the_mean_of_the_fold_models(small_xy):
    X, Y = small_xy
    drugs = np.arange(60) // 3
    kwargs = dict(cv=3, random_state=0)
    _CountingKNN.n_fits = 0
    folds = StackingBlend(
        [("knn", _CountingKNN(5)), ("prior", DummyClassifier())],
        refit=False,
        **kwargs,
    ).fit(X, Y, groups=drugs)
    assert _CountingKNN.n_fits == 3  # the inner folds only, no refit
    refit = StackingBlend(
        [("knn", KNeighborsClassifier(5)), ("prior", DummyClassifier())], **kwargs
    ).fit(X, Y, groups=drugs)
    # the same out-of-fold predictions, hence the same weights
    np.testing.assert_allclose(folds.oof_predictions_, refit.oof_predictions_)
    np.testing.assert_allclose(folds.weights_, refit.weights_)
    knn = folds.named_estimators_["knn"]
    assert len(knn.estimators_) == 3
    mean = np.mean([multilabel_proba(e, X) for e in knn.estimators_], axis=0)
    per_model = folds.transform(X).reshape(60, 2, 3)
    np.testing.assert_allclose(per_model[:, 0], mean)
    expected = np.einsum("nmk,km->nk", per_model, folds.target_weights_)
    np.testing.assert_allclose(folds.predict_proba(X), expected, atol=1e-12)
    assert not np.allclose(folds.predict_proba(X), refit.predict_proba(X))


def test_keep_fold_models_predicts_both_ways_from_one_fit(small_xy):
    X, Y = small_xy
    drugs = np.arange(60) // 3
    estimators = [("knn", KNeighborsClassifier(5)), ("prior", DummyClassifier())]
    kwargs = dict(cv=3, random_state=0)
    both = StackingBlend(estimators, keep_fold_models=True, **kwargs)
    both.fit(X, Y, groups=drugs)
    refit = StackingBlend(estimators, **kwargs).fit(X, Y, groups=drugs)
    folds = StackingBlend(estimators, refit=False, **kwargs).fit(X, Y, groups=drugs)
    assert refit.fold_models_ is None
    assert len(both.fold_models_["knn"].estimators_) == 3
    assert folds.fold_models_["knn"] is folds.named_estimators_["knn"]
    # the refits predict as the plain blend, the fold models as refit=False
    np.testing.assert_allclose(both.predict_proba(X), refit.predict_proba(X))
    P = both._fold_models_probas(X)
    assert P.shape == (3, 60, 3)  # the blend, then each base classifier
    np.testing.assert_allclose(P[0], folds.predict_proba(X))
    np.testing.assert_allclose(P[1:].swapaxes(0, 1).reshape(60, -1), folds.transform(X))
    with pytest.raises(AttributeError, match="keep_fold_models=True"):
        refit._fold_models_probas(X)
    no_cv = StackingBlend(estimators, cv=None, weights="uniform", keep_fold_models=True)
    with pytest.raises(ValueError, match="keep_fold_models=True .* needs an inner CV"):
        no_cv.fit(X, Y)


def test_refit_false_aligns_classes_a_fold_model_missed():
    X = np.arange(40, dtype=float).reshape(-1, 1)
    y = np.array([0] * 18 + [1] * 18 + [2] * 4)  # class 2 in one fold only
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(3))],
        cv=DrugMultilabelStratifiedKFold(2, max_drug_size=None, shuffle=False),
        refit=False,
    ).fit(X, y, groups=np.arange(40) // 2)
    proba = blend.predict_proba(X)
    assert proba.shape == (40, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_refit_false_needs_an_inner_cv(small_xy):
    X, Y = small_xy
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(5))], cv=None, weights="uniform", refit=False
    )
    with pytest.raises(ValueError, match="refit=False .* needs an inner CV"):
        blend.fit(X, Y)


def test_final_estimator_is_fitted_on_out_of_fold_predictions_only(small_xy):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    X, Y = small_xy
    meta = MultiOutputClassifier(LogisticRegression(C=0.5))
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(5)), ("prior", DummyClassifier())],
        cv=3,
        final_estimator=meta,
        random_state=0,
    ).fit(X, Y, groups=np.arange(60) // 3)
    oof_features = np.concatenate(list(blend.oof_predictions_), axis=1)
    by_hand = clone(meta).fit(oof_features, Y)
    for fitted, expected in zip(
        blend.final_estimator_.estimators_, by_hand.estimators_
    ):
        np.testing.assert_allclose(fitted.coef_, expected.coef_)
    expected = multilabel_proba(by_hand, blend.transform(X))
    np.testing.assert_allclose(blend.predict_proba(X), expected, atol=1e-12)
    np.testing.assert_allclose(
        blend.oof_proba_, multilabel_proba(by_hand, oof_features), atol=1e-12
    )
    weighted = StackingBlend(
        [("knn", KNeighborsClassifier(5)), ("prior", DummyClassifier())],
        cv=3,
        random_state=0,
    ).fit(X, Y, groups=np.arange(60) // 3)
    assert weighted.final_estimator_ is None
    np.testing.assert_allclose(blend.weights_, weighted.weights_)


def test_final_estimator_for_class_labels():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 3))
    y = np.array(["a", "b", "c"])[(X[:, 0] > -0.4).astype(int) + (X[:, 0] > 0.4)]
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(5)), ("prior", DummyClassifier())],
        cv=3,
        final_estimator=LogisticRegression(),
        random_state=0,
    ).fit(X, y, groups=np.arange(90) // 3)
    proba = blend.predict_proba(X)
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (blend.predict(X) == y).mean() > 0.8


def test_final_estimator_needs_an_inner_cv(small_xy):
    from sklearn.linear_model import LogisticRegression

    X, Y = small_xy
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(5))],
        cv=None,
        weights="uniform",
        final_estimator=LogisticRegression(),
    )
    with pytest.raises(ValueError, match="final_estimator .* needs an inner CV"):
        blend.fit(X, Y)


def test_per_target_stage_is_a_logistic_regression_per_output_on_logits():
    """Unpenalised (huge C), PerTargetLogit is scikit-learn's logistic
    regression of each output on the logits of that output's predictions;
    with a huge penalty it is the plain mean of the logits."""
    from scipy.special import expit, logit
    from sklearn.linear_model import LogisticRegression

    from moa_sklearn.ensemble._weights import PerTargetLogit

    rng = np.random.RandomState(0)
    n, k = 400, 3
    Z = rng.normal(size=(2, n, k))
    Y = (rng.uniform(size=(n, k)) < expit(0.5 + 1.5 * Z[0] - 0.5 * Z[1])).astype(int)
    P = expit(Z)
    free = PerTargetLogit(C=1e8).fit(P, Y)
    for j in range(k):
        lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
        lr.fit(logit(P[:, :, j]).T, Y[:, j])
        np.testing.assert_allclose(free.coef_[j], lr.coef_[0], atol=1e-3)
        np.testing.assert_allclose(free.intercept_[j], lr.intercept_[0], atol=1e-3)
    stiff = PerTargetLogit(C=1e-9).fit(P, Y)
    np.testing.assert_allclose(
        stiff.predict_proba(P), expit(logit(P).mean(axis=0)), atol=1e-6
    )


def test_per_target_final_estimator_rescales_what_weights_cannot():
    """Two base classifiers whose probabilities are too soft: no weighted
    average sharpens them, the per-output stage does, out of fold and on new
    rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(900, 4))
    Y = (rng.uniform(size=(900, 2)) < 1 / (1 + np.exp(-3 * X[:, :2]))).astype(int)
    soft = MultiOutputClassifier(LogisticRegression(C=0.002))
    estimators = [("a", soft), ("b", clone(soft).set_params(estimator__C=0.003))]
    kwargs = dict(cv=3, random_state=0)
    drugs = np.arange(600) // 3
    weighted = StackingBlend(estimators, **kwargs).fit(X[:600], Y[:600], groups=drugs)
    stacked = StackingBlend(estimators, final_estimator="per_target", **kwargs)
    stacked.fit(X[:600], Y[:600], groups=drugs)
    assert stacked.final_estimator_.coef_.shape == (2, 2)
    assert (stacked.final_estimator_.coef_.sum(axis=1) > 1.5).all()  # sharpened
    np.testing.assert_allclose(
        stacked.oof_proba_,
        np.clip(
            stacked.final_estimator_.predict_proba(stacked.oof_predictions_),
            1e-15,
            1 - 1e-15,
        ),
    )
    assert stacked.oof_score_ < 0.9 * weighted.oof_score_
    new = slice(600, None)
    assert mean_columnwise_log_loss(
        Y[new], stacked.predict_proba(X[new])
    ) < 0.9 * mean_columnwise_log_loss(Y[new], weighted.predict_proba(X[new]))
    np.testing.assert_allclose(stacked.weights_, weighted.weights_)


def test_per_target_final_estimator_for_class_labels():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))
    y = np.array(["a", "b", "c"])[(X[:, 0] > -0.4).astype(int) + (X[:, 0] > 0.4)]
    fit, new = slice(0, 150), slice(150, None)
    blend = StackingBlend(
        [("knn", KNeighborsClassifier(5)), ("prior", DummyClassifier())],
        cv=3,
        final_estimator="per_target",
        random_state=0,
    ).fit(X[fit], y[fit], groups=np.arange(150) // 3)
    proba = blend.predict_proba(X[new])
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # one logistic regression per class, renormalised: on new rows about as
    # accurate as the weighted average of the same base classifiers
    weighted = clone(blend).set_params(final_estimator=None)
    weighted.fit(X[fit], y[fit], groups=np.arange(150) // 3)
    accuracy = (blend.predict(X[new]) == y[new]).mean()
    assert accuracy > 0.8
    assert accuracy >= (weighted.predict(X[new]) == y[new]).mean() - 0.03
    with pytest.raises(ValueError, match="final_estimator"):
        clone(blend).set_params(final_estimator="stack").fit(X, y)


# ------------------------------------------------- cv="validation" (one fit)
class _HeldOut(ClassifierMixin, BaseEstimator):
    """Holds out rows as the nets do (the same split for the same
    random_state) and keeps its predictions on them; ``noise`` spoils its
    probabilities (a worse model). Column 0 of X is the row id."""

    def __init__(self, noise=0.0, validation_fraction=0.2, random_state=None):
        self.noise = noise
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        from moa_sklearn.neural._base import _inner_validation_split

        X, Y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        _LOG.append(dict(ids=X[:, 0].astype(int), random_state=self.random_state))
        train, valid = _inner_validation_split(
            Y, groups, self.validation_fraction, self.random_state
        )
        self.knn_ = KNeighborsClassifier(7).fit(X[train][:, 1:], Y[train])
        self.classes_ = np.arange(Y.shape[1])
        self.validation_indices_ = valid
        self.validation_proba_ = None if valid is None else self.predict_proba(X[valid])
        return self

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float)
        P = multilabel_proba(self.knn_, X[:, 1:])
        rng = np.random.RandomState(len(X))
        return np.clip(P + self.noise * rng.uniform(-1, 1, P.shape), 0.01, 0.99)


def _held_out_bases():
    return [("good", _HeldOut()), ("noisy", _HeldOut(noise=0.4, random_state=7))]


def test_validation_cv_fits_once_and_weighs_on_the_shared_held_out_rows(log):
    from moa_sklearn.ensemble._weights import blend_weights

    X, Y, groups = _world()
    blend = StackingBlend(_held_out_bases(), cv="validation", random_state=0)
    blend.fit(X, Y, groups=groups)
    # one fit per base, on all rows, each with the same seed drawn from the
    # blend's random_state (the noisy base's own 7 is replaced)
    assert len(log) == 2
    for record in log:
        np.testing.assert_array_equal(record["ids"], np.arange(len(X)))
    seeds = {record["random_state"] for record in log}
    assert len(seeds) == 1 and seeds != {None} and seeds != {7}
    good, noisy = blend.estimators_
    rows = blend.oof_indices_
    np.testing.assert_array_equal(rows, good.validation_indices_)
    np.testing.assert_array_equal(rows, noisy.validation_indices_)
    # whole drugs held out, on which the weights are chosen
    assert 0 < rows.size < len(X) and not set(groups[rows]) & set(
        np.delete(groups, rows)
    )
    oof = np.stack([good.validation_proba_, noisy.validation_proba_])
    np.testing.assert_allclose(blend.oof_predictions_, oof)
    w, _ = blend_weights("optimize", oof, Y[rows], n_estimators=2, shrinkage=0.5)
    np.testing.assert_allclose(blend.weights_, w)
    assert blend.weights_[0] > blend.weights_[1]
    assert blend.oof_scores_["good"] == pytest.approx(
        mean_columnwise_log_loss(Y[rows], oof[0])
    )
    expected = w[0] * good.predict_proba(X) + w[1] * noisy.predict_proba(X)
    np.testing.assert_allclose(blend.predict_proba(X), expected)
    assert blend.fold_models_ is None
    # the same seed again: the same blend; another: other held-out rows
    again = clone(blend).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(again.oof_indices_, rows)
    other = clone(blend).set_params(random_state=1).fit(X, Y, groups=groups)
    assert not np.array_equal(other.oof_indices_, rows)


@pytest.mark.parametrize("routing", [False, True])
def test_validation_cv_routes_groups_to_the_bases(log, routing):
    X, Y, groups = _world()
    sklearn.set_config(enable_metadata_routing=routing)
    bases = _held_out_bases()
    if routing:
        bases = [(n, e.set_fit_request(groups=True)) for n, e in bases]
    blend = StackingBlend(bases, cv="validation", random_state=0)
    blend.fit(X, Y, groups=groups)
    rows = blend.oof_indices_
    assert not set(groups[rows]) & set(np.delete(groups, rows))


def test_validation_cv_final_estimator_and_pipeline_bases(log):
    X, Y, groups = _world()
    sklearn.set_config(enable_metadata_routing=True)  # groups into the Pipeline
    bases = [
        (
            "good",
            make_pipeline(
                StandardScaler(with_std=False), _HeldOut().set_fit_request(groups=True)
            ),
        ),
        ("noisy", _HeldOut(noise=0.4).set_fit_request(groups=True)),
    ]
    blend = StackingBlend(
        bases, cv="validation", final_estimator="per_target", random_state=0
    ).fit(X, Y, groups=groups)
    # the Pipeline's last step got the shared seed too: the same rows
    assert log[0]["random_state"] == log[1]["random_state"] is not None
    np.testing.assert_array_equal(
        blend.oof_indices_, blend.estimators_[1].validation_indices_
    )
    coef = blend.final_estimator_.coef_
    assert coef.shape == (Y.shape[1], 2)
    assert blend.oof_proba_.shape == (blend.oof_indices_.size, Y.shape[1])


def test_validation_cv_weighs_on_the_rows_every_base_held_out(log):
    X, Y, groups = _world()
    bases = [("a", _HeldOut(validation_fraction=0.2)), ("b", _HeldOut(noise=0.2))]
    bases[1][1].set_params(validation_fraction=0.5)
    blend = StackingBlend(bases, cv="validation", random_state=0)
    blend.fit(X, Y, groups=groups)
    a, b = blend.estimators_
    expected = np.intersect1d(a.validation_indices_, b.validation_indices_)
    assert expected.size < a.validation_indices_.size
    np.testing.assert_array_equal(blend.oof_indices_, expected)


@pytest.mark.parametrize(
    "bases, params, match",
    [
        ([("knn", KNeighborsClassifier(5))], {}, "'knn' .* has none"),
        (
            [("held", _HeldOut(validation_fraction=None))],
            {},
            "'held' .* has none .* validation_fraction > 0",
        ),
        ([("held", _HeldOut())], dict(refit=False), "refit=False .* inner CV"),
        (
            [("held", _HeldOut())],
            dict(keep_fold_models=True),
            "keep_fold_models=True .* inner CV",
        ),
        ([("held", _HeldOut())], dict(cv="holdout"), "cv"),
    ],
)
def test_validation_cv_errors(bases, params, match):
    X, Y, groups = _world(n_drugs=10)
    blend = StackingBlend(bases, **{"cv": "validation", **params})
    with pytest.raises(ValueError, match=match):
        blend.fit(X, Y, groups=groups)


def test_validation_cv_without_rows_in_common_is_an_error(monkeypatch):
    X, Y, groups = _world(n_drugs=10)

    class _Elsewhere(_HeldOut):  # holds out the rows the other base trains on
        def fit(self, X, y, groups=None):
            super().fit(X, y, groups)
            self.validation_indices_ = np.setdiff1d(
                np.arange(len(X)), self.validation_indices_
            )
            return self

    bases = [("a", _HeldOut()), ("b", _Elsewhere())]
    with pytest.raises(ValueError, match="no row in common"):
        StackingBlend(bases, cv="validation").fit(X, Y, groups=groups)
