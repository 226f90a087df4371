"""The one reader of classifier targets (moa_sklearn.utils._target)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import DataConversionWarning

from moa_sklearn.metrics import PROBA_EPS
from moa_sklearn.utils._target import TargetReader


def test_label_matrix_keeps_names_dtype_and_frame():
    Y = pd.DataFrame({"a": [0, 1, 1], "b": [1, 0, 0]}, dtype=np.int8)
    reader = TargetReader("Est")
    np.testing.assert_array_equal(reader.fit_transform(Y), Y.to_numpy())
    assert reader.kind == "multilabel" and reader.n_outputs == 2
    np.testing.assert_array_equal(reader.names, ["a", "b"])
    assert reader.as_given(Y) is Y
    pred = reader.labels(np.array([[0.6, 0.5]]))
    assert pred.dtype == np.int8
    np.testing.assert_array_equal(pred, [[1, 0]])  # exactly 0.5 predicts 0


@pytest.mark.parametrize("y", [["x", "y", "x"], [3, 7, 3]])
def test_class_labels_one_hot_and_back(y):
    reader = TargetReader("Est").fit(np.asarray(y))
    assert reader.kind == "binary" and reader.names is None
    np.testing.assert_array_equal(reader.transform(y), [[1, 0], [0, 1], [1, 0]])
    assert reader.labels(np.array([[0.2, 0.8]]))[0] == y[1]


def test_multiclass_proba_clipped_and_renormalised():
    reader = TargetReader("Est").fit(np.array([0, 1, 2, 1]))
    assert reader.kind == "multiclass"
    proba = reader.proba(np.array([[0.0, 2.0, 2.0]]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba.min() > 0


def test_label_proba_clipped_strictly_inside():
    reader = TargetReader("Est").fit(np.array([[0, 1], [1, 0]]))
    proba = reader.proba(np.array([[0.0, 1.0]]))
    np.testing.assert_array_equal(proba, [[PROBA_EPS, 1 - PROBA_EPS]])
    np.testing.assert_array_equal(
        reader.proba([[0.0, 1.0]], low=0.01, high=0.9), [[0.01, 0.9]]
    )


def test_column_vector_of_classes_is_raveled_with_warning():
    y = np.array([[1], [2], [3]])
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        reader = TargetReader("Est").fit(y)
    assert reader.kind == "multiclass"
    np.testing.assert_array_equal(reader.as_given(y), [1, 2, 3])


def test_column_vector_of_0_1_is_one_label():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader = TargetReader("Est").fit(np.array([[0], [1], [1]]))
    assert reader.kind == "multilabel" and reader.n_outputs == 1


@pytest.mark.parametrize(
    "y, match",
    [
        (None, "Est requires y to be passed"),
        (np.array([1, 1]), r"only one class .* Est needs at least 2"),
        (np.array([[0.5, 1], [1, 0]]), "Est: a 2-D y must be a 0/1 label"),
        (np.array([[np.nan, 1], [0, 1]]), r"Est: y contains NaN in column\(s\) \[0\]"),
        (np.array([0.0, np.inf]), "Input y contains infinity"),
        (np.zeros((2, 2, 2)), "y must be 1-D or 2-D"),
        (np.array([0.1, 0.2, 0.3]), "Unknown label type: 'continuous'"),
    ],
)
def test_bad_targets_named(y, match):
    with pytest.raises(ValueError, match=match):
        TargetReader("Est").fit(y)


def test_nan_column_named_in_frame():
    Y = pd.DataFrame({"a": [0.0, 1.0], "b": [np.nan, 1.0]})
    with pytest.raises(ValueError, match=r"column\(s\) \['b'\]"):
        TargetReader("Est").fit(Y)
