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


def check_n_samples(X, owner):
    """Raise scikit-learn's error for a DataFrame (or array) with no rows.

    ``validate_data`` says "Found array with 0 sample(s)" for arrays; the
    DataFrame paths that skip it (meta-estimators that pass a raw DataFrame
    on, the categorical encoder) call this so that the same words, naming
    ``owner``, come from the estimator the user called.
    """
    if X.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
            f"minimum of 1 is required by {owner}."
        )


def _non_numeric_array_columns(X):
    """Indices of the columns of an object / string array that hold strings.

    [] for anything else (a DataFrame, a numeric or sparse array).
    """
    if isinstance(X, (pd.DataFrame, pd.Series)) or not hasattr(X, "__array__"):
        return []
    X = np.asarray(X)
    if X.dtype.kind not in "OUS" or X.ndim != 2:
        return []
    bad = []
    for j in range(X.shape[1]):
        try:
            X[:, j].astype(np.float64)
        except ValueError:  # strings; other objects keep numpy's TypeError
            bad.append(j)
        except TypeError:
            pass
    return bad


def nonfinite_error(exc, X, owner):
    """validate_data's "Input X contains NaN" error, with the columns named.

    Returns a ValueError that names the columns of ``X`` holding NaN or
    infinity (by name for a DataFrame, by index for an array), or None when
    ``exc`` is not about NaN / infinity in X (then re-raise ``exc``).
    """
    message = str(exc)
    if "Input X contains" not in message:
        return None
    try:
        if isinstance(X, pd.DataFrame):
            arr, names = X.to_numpy(dtype=np.float64), list(X.columns)
        else:
            arr = np.asarray(X, dtype=np.float64)
            names = list(range(arr.shape[1])) if arr.ndim == 2 else None
    except (TypeError, ValueError):
        return None
    if names is None:
        return None
    finite = np.isfinite(arr)
    bad = [n for n, ok in zip(names, finite.all(axis=0)) if not ok]
    if not bad:
        return None
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    return ValueError(
        f"Input X contains NaN or infinity in column(s) {bad[:10]}{more} "
        f"({int((~finite).sum())} cell(s)); {owner} does not accept missing or "
        "infinite values: impute or drop them first."
    )


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
        if arr.ndim == 2 and arr.shape[1] > 1 and np.isnan(arr).any():
            bad = np.flatnonzero(np.isnan(arr).any(axis=0))
            names = (
                list(y.columns[bad]) if isinstance(y, pd.DataFrame) else bad.tolist()
            )
            raise ValueError(
                f"{owner}: y contains NaN in column(s) {list(names)[:5]}"
                f"{' and more' if len(bad) > 5 else ''} "
                f"({int(np.isnan(arr).sum())} cell(s)); labels must be 0 or 1."
            )
        # else "Input y contains NaN / infinity", before any cast of the labels
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


def check_base_proba(proba, *, n_samples, n_outputs, owner, name):
    """Check the probabilities that a base estimator hands to a meta-estimator.

    Every meta-estimator of the package (``StackingBlend``,
    ``SeedAveragingClassifier``, ``ControlVehicleClassifier``) passes the
    ``predict_proba`` output of its base estimators through here once, where
    it enters, so that a broken base estimator is named at once instead of
    turning every blended probability (the good models' included) into NaN.

    Parameters
    ----------
    proba : array-like
        The (already label-aligned) output of the base estimator.
    n_samples, n_outputs : int
        The expected shape.
    owner : str
        The meta-estimator's class name.
    name : str
        The base estimator, as the user knows it (e.g. ``"'knn'
        (KNeighborsClassifier)"``).

    Returns
    -------
    proba : ndarray of shape (n_samples, n_outputs), float64, in [0, 1]

    Raises
    ------
    ValueError
        For another shape, NaN or infinity, or values outside [0, 1]; the
        message names the meta-estimator, the base estimator and the fault.
    """
    where = f"{owner}: the predict_proba of the base estimator {name}"
    expected = f"({n_samples}, {n_outputs})"
    try:
        arr = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where} returned a {type(proba).__name__} that is not an array of "
            f"numbers; expected probabilities of shape {expected}."
        ) from None
    if arr.shape != (n_samples, n_outputs):
        raise ValueError(
            f"{where} returned shape {arr.shape}; expected {expected} "
            f"({n_samples} rows, {n_outputs} probabilities per row)."
        )
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise ValueError(
            f"{where} returned {n_nan} NaN and {n_inf} infinite value(s) (of "
            f"{arr.size}); probabilities must be finite numbers in [0, 1]."
        )
    low, high = arr.min(initial=0.0), arr.max(initial=1.0)
    # a little float round-off (e.g. 1 + 1e-16 from a softmax) is tolerated
    if low < -1e-9 or high > 1 + 1e-9:
        raise ValueError(
            f"{where} returned values outside [0, 1] (min {low:.6g}, max "
            f"{high:.6g}): probabilities are needed, not scores or logits."
        )
    return np.clip(arr, 0.0, 1.0, out=arr)
