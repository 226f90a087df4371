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
        epochs_pretrain=2,
        epochs_finetune=2,
        unfreeze_every=1,
        batch_size=64,
        device="cpu",
        n_threads=1,
    ),
    "keras": dict(hidden_sizes=(16,), dropouts=0.1, epochs=2, device="cpu"),
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
    assert list(pipe.named_steps) == ["features", "model"]
    model = pipe.named_steps["model"]
    assert isinstance(model, ControlVehicleClassifier)
    assert model.column == "cp_type_ctl_vehicle" and model.control == 1
    assert isinstance(model.estimator, StackingBlend)
    params = pipe.get_params()
    assert params["model__estimator__twostep__hidden_sizes"] == (16,)
    assert params["model__estimator__twostep__random_state"] == 0
    assert params["features__pca__n_components"] == FEATURES["n_components"]
    assert params["model__estimator__cv"] == 2


def test_profiles():
    quick = make_moa_pipeline(["twostep"], profile="quick")
    full = make_moa_pipeline(["twostep"], profile="full")
    from moa_sklearn.neural import TwoStepNetClassifier

    default = TwoStepNetClassifier()
    q = quick.get_params()
    f = full.get_params()
    assert q["model__estimator__twostep__epochs_pretrain"] < default.epochs_pretrain
    assert f["model__estimator__twostep__hidden_sizes"] == default.hidden_sizes
    assert f["features__pca__n_components"] == "auto"
    assert (q["model__estimator__cv"], f["model__estimator__cv"]) == (3, 5)


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
    names = [n for n, _ in pipe.named_steps["model"].estimator.estimators]
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
    net = on.named_steps["model"].estimator.estimators[0][1]
    requests = net.get_metadata_routing().fit.requests
    assert requests["y_aux"] is True and requests["groups"] is True
    net_off = off.named_steps["model"].estimator.estimators[0][1]
    assert net_off.get_metadata_routing().fit.requests["y_aux"] is None
    unrequested = _pipe(route_metadata=False)
    net_un = unrequested.named_steps["model"].estimator.estimators[0][1]
    assert net_un.get_metadata_routing().fit.requests["y_aux"] is None


def test_three_nets_fit_and_controls_at_the_floor(world):
    pytest.importorskip("keras")
    pytest.importorskip("pytorch_tabnet")
    X, Y = world.data, world.target
    pipe = _pipe(models=("twostep", "keras", "tabnet"))
    pipe.fit(X, Y, model__groups=world.groups, model__y_aux=world.target_aux)
    blend = pipe.named_steps["model"].estimator_
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
        net = fitted.named_steps["model"].estimator_.named_estimators_["twostep"]
        assert net.n_aux_ == world.target_aux.shape[1]


def test_cross_val_score_without_routing(world):
    scores = cross_val_score(
        _pipe(),
        world.data,
        world.target,
        groups=world.groups,
        cv=DrugMultilabelStratifiedKFold(3, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
    )
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_grid_search_over_a_feature_and_a_net_parameter(world):
    sklearn.set_config(enable_metadata_routing=True)
    search = GridSearchCV(
        _pipe(),
        {
            "features__pca__n_components": [{"g": 4, "c": 2}, {"g": 8, "c": 3}],
            "model__estimator__twostep__hidden_sizes": [(8,), (16,)],
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
