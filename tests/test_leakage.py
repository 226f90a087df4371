"""Inner splits hold out whole drugs in every way of calling, or warn.

A spy records the rows (by ``sig_id``, the index of the frame) on each side
of every inner split: the nets' inner validation split (best epoch, early
stopping) and the blend's inner CV. Each ``sig_id`` is mapped to its true
drug, whatever ``groups`` reached the split, so a row split is caught even
when it looks grouped (e.g. each row as its own group). Drugs with more than
``max_drug_size`` rows (the controls and the few large drugs) are split by
row on purpose, as in the Kaggle protocol, and are left aside.
"""

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_score,
    cross_validate,
)

from moa_sklearn import ensemble
from moa_sklearn.datasets import make_moa
from moa_sklearn.exceptions import DrugLeakageWarning
from moa_sklearn.metrics import neg_mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
from moa_sklearn.neural import _base
from moa_sklearn.recipes import make_moa_pipeline

pytest.importorskip("torch")
pytest.importorskip("skorch")

TINY = dict(
    hidden_sizes=(8,),
    max_epochs_pretrain=1,
    max_epochs_finetune=2,
    unfreeze_every=1,
    batch_size=64,
    device="cpu",
    n_threads=1,
)
FEATURES = dict(n_components={"g": 4, "c": 2}, n_clusters={"g": 2, "c": 2})
MAX_DRUG_SIZE = DrugMultilabelStratifiedKFold().max_drug_size


@pytest.fixture(scope="module")
def world():
    return make_moa(
        n_samples=360,
        n_test=0,
        n_genes=16,
        n_cells=6,
        n_scored=5,
        n_nonscored=0,
        random_state=1,
    )


@pytest.fixture(autouse=True)
def _no_routing_leak():
    yield
    sklearn.set_config(enable_metadata_routing=False)


@pytest.fixture
def splits(monkeypatch):
    """Record ``(kind, sig_ids on one side, sig_ids on the other)`` per split."""
    records = []
    index = []

    fit = _base.BaseMultilabelNet.fit

    @functools.wraps(fit)
    def spy_fit(self, X, y, **kwargs):
        index.append(X.index)
        try:
            return fit(self, X, y, **kwargs)
        finally:
            index.pop()

    split = _base._inner_validation_split

    def spy_split(Y, groups, fraction, seed):
        train, valid = split(Y, groups, fraction, seed)
        if valid is not None:
            records.append(("net", index[-1][train], index[-1][valid]))
        return train, valid

    fit_fold = ensemble._blend._fit_fold

    def spy_fit_fold(estimator, X, y, train, test, *args):
        records.append(("blend", X.index[train], X.index[test]))
        return fit_fold(estimator, X, y, train, test, *args)

    monkeypatch.setattr(_base.BaseMultilabelNet, "fit", spy_fit)
    monkeypatch.setattr(_base, "_inner_validation_split", spy_split)
    monkeypatch.setattr(ensemble._blend, "_fit_fold", spy_fit_fold)
    return records


def _shared_small_drugs(world, records):
    """Per kind of split, the small drugs found on both sides of a split."""
    drug = pd.Series(np.asarray(world.groups), index=world.data.index)
    sizes = drug.value_counts()
    small = set(sizes.index[sizes <= MAX_DRUG_SIZE])
    shared = {"net": set(), "blend": set()}
    for kind, one, other in records:
        shared[kind] |= set(drug[one]) & set(drug[other]) & small
    return shared


def _pipe(request_groups=True):
    pipe = make_moa_pipeline(
        ["twostep"],
        random_state=0,
        cv=2,
        feature_params=FEATURES,
        model_params={"twostep": TINY},
    )
    if not request_groups and sklearn.get_config()["enable_metadata_routing"]:
        # the user said no to groups for the net (an unset request would raise)
        for _, net in pipe.estimator.named_steps["model"].estimators:
            net.set_fit_request(groups=False)
    return pipe


OUTER = DrugMultilabelStratifiedKFold(2, random_state=0)


