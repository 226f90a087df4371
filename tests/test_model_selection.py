import numpy as np
import pytest
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from sklearn import config_context
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from moa_sklearn.metrics import neg_mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold


@pytest.fixture(scope="module")
def drugs_and_labels():
    """200 small drugs (6, 12 or 18 rows) and 3 large ones, labels per drug."""
    rng = np.random.RandomState(0)
    sizes = np.r_[rng.choice([6, 12, 18], size=200, p=[0.9, 0.07, 0.03]), 60, 40, 25]
    drug_y = (rng.uniform(size=(sizes.size, 8)) < [0.3, 0.2, 0.1] + [0.05] * 5).astype(
        int
    )
    groups = np.repeat(np.arange(sizes.size), sizes)
    Y = drug_y[groups]
    X = rng.normal(size=(groups.size, 3))
    return X, Y, groups, sizes


def test_small_drugs_whole_and_every_row_once(drugs_and_labels):
    X, Y, groups, sizes = drugs_and_labels
    cv = DrugMultilabelStratifiedKFold(5, random_state=0)
    seen = np.zeros(len(X), dtype=int)
    small = set(np.flatnonzero(sizes <= 18))
    for train, test in cv.split(X, Y, groups):
        seen[test] += 1
        assert len(np.intersect1d(train, test)) == 0
        shared = set(groups[train]) & set(groups[test])
        assert not shared & small, "a small drug is in both train and test"
    np.testing.assert_array_equal(seen, 1)


def test_large_drugs_split_by_row(drugs_and_labels):
    X, Y, groups, sizes = drugs_and_labels
    cv = DrugMultilabelStratifiedKFold(5, random_state=0)
    big = np.flatnonzero(sizes > 18)
    for _, test in cv.split(X, Y, groups):
        # each fold holds some rows of every large drug
        assert set(big) <= set(groups[test])


def test_new_compound_protocol_keeps_every_drug_whole(drugs_and_labels):
    """max_drug_size=None: no drug, however large, is on both sides of a split."""
    X, Y, groups, sizes = drugs_and_labels
    cv = DrugMultilabelStratifiedKFold(5, max_drug_size=None, random_state=0)
    seen = np.zeros(len(X), dtype=int)
    for train, test in cv.split(X, Y, groups):
        seen[test] += 1
        assert not set(groups[train]) & set(groups[test])
    np.testing.assert_array_equal(seen, 1)
    # the same drugs as the Kaggle protocol's folds would split are now whole
    kaggle = DrugMultilabelStratifiedKFold(5, random_state=0)
    assert any(
        set(groups[train]) & set(groups[test])
        for train, test in kaggle.split(X, Y, groups)
    )


# (a bool is an int to scikit-learn's parameter constraints, True is 1)
@pytest.mark.parametrize("bad", [0, -1, 2.5, "18"])
def test_bad_max_drug_size(drugs_and_labels, bad):
    X, Y, groups, _ = drugs_and_labels
    match = "'max_drug_size' parameter of DrugMultilabelStratifiedKFold must be"
    with pytest.raises(ValueError, match=match):
        DrugMultilabelStratifiedKFold(3, max_drug_size=bad)
    cv = DrugMultilabelStratifiedKFold(3)
    cv.max_drug_size = bad  # changed after construction: split checks it
    with pytest.raises(ValueError, match=match):
        list(cv.split(X, Y, groups))


def test_stratification_as_even_as_multilabel_kfold(drugs_and_labels):
    X, Y, groups, sizes = drugs_and_labels
    small_rows = np.isin(groups, np.flatnonzero(sizes <= 18))
    Xs, Ys, gs = X[small_rows], Y[small_rows], groups[small_rows]

    def spread(splits):
        per_fold = np.array([Ys[test].sum(axis=0) for _, test in splits])
        return (per_fold.std(axis=0) / per_fold.mean(axis=0)).mean()

    ours = spread(DrugMultilabelStratifiedKFold(5, random_state=0).split(Xs, Ys, gs))
    # reference: MultilabelStratifiedKFold on one row per drug, expanded to rows
    drug_ids = np.unique(gs)
    drug_y = np.array([Ys[gs == d][0] for d in drug_ids])
    ref = []
    mskf = MultilabelStratifiedKFold(5, shuffle=True, random_state=0)
    for _, test in mskf.split(np.zeros((len(drug_ids), 1)), drug_y):
        rows = np.flatnonzero(np.isin(gs, drug_ids[test]))
        ref.append((None, rows))
    assert ours <= spread(ref) * 1.25 + 0.02
    # and far more even than a random drug assignment
    rng = np.random.RandomState(0)
    fold = rng.randint(5, size=len(drug_ids))
    rand = [(None, np.flatnonzero(np.isin(gs, drug_ids[fold == k]))) for k in range(5)]
    assert ours < spread(rand)


