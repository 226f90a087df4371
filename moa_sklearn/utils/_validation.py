"""Validation shared by the classifiers of the package (nets, blend, wrappers)."""

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import assert_all_finite
from sklearn.utils.multiclass import type_of_target


def _as_array(a):
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return a.to_numpy()
    return np.asarray(a)


def _is_binary_matrix(Y):
    """True for a numeric (or bool) array holding only 0 and 1."""
    if Y.dtype.kind not in "biuf":
        return False
    return bool(np.isin(Y, (0, 1)).all())


def check_classifier_target(y, owner):
    """Validate a classifier target: a 2-D 0/1 label matrix or 1-D class labels.

    A column vector of other values than 0/1 is raveled to 1-D class labels
    with a ``DataConversionWarning``, as scikit-learn classifiers do.

    Parameters
    ----------
    y : array-like or DataFrame
    owner : str
        Name of the estimator, for the error messages.

    Returns
    -------
    kind : {"multilabel", "binary", "multiclass"}
    y : ndarray
        The 2-D label matrix (its own dtype) or the 1-D labels.
    classes : ndarray
        ``arange(n_labels)`` for a label matrix, else the sorted class labels.
    codes : ndarray or None
        For 1-D labels, the index of each row's class in ``classes``.
    """
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None.")
    arr = _as_array(y)
    if arr.dtype.kind == "f":
        # "Input y contains NaN / infinity", before any cast of the labels
        assert_all_finite(arr, input_name="y")
    if arr.ndim == 2 and arr.shape[1] == 1 and not _is_binary_matrix(arr):
        warnings.warn(
            "A column-vector y with other values than 0/1 was passed; it is "
            "read as a 1-D class target. Pass a 1-D array (y.ravel()) to "
            "silence this warning, or 0/1 columns for multilabel targets.",
            DataConversionWarning,
            stacklevel=3,
        )
        arr = arr.ravel()
    if arr.ndim == 2:
        if not _is_binary_matrix(arr):
            raise ValueError(
                f"{owner}: a 2-D y must be a 0/1 label indicator matrix of shape "
                f"(n_samples, n_labels); got values {np.unique(arr)[:5].tolist()}"
                "... Pass a 1-D y for binary or multiclass targets."
            )
        return "multilabel", arr, np.arange(arr.shape[1]), None
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D or 2-D, got shape {arr.shape}.")
    kind = type_of_target(arr, input_name="y", raise_unknown=True)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"Unknown label type: {kind!r}. {owner} is a classifier: y must be a "
            "0/1 label matrix or 1-D class labels."
        )
    classes, codes = np.unique(arr, return_inverse=True)
    if classes.size < 2:
        raise ValueError(
            f"y has only one class ({classes[0]!r}); {owner} needs at least 2 "
            "classes (or a 2-D 0/1 label matrix, where a label without positives "
            "is fine)."
        )
    return kind, arr, classes, codes


def labels_from_proba(estimator, proba):
    """``predict`` from ``predict_proba``, shared by every classifier here.

    For a 2-D target (``estimator._target_kind == "multilabel"``), a label is
    on where its probability is **above** 0.5 (``proba > 0.5``, the rule of
    ``OneVsRestClassifier``), in the dtype of the fitted ``y``: a probability
    of exactly 0.5, the output of a zero logit, predicts 0, which agrees with
    ``proba.round()``. For a 1-D target, the most probable of ``classes_``.
    """
    if estimator._target_kind == "multilabel":
        return (proba > 0.5).astype(estimator._y_dtype)
    return estimator.classes_[np.argmax(proba, axis=1)]