def _call(style, routing, world, with_ids=True):
    """Fit / score the pipeline in one calling style; drug ids passed or not."""
    X, Y, g = world.data, world.target, world.groups.to_numpy()
    scoring = neg_mean_columnwise_log_loss
    if routing:
        sklearn.set_config(enable_metadata_routing=True)
    pipe = _pipe(request_groups=with_ids)
    if style == "fit":
        if routing:
            return pipe.fit(X, Y, groups=g)
        return pipe.fit(X, Y, **({"model__groups": g} if with_ids else {}))
    if routing:
        # the outer splitter and the blend's splitter request groups; the net
        # too unless with_ids is False
        kwargs = {"params": {"groups": g}}
    else:
        kwargs = {"groups": g}
        if with_ids:
            kwargs["params"] = {"model__groups": g}
    if style == "cross_val_score":
        return cross_val_score(pipe, X, Y, cv=OUTER, scoring=scoring, **kwargs)
    if style == "cross_validate":
        return cross_validate(pipe, X, Y, cv=OUTER, scoring=scoring, **kwargs)
    search = GridSearchCV(
        pipe,
        {"estimator__model__twostep__hidden_sizes": [(8,), (4,)]},
        cv=OUTER,
        scoring=scoring,
    )
    fit_params = dict(kwargs.get("params", {}))
    if not routing:
        fit_params["groups"] = g
    return search.fit(X, Y, **fit_params)


STYLES = ["fit", "cross_val_score", "cross_validate", "GridSearchCV"]


@pytest.mark.parametrize("routing", [False, True], ids=["routing-off", "routing-on"])
@pytest.mark.parametrize("style", STYLES)
def test_inner_splits_hold_out_whole_drugs(world, splits, style, routing):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DrugLeakageWarning)
        _call(style, routing, world)
    kinds = {kind for kind, _, _ in splits}
    assert kinds == {"net", "blend"}, "the spy saw no inner split"
    shared = _shared_small_drugs(world, splits)
    assert shared == {"net": set(), "blend": set()}


@pytest.mark.parametrize(
    "style, routing",
    [("fit", False), ("cross_val_score", False), ("cross_validate", True)],
)
def test_missing_drug_ids_warn_and_the_warning_is_right(world, splits, style, routing):
    with pytest.warns(DrugLeakageWarning, match="set_fit_request") as record:
        _call(style, routing, world, with_ids=False)
    owners = {str(w.message).split(" ", 1)[0] for w in record}
    shared = _shared_small_drugs(world, splits)
    # the nets never got the drug ids: they warn, and their split did mix drugs
    assert "TwoStepNetClassifier" in owners and shared["net"]
    if routing:
        # the blend's splitter requests groups: its inner CV stays grouped
        assert "StackingBlend" not in owners and not shared["blend"]
    else:
        assert "StackingBlend" in owners and shared["blend"]


def test_blend_alone_warns_only_without_groups():
    from sklearn.dummy import DummyClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    Y = (rng.uniform(size=(60, 2)) < 0.3).astype(int)
    blend = ensemble.StackingBlend([("prior", DummyClassifier())], cv=3)
    with pytest.warns(DrugLeakageWarning, match="StackingBlend got no drug ids"):
        blend.fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DrugLeakageWarning)
        blend.fit(X, Y, groups=np.repeat(np.arange(12), 5))
        # a splitter of the user's own is used as given, no warning
        blend.set_params(cv=KFold(3)).fit(X, Y)
        # no inner CV: nothing to warn about
        blend.set_params(cv=None, weights="uniform").fit(X, Y)


def test_net_alone_warns_only_with_an_inner_split_and_no_groups():
    from moa_sklearn.neural import TwoStepNetClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    Y = (rng.uniform(size=(60, 2)) < 0.3).astype(int)
    net = TwoStepNetClassifier(**TINY, random_state=0)
    with pytest.warns(DrugLeakageWarning, match="inner validation split"):
        net.fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DrugLeakageWarning)
        net.fit(X, Y, groups=np.repeat(np.arange(10), 6))
        net.set_params(validation_fraction=None).fit(X, Y)
