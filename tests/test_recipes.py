"""make_moa_pipeline: the whole recipe under CV, routing and GridSearchCV."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.neighbors import KNeighborsClassifier

from moa_sklearn import recipes
from moa_sklearn.datasets import make_moa
from moa_sklearn.ensemble import ControlVehicleClassifier, StackingBlend
from moa_sklearn.metrics import neg_mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
from moa_sklearn.recipes import make_moa_pipeline

pytest.importorskip("torch")
pytest.importorskip("skorch")

# tiny nets: a fit takes a fraction of a second
TINY = {
    "twostep": dict(
        hidden_sizes=(16,),
        dropouts=0.1,
        max_epochs_pretrain=2,
        max_epochs_finetune=2,
        unfreeze_every=1,
        batch_size=64,
        device="cpu",
        n_threads=1,
    ),
    "keras": dict(hidden_sizes=(16,), dropouts=0.1, max_epochs=2, device="cpu"),
    "tabnet": dict(
        n_d=8, n_a=8, max_epochs=2, batch_size=64, virtual_batch_size=16, n_threads=1
    ),
}
FEATURES = dict(n_components={"g": 6, "c": 3}, n_clusters={"g": 3, "c": 2})


@pytest.fixture(scope="module")
def world():
    return make_moa(
        n_samples=300,
        n_test=0,
        n_genes=24,
        n_cells=8,
        n_scored=6,
        n_nonscored=5,
        random_state=0,
    )


@pytest.fixture(autouse=True)
def _no_routing_leak():
    yield
    sklearn.set_config(enable_metadata_routing=False)


def _pipe(models=("twostep",), **kwargs):
    kwargs.setdefault("cv", 2)
    return make_moa_pipeline(
        models,
        random_state=0,
        feature_params=FEATURES,
        model_params={m: TINY[m] for m in models if isinstance(m, str)},
        **kwargs,
    )


def test_structure_and_parameter_names():
    pipe = _pipe()
    # the control rows are recognised on the raw frame, before any feature step
    assert isinstance(pipe, ControlVehicleClassifier)
    assert pipe.column == "cp_type" and pipe.control == "ctl_vehicle"
    assert list(pipe.estimator.named_steps) == ["features", "model"]
    assert isinstance(pipe.estimator.named_steps["model"], StackingBlend)
    params = pipe.get_params()
    assert params["estimator__model__twostep__hidden_sizes"] == (16,)
    assert params["estimator__model__twostep__random_state"] == 0
    assert params["estimator__features__pca__n_components"] == FEATURES["n_components"]
    assert params["estimator__model__cv"] == 2
    assert _pipe(control_column=None).column is None


def test_profiles():
    quick = make_moa_pipeline(["twostep"], profile="quick")
    full = make_moa_pipeline(["twostep"], profile="full")
    from moa_sklearn.neural import TwoStepNetClassifier

    default = TwoStepNetClassifier()
    q = quick.get_params()
    f = full.get_params()
    assert (
        q["estimator__model__twostep__max_epochs_pretrain"]
        < default.max_epochs_pretrain
    )
    assert f["estimator__model__twostep__hidden_sizes"] == default.hidden_sizes
    assert f["estimator__features__pca__n_components"] == "auto"
    assert (q["estimator__model__cv"], f["estimator__model__cv"]) == (3, "validation")


@pytest.mark.parametrize("n_jobs", [None, 2, -1])
def test_n_jobs_is_the_blends_and_leaves_the_nets_threads_to_it(n_jobs):
    """The nets' n_threads stay None (the blend sets them for its parallel
    fits only: tests/test_ensemble.py), unless model_params gives them."""
    pytest.importorskip("keras")
    models = ["twostep", "keras"]
    pipe = make_moa_pipeline(models, profile="full", n_jobs=n_jobs)
    params = pipe.get_params()
    assert params["estimator__model__n_jobs"] == n_jobs
    for name in models:
        assert params[f"estimator__model__{name}__n_threads"] is None
    asked = make_moa_pipeline(
        models,
        profile="full",
        n_jobs=n_jobs,
        model_params={"twostep": {"n_threads": 3}},
    )
    assert asked.get_params()["estimator__model__twostep__n_threads"] == 3


def test_full_profile_has_one_tabnet_unless_asked():
    pytest.importorskip("pytorch_tabnet")
    from moa_sklearn.neural import TabNetMultilabelClassifier

    alone = TabNetMultilabelClassifier()
    assert (alone.n_seeds, alone.average_epochs) == (3, "proba")
    full = make_moa_pipeline(["tabnet"], profile="full").get_params()
    # one seed whose best epochs' weights are averaged: one network to predict
    assert full["estimator__model__tabnet__n_seeds"] == 1
    assert full["estimator__model__tabnet__average_epochs"] == "weights"
    assert full["estimator__model__tabnet__max_epochs"] == 200  # else defaults
    assert full["estimator__model__tabnet__n_best_epochs"] == 10
    asked = make_moa_pipeline(
        ["tabnet"],
        profile="full",
        model_params={"tabnet": {"n_seeds": 3, "average_epochs": "proba"}},
    ).get_params()
    assert asked["estimator__model__tabnet__n_seeds"] == 3
    assert asked["estimator__model__tabnet__average_epochs"] == "proba"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(models=["xgboost"]), "Unknown model"),
        (dict(models=[]), "empty"),
        (dict(models=["twostep"], profile="slow"), "profile"),
        (dict(models=["twostep"], model_params={"lgbm": {}}), "unknown models"),
        (dict(models=[42]), "models must be"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_moa_pipeline(**kwargs)


def test_auto_leaves_out_missing_engines_but_explicit_raises(monkeypatch):
    monkeypatch.setattr(recipes, "_installed", lambda name: name != "keras")
    with pytest.warns(UserWarning, match="keras"):
        pipe = make_moa_pipeline("auto")
    names = [n for n, _ in pipe.estimator.named_steps["model"].estimators]
    assert names == ["twostep", "tabnet"]


def test_auto_without_any_engine_is_one_error_no_warning(monkeypatch):
    monkeypatch.setattr(recipes, "_installed", lambda name: False)  # core only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImportError, match="no installed engine"):
            make_moa_pipeline("auto")


def test_routing_requests_only_when_routing_is_on():
    off = _pipe()  # routing off: nothing requested, and no error
    sklearn.set_config(enable_metadata_routing=True)
    on = _pipe()
    net = on.estimator.named_steps["model"].estimators[0][1]
    requests = net.get_metadata_routing().fit.requests
    assert requests["y_aux"] is True and requests["groups"] is True
    net_off = off.estimator.named_steps["model"].estimators[0][1]
    assert net_off.get_metadata_routing().fit.requests["y_aux"] is None
    unrequested = _pipe(route_metadata=False)
    net_un = unrequested.estimator.named_steps["model"].estimators[0][1]
    assert net_un.get_metadata_routing().fit.requests["y_aux"] is None


def test_three_nets_fit_and_controls_at_the_floor(world):
    pytest.importorskip("keras")
    pytest.importorskip("pytorch_tabnet")
    X, Y = world.data, world.target
    pipe = _pipe(models=("twostep", "keras", "tabnet"))
    pipe.fit(X, Y, model__groups=world.groups, model__y_aux=world.target_aux)
    blend = pipe.estimator_.named_steps["model"]
    assert list(blend.named_estimators_) == ["twostep", "keras", "tabnet"]
    assert (blend.weights_ >= 0).all() and blend.weights_.sum() == pytest.approx(1)
    assert blend.named_estimators_["twostep"].n_aux_ == world.target_aux.shape[1]
    proba = pipe.predict_proba(X)
    assert proba.shape == Y.shape
    assert ((proba > 0) & (proba < 1)).all()
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    assert control.any()
    assert (proba[control] == 5e-4).all()
    # the blend never saw a control row
    assert blend.oof_predictions_.shape[1] == (~control).sum()


def test_cross_validate_with_routing_reaches_inner_cv_and_nets(world):
    sklearn.set_config(enable_metadata_routing=True)
    pipe = _pipe()
    result = cross_validate(
        pipe,
        world.data,
        world.target,
        cv=DrugMultilabelStratifiedKFold(3, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
        params={"groups": world.groups, "y_aux": world.target_aux},
        return_estimator=True,
    )
    assert (result["test_score"] < 0).all()
    for fitted in result["estimator"]:
        net = fitted.estimator_.named_steps["model"].named_estimators_["twostep"]
        assert net.n_aux_ == world.target_aux.shape[1]


@pytest.mark.parametrize("routing", [False, True])
def test_validation_weights_on_drugs_every_net_held_out(world, routing):
    """The full profile's blend: one fit per net, the weights chosen on the
    drugs that the nets held out (the same ones: one shared seed)."""
    pytest.importorskip("keras")
    sklearn.set_config(enable_metadata_routing=routing)
    pipe = _pipe(("twostep", "keras"), cv="validation")
    params = {"groups": world.groups, "y_aux": world.target_aux}
    if not routing:
        params = {f"model__{k}": v for k, v in params.items()}
    pipe.fit(world.data, world.target, **params)
    blend = pipe.estimator_.named_steps["model"]
    twostep, keras = blend.estimators_
    assert twostep.random_state == keras.random_state != 0  # drawn by the blend
    np.testing.assert_array_equal(twostep.validation_indices_, blend.oof_indices_)
    np.testing.assert_array_equal(keras.validation_indices_, blend.oof_indices_)
    treated = ~pipe.control_mask(world.data)
    drugs = np.asarray(world.groups)[treated]
    held = blend.oof_indices_
    assert held.size and set(drugs[held]).isdisjoint(np.delete(drugs, held))
    assert twostep.n_aux_ == world.target_aux.shape[1]
    assert blend.oof_predictions_.shape == (2, held.size, world.target.shape[1])
    assert blend.fold_models_ is None
    assert abs(blend.weights_.sum() - 1) < 1e-9


def test_cross_val_score_without_routing(world):
    scores = cross_val_score(
        _pipe(),
        world.data,
        world.target,
        groups=world.groups,
        cv=DrugMultilabelStratifiedKFold(3, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
        params={"model__groups": world.groups},
    )
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_grid_search_over_a_feature_and_a_net_parameter(world):
    sklearn.set_config(enable_metadata_routing=True)
    search = GridSearchCV(
        _pipe(),
        {
            "estimator__features__pca__n_components": [
                {"g": 4, "c": 2},
                {"g": 8, "c": 3},
            ],
            "estimator__model__twostep__hidden_sizes": [(8,), (16,)],
        },
        cv=DrugMultilabelStratifiedKFold(2, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
    ).fit(world.data, world.target, groups=world.groups, y_aux=world.target_aux)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict_proba(world.data).shape == world.target.shape


def test_custom_estimator_as_a_model(world):
    pipe = _pipe(models=[("knn", KNeighborsClassifier(20))])
    pipe.fit(world.data, world.target, model__groups=world.groups)
    assert pipe.predict_proba(world.data).shape == world.target.shape


# ---------------------------------------------------------------- control rows
@pytest.fixture(scope="module")
def world_with_test():
    return make_moa(
        n_samples=300,
        n_test=120,
        n_genes=24,
        n_cells=8,
        n_scored=6,
        n_nonscored=5,
        random_state=2,
    )


def _treated(world):
    keep = (world.data["cp_type"] == "trt_cp").to_numpy()
    return keep, world.data[keep], world.target[keep], world.groups[keep]


def test_fit_on_treated_rows_only_then_predict_controls(world_with_test):
    world = world_with_test
    keep, X, Y, groups = _treated(world)
    assert (~keep).any()
    pipe = _pipe().fit(X, Y, model__groups=groups.to_numpy())
    Xt = world.test_data
    control = (Xt["cp_type"] == "ctl_vehicle").to_numpy()
    assert control.any() and (~control).any()
    np.testing.assert_array_equal(pipe.control_mask(Xt), control)
    proba = pipe.predict_proba(Xt)
    assert proba.shape == (len(Xt), Y.shape[1])
    assert (proba[control] == 5e-4).all()
    assert ((proba[~control] > 0) & (proba[~control] < 1)).all()
    assert not (proba[~control] == 5e-4).all()
    # the feature steps never saw a control row: only 'trt_cp' was encoded
    encode = pipe.estimator_.named_steps["features"].named_steps["encode"]
    assert [list(c) for c in encode.categories_][0] == ["trt_cp"]


def test_without_control_handling_an_unseen_control_is_a_clear_error(world_with_test):
    _, X, Y, groups = _treated(world_with_test)
    pipe = _pipe(control_column=None).fit(X, Y, model__groups=groups.to_numpy())
    with pytest.raises(ValueError, match="ctl_vehicle"):
        pipe.predict_proba(world_with_test.test_data)


def test_cross_val_score_when_a_training_fold_has_no_controls():
    # few controls: the drug splitter keeps them whole in one test fold, so the
    # other folds train without a single control row
    world = make_moa(
        n_samples=300,
        n_test=0,
        n_genes=24,
        n_cells=8,
        n_scored=6,
        n_nonscored=0,
        control_fraction=0.03,
        random_state=0,
    )
    X, Y, g = world.data, world.target, world.groups.to_numpy()
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    cv = DrugMultilabelStratifiedKFold(3, random_state=0)
    folds = list(cv.split(X, Y, g))
    assert 0 < control.sum() <= cv.max_drug_size
    assert any(not control[train].any() for train, _ in folds)
    scores = cross_val_score(
        _pipe(),
        X,
        Y,
        groups=g,
        cv=cv,
        scoring=neg_mean_columnwise_log_loss,
        params={"model__groups": g},
    )
    assert scores.shape == (3,) and np.isfinite(scores).all()


# ----------------------------------------------------------------- persistence
_PREDICT_IN_A_FRESH_PROCESS = """
import sys
import joblib
import numpy as np
import pandas as pd
model = joblib.load(sys.argv[1])
X = pd.read_pickle(sys.argv[2])
np.save(sys.argv[3], model.predict_proba(X))
"""


def test_joblib_round_trip_of_the_whole_fitted_pipeline(world_with_test, tmp_path):
    """Features, control handling and the blend of the three nets (quick
    profile, tiny nets) predict the same after joblib, here and in a fresh
    process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import joblib

    pytest.importorskip("keras")
    pytest.importorskip("pytorch_tabnet")
    keep, X, Y, groups = _treated(world_with_test)
    pipe = _pipe(models=("twostep", "keras", "tabnet"))
    pipe.fit(
        X,
        Y,
        model__groups=groups.to_numpy(),
        model__y_aux=world_with_test.target_aux[keep],
    )
    Xt = world_with_test.test_data
    expected = pipe.predict_proba(Xt)
    path = tmp_path / "model.joblib"
    joblib.dump(pipe, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(Xt), expected)

    Xt.to_pickle(tmp_path / "X.pkl")
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(root), os.environ.get("PYTHONPATH")) if p
        ),
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    out = tmp_path / "proba.npy"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _PREDICT_IN_A_FRESH_PROCESS,
            str(path),
            str(tmp_path / "X.pkl"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(out), expected)