def test_deterministic_given_random_state(drugs_and_labels):
    X, Y, groups, _ = drugs_and_labels
    a = [
        t
        for _, t in DrugMultilabelStratifiedKFold(4, random_state=3).split(X, Y, groups)
    ]
    b = [
        t
        for _, t in DrugMultilabelStratifiedKFold(4, random_state=3).split(X, Y, groups)
    ]
    c = [
        t
        for _, t in DrugMultilabelStratifiedKFold(4, random_state=4).split(X, Y, groups)
    ]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_accepts_random_state_instance(drugs_and_labels):
    X, Y, groups, _ = drugs_and_labels
    cv = DrugMultilabelStratifiedKFold(3, random_state=np.random.RandomState(0))
    assert len(list(cv.split(X, Y, groups))) == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"groups": None}, "needs groups"),
        ({"groups": np.arange(5)}, "one drug id per row"),
        ({"y": None}, "pass y"),
    ],
)
def test_clear_errors(drugs_and_labels, kwargs, match):
    X, Y, groups, _ = drugs_and_labels
    args = {"y": Y, "groups": groups, **kwargs}
    with pytest.raises(ValueError, match=match):
        list(DrugMultilabelStratifiedKFold(3).split(X, **args))


@pytest.mark.parametrize("bad", [1, 0, 2.5, "5", True])
def test_bad_n_splits(drugs_and_labels, bad):
    X, Y, groups, _ = drugs_and_labels
    with pytest.raises(ValueError, match="n_splits"):
        list(DrugMultilabelStratifiedKFold(bad).split(X, Y, groups))


def test_random_state_without_shuffle_is_rejected_by_the_constructor():
    # as scikit-learn's KFold: the constructor raises, with its message
    with pytest.raises(ValueError, match="random_state has no effect since shuffle"):
        DrugMultilabelStratifiedKFold(3, shuffle=False, random_state=0)
    with pytest.raises(ValueError, match="random_state has no effect since shuffle"):
        KFold(3, shuffle=False, random_state=0)
    with pytest.raises(TypeError, match="'shuffle' parameter of DrugMultilabel"):
        DrugMultilabelStratifiedKFold(3, shuffle="yes")
    # a parameter changed after construction is checked again by split
    cv = DrugMultilabelStratifiedKFold(3, random_state=0)
    cv.shuffle = False
    X, Y = np.zeros((30, 1)), np.zeros((30, 2), dtype=int)
    with pytest.raises(ValueError, match="random_state has no effect"):
        list(cv.split(X, Y, np.arange(30)))


def test_without_shuffle_folds_follow_numpys_global_seed(drugs_and_labels):
    X, Y, groups, sizes = drugs_and_labels
    cv = DrugMultilabelStratifiedKFold(3, shuffle=False)

    def folds():
        np.random.seed(0)  # noqa: NPY002 (the global state is the point)
        return [t.tolist() for _, t in cv.split(X, Y, groups)]

    assert folds() == folds()
    # every small drug (at most max_drug_size rows) is whole in one test fold
    small = set(np.flatnonzero(sizes <= cv.max_drug_size))
    for train, test in cv.split(X, Y, groups):
        assert not set(groups[test]) & set(groups[train]) & small


def test_too_few_drugs():
    X = np.zeros((12, 1))
    Y = np.zeros((12, 2), dtype=int)
    groups = np.repeat([0, 1], 6)
    with pytest.raises(ValueError, match="at least n_splits=3"):
        list(DrugMultilabelStratifiedKFold(3).split(X, Y, groups))


def test_one_dimensional_y_is_stratified_as_classes(drugs_and_labels):
    X, Y, groups, _ = drugs_and_labels
    y = Y[:, 0]
    folds = list(DrugMultilabelStratifiedKFold(3, random_state=0).split(X, y, groups))
    assert sum(len(t) for _, t in folds) == len(y)


@pytest.mark.parametrize("routing", [False, True])
def test_in_cross_val_score_and_grid_search(drugs_and_labels, routing):
    X, Y, groups, _ = drugs_and_labels
    cv = DrugMultilabelStratifiedKFold(3, random_state=0)
    with config_context(enable_metadata_routing=routing):
        kw = {"params": {"groups": groups}} if routing else {"groups": groups}
        scores = cross_val_score(
            DummyClassifier(strategy="prior"),
            X,
            Y,
            cv=cv,
            scoring=neg_mean_columnwise_log_loss,
            **kw,
        )
        assert scores.shape == (3,)
        search = GridSearchCV(
            KNeighborsClassifier(),
            {"n_neighbors": [5, 50]},
            cv=cv,
            scoring=neg_mean_columnwise_log_loss,
        )
        search.fit(X, Y, groups=groups)
    assert search.best_params_["n_neighbors"] in (5, 50)


def test_routing_without_groups_fails_clearly(drugs_and_labels):
    X, Y, _, _ = drugs_and_labels
    with config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="needs groups"):
            cross_val_score(
                DummyClassifier(), X, Y, cv=DrugMultilabelStratifiedKFold(3)
            )
