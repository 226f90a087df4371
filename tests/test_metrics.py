import numpy as np
import pytest
from sklearn import config_context
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from moa_sklearn.metrics import (
    columnwise_log_loss,
    mean_columnwise_log_loss,
    multilabel_proba,
    neg_mean_columnwise_log_loss,
)
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold


def test_matches_sklearn_log_loss_per_column():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, size=(50, 4))
    p = rng.uniform(0.01, 0.99, size=(50, 4))
    expected = [log_loss(y[:, j], p[:, j], labels=[0, 1]) for j in range(4)]
    np.testing.assert_allclose(columnwise_log_loss(y, p), expected)
    assert mean_columnwise_log_loss(y, p) == pytest.approx(np.mean(expected))


def test_clipping_keeps_loss_finite_and_matches_competition():
    y = np.array([[1, 0], [0, 1]])
    p = np.array([[0.0, 0.0], [0.0, 1.0]])
    # one wrong certain prediction costs -log(1e-15) / (2 rows * 2 columns)
    assert mean_columnwise_log_loss(y, p) == pytest.approx(-np.log(1e-15) / 4)
    assert mean_columnwise_log_loss(y, p, eps=1e-3) == pytest.approx(
        -np.log(1e-3) / 4 + 3 * -np.log(1 - 1e-3) / 4
    )


def test_one_dimensional_inputs_are_one_label():
    assert mean_columnwise_log_loss([1, 0], [0.8, 0.2]) == pytest.approx(-np.log(0.8))


@pytest.mark.parametrize(
    "y, p, match",
    [
        ([[1, 0]], [[0.5, 0.5, 0.5]], "same shape"),
        ([[2, 0]], [[0.5, 0.5]], "only 0 and 1"),
        ([[1, 0]], [[np.nan, 0.5]], "NaN"),
        ([[1, 0]], [[1.5, 0.5]], r"\[0, 1\]"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "empty"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), "dimensions"),
    ],
)
def test_bad_inputs_raise_clear_errors(y, p, match):
    with pytest.raises(ValueError, match=match):
        mean_columnwise_log_loss(y, p)


def test_scorer_with_2d_proba_estimator(small_world):
    X = small_world.data.iloc[:, 3:].to_numpy()
    Y = small_world.target.to_numpy()
    knn = KNeighborsClassifier(n_neighbors=15).fit(X, Y)
    # KNeighbors returns a list of (n, 2) arrays for multilabel y
    proba = multilabel_proba(knn, X)
    assert proba.shape == Y.shape
    expected = -mean_columnwise_log_loss(Y, proba)
    assert neg_mean_columnwise_log_loss(knn, X, Y) == pytest.approx(expected)


def test_scorer_handles_labels_without_positives():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    Y = np.zeros((40, 2), dtype=int)
    Y[:20, 0] = 1  # second column has no positive: its classes_ is [0]
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    proba = multilabel_proba(rf, X)
    assert proba.shape == (40, 2)
    np.testing.assert_array_equal(proba[:, 1], 0)


def test_scorer_rejects_three_dimensional_proba():
    class Bad:
        def predict_proba(self, X):
            return np.zeros((len(X), 2, 3))

    with pytest.raises(ValueError, match=r"\(n_samples, n_labels\)"):
        neg_mean_columnwise_log_loss(Bad(), np.zeros((4, 1)), np.zeros((4, 3)))


@pytest.mark.parametrize("routing", [False, True])
def test_scorer_in_cross_val_score(small_world, routing):
    X = small_world.data.iloc[:, 3:]
    Y = small_world.target
    cv = DrugMultilabelStratifiedKFold(3, random_state=0)
    with config_context(enable_metadata_routing=routing):
        kwargs = (
            {"params": {"groups": small_world.groups}}
            if routing
            else {"groups": small_world.groups}
        )
        scores = cross_val_score(
            KNeighborsClassifier(25),
            X,
            Y,
            cv=cv,
            scoring=neg_mean_columnwise_log_loss,
            **kwargs,
        )
    assert scores.shape == (3,)
    assert np.all(scores < 0)