def test_baseline_pipeline_beats_the_prior_and_floors_controls():
    from moa_sklearn.metrics import mean_columnwise_log_loss
    from moa_sklearn.recipes import make_baseline_pipeline

    world = make_moa(
        n_samples=900,
        n_test=600,
        n_genes=30,
        n_cells=10,
        n_scored=5,
        n_nonscored=3,
        signal=2.5,
        random_state=0,
    )
    model = make_baseline_pipeline(n_components=10, control_proba=1e-3, random_state=0)
    model.fit(world.data, world.target)
    proba = model.predict_proba(world.test_data)
    assert proba.shape == (600, 5)
    control = (world.test_data["cp_type"] == "ctl_vehicle").to_numpy()
    assert control.any() and np.all(proba[control] == 1e-3)
    Y = world.target.to_numpy()
    prior = np.where(
        control[:, None], 1e-3, Y[world.data["cp_type"] != "ctl_vehicle"].mean(0)
    )
    loss = mean_columnwise_log_loss(world.test_target, proba)
    assert loss < mean_columnwise_log_loss(world.test_target, np.clip(prior, 1e-3, 1))
    # the components of the PCA step are the ones asked for
    pca = model.estimator_.named_steps["pca"]
    assert pca.n_components_ == 10


@pytest.mark.filterwarnings("ignore:Label not 0 is present in all training examples")
def test_baseline_pipeline_clips_a_target_unseen_in_training():
    """A target without positives in the fit rows is predicted clip[0], not 0."""
    import pickle

    from moa_sklearn.recipes import make_baseline_pipeline

    world = make_moa(
        n_samples=400,
        n_test=0,
        n_genes=20,
        n_cells=6,
        n_scored=4,
        n_nonscored=0,
        random_state=0,
    )
    Y = world.target.copy()
    Y.iloc[:, 0] = 0  # no positive left for target 0
    model = make_baseline_pipeline(n_components=5, random_state=0).fit(world.data, Y)
    treated = ~model.control_mask(world.data)
    proba = model.predict_proba(world.data)
    assert np.all(proba[treated, 0] == 0.0005)
    assert proba[treated].min() >= 0.0005 and proba[treated].max() <= 0.9995
    # unclipped on request, and picklable as the CLI's models are
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict_proba(world.data), proba)
    raw = make_baseline_pipeline(n_components=5, clip=(0, 1), random_state=0)
    assert raw.fit(world.data, Y).predict_proba(world.data)[treated, 0].max() < 1e-12
