"""One reader of classifier targets, shared by every classifier of the package.

The nets, the blend and the meta-estimators all take the same kinds of ``y``
(a 2-D 0/1 label matrix, or 1-D binary / multiclass labels) and all hand back
probabilities and labels of the same shapes. :class:`TargetReader` is where
that is decided, once, the way ``MLPClassifier`` keeps one ``LabelBinarizer``:

- :meth:`TargetReader.fit` checks ``y`` and records its kind, classes, dtype
  and column names;
- :meth:`TargetReader.transform` gives ``y`` as a 0/1 float matrix with one
  column per output (a label, or a class one-hot);
- :meth:`TargetReader.proba` turns per-output probabilities into what
  ``predict_proba`` returns and :meth:`TargetReader.labels` turns those into
  what ``predict`` returns.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import assert_all_finite
from sklearn.utils.multiclass import type_of_target

from ..metrics import PROBA_EPS
from ._validation import _as_array

__all__ = ["TargetReader"]


def _is_binary_matrix(Y):
    """True for a numeric (or bool) array holding only 0 and 1."""
    if Y.dtype.kind not in "biuf":
        return False
    return bool(np.isin(Y, (0, 1)).all())


def _check_finite(y, arr, owner):
    """NaN in a label matrix is named by column; other non-finite y as sklearn."""
    if arr.dtype.kind != "f":
        return
    if arr.ndim == 2 and arr.shape[1] > 1 and np.isnan(arr).any():
        bad = np.flatnonzero(np.isnan(arr).any(axis=0))
        names = list(y.columns[bad]) if isinstance(y, pd.DataFrame) else bad.tolist()
        raise ValueError(
            f"{owner}: y contains NaN in column(s) {names[:5]}"
            f"{' and more' if len(bad) > 5 else ''} "
            f"({int(np.isnan(arr).sum())} cell(s)); labels must be 0 or 1."
        )
    # else "Input y contains NaN / infinity", before any cast of the labels
    assert_all_finite(arr, input_name="y")


def _ravel_class_column(arr):
    """A column vector of class labels (not 0/1) is read as 1-D, with a warning."""
    if arr.ndim == 2 and arr.shape[1] == 1 and not _is_binary_matrix(arr):
        warnings.warn(
            "A column-vector y with other values than 0/1 was passed; it is "
            "read as a 1-D class target. Pass a 1-D array (y.ravel()) to "
            "silence this warning, or 0/1 columns for multilabel targets.",
            DataConversionWarning,
            stacklevel=4,
        )
        return arr.ravel()
    return arr


def _class_kind(arr, owner):
    """ "binary" or "multiclass" for 1-D labels, else a ValueError."""
    kind = type_of_target(arr, input_name="y", raise_unknown=True)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"Unknown label type: {kind!r}. {owner} is a classifier: y must be a "
            "0/1 label matrix or 1-D class labels."
        )
    return kind


class TargetReader:
    """Check a classifier target once; encode it; shape predictions back.

    Parameters
    ----------
    owner : str
        Name of the estimator that reads ``y``, for the error messages.

    Attributes
    ----------
    kind : {"multilabel", "binary", "multiclass"}
    classes : ndarray
        ``arange(n_labels)`` for a label matrix, else the sorted class labels.
    dtype : numpy dtype
        The dtype of ``y`` (``predict`` returns it).
    names : ndarray of object or None
        The column names of a DataFrame label matrix.
    """

    def __init__(self, owner):
        self.owner = owner

    def _read(self, y):
        """``y`` as an array, checked for NaN and raveled if a class column."""
        if y is None:
            raise ValueError(
                f"{self.owner} requires y to be passed, but the target y is None."
            )
        arr = _as_array(y)
        _check_finite(y, arr, self.owner)
        return _ravel_class_column(arr)

    def fit(self, y):
        """Check ``y`` and record its kind, classes, dtype and names."""
        return self._fit(y, self._read(y))

    def _fit(self, y, arr):
        """:meth:`fit` of ``y``, read as ``arr`` by :meth:`_read`."""
        owner = self.owner
        self.names = None
        if arr.ndim == 2:
            if not _is_binary_matrix(arr):
                raise ValueError(
                    f"{owner}: a 2-D y must be a 0/1 label indicator matrix of "
                    "shape (n_samples, n_labels); got values "
                    f"{np.unique(arr)[:5].tolist()}... Pass a 1-D y for binary "
                    "or multiclass targets."
                )
            self.kind, self.classes = "multilabel", np.arange(arr.shape[1])
            if isinstance(y, pd.DataFrame):
                self.names = np.asarray(y.columns, dtype=object)
        elif arr.ndim == 1:
            self.kind = _class_kind(arr, owner)
            self.classes = np.unique(arr)
            if self.classes.size < 2:
                raise ValueError(
                    f"y has only one class ({self.classes[0]!r}); {owner} needs "
                    "at least 2 classes (or a 2-D 0/1 label matrix, where a "
                    "label without positives is fine)."
                )
        else:
            raise ValueError(f"y must be 1-D or 2-D, got shape {arr.shape}.")
        self.dtype = arr.dtype
        return self

    @property
    def n_outputs(self):
        """Columns of :meth:`transform` and of ``predict_proba``."""
        return self.classes.size

    def transform(self, y, dtype=np.float64):
        """``y`` as a 0/1 matrix: the label matrix, or its classes one-hot."""
        return self._encode(self._read(y), dtype)

    def _encode(self, arr, dtype):
        if self.kind == "multilabel":
            return arr.astype(dtype)
        codes = np.searchsorted(self.classes, arr)
        return np.eye(self.classes.size, dtype=dtype)[codes]

    def fit_transform(self, y, dtype=np.float64):
        """:meth:`fit`, then :meth:`transform`, reading ``y`` once (one warning)."""
        arr = self._read(y)
        return self._fit(y, arr)._encode(arr, dtype)

    def as_given(self, y):
        """``y`` to pass on to base estimators.

        ``y`` as given (a DataFrame keeps its names), unless a column vector of
        class labels was read as 1-D: then the raveled labels.
        """
        if isinstance(y, (pd.DataFrame, pd.Series)):
            if self.kind == "multilabel" or y.ndim == 1:
                return y
        arr = _as_array(y)
        return arr.ravel() if self.kind != "multilabel" else arr

    def proba(self, proba, *, low=PROBA_EPS, high=1 - PROBA_EPS):
        """Per-output probabilities of shape (n, n_outputs) to ``predict_proba``.

        Labels are clipped to ``[low, high]`` (strictly inside (0, 1) by
        default); class probabilities are clipped the same way and renormalised
        so that every row sums to 1.
        """
        proba = np.clip(np.asarray(proba, dtype=np.float64), low, high)
        if self.kind != "multilabel":
            proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def labels(self, proba):
        """``predict`` from ``predict_proba``.

        For a 2-D target, a label is on where its probability is **above** 0.5
        (``proba > 0.5``, the rule of ``OneVsRestClassifier``), in the dtype of
        the fitted ``y``: a probability of exactly 0.5, the output of a zero
        logit, predicts 0, which agrees with ``proba.round()``. For a 1-D
        target, the most probable of ``classes``.
        """
        if self.kind == "multilabel":
            return (np.asarray(proba) > 0.5).astype(self.dtype)
        return self.classes[np.argmax(proba, axis=1)]
