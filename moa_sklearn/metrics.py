"""The lish-moa competition metric and a scorer for multilabel probabilities."""

import numbers

import numpy as np
import pandas as pd

__all__ = [
    "mean_columnwise_log_loss",
    "columnwise_log_loss",
    "neg_mean_columnwise_log_loss",
    "multilabel_proba",
]

#: The competition clips every probability to [PROBA_EPS, 1 - PROBA_EPS] before
#: the log; the package's classifiers keep their probabilities inside it too.
PROBA_EPS = 1e-15


def _as_2d_float(a, name):
    if isinstance(a, (pd.DataFrame, pd.Series)):
        a = a.to_numpy()
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {exc}") from None
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 1-D or 2-D array of shape (n_samples, n_labels), "
            f"got an array with {a.ndim} dimensions and shape {a.shape}."
        )
    return a


def _check_log_loss_inputs(y_true, y_proba, eps):
    y_true = _as_2d_float(y_true, "y_true")
    y_proba = _as_2d_float(y_proba, "y_proba")
    if y_true.shape != y_proba.shape:
        raise ValueError(
            f"y_true and y_proba must have the same shape (n_samples, n_labels); "
            f"got y_true {y_true.shape} and y_proba {y_proba.shape}."
        )
    if y_true.shape[0] == 0:
        raise ValueError("y_true and y_proba are empty (0 samples).")
    if not np.all(np.isin(y_true, (0.0, 1.0))):
        raise ValueError(
            "y_true must contain only 0 and 1 (a binary label indicator matrix)."
        )
    if not np.all(np.isfinite(y_proba)):
        raise ValueError("y_proba contains NaN or infinity.")
    if y_proba.min() < 0 or y_proba.max() > 1:
        raise ValueError(
            "y_proba must be probabilities in [0, 1]; got values in "
            f"[{y_proba.min():.4g}, {y_proba.max():.4g}]."
        )
    if not isinstance(eps, numbers.Real) or not 0 <= eps < 0.5:
        raise ValueError(f"eps must be a float in [0, 0.5), got {eps!r}.")
    return y_true, y_proba


def columnwise_log_loss(y_true, y_proba, *, eps=PROBA_EPS):
    """Binary log loss of each label column.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_labels) or (n_samples,)
        Binary label indicator matrix (0/1).
    y_proba : array-like of the same shape
        Predicted probabilities that each label is 1.
    eps : float, default=1e-15
        Probabilities are clipped to ``[eps, 1 - eps]``, as in the competition.

    Returns
    -------
    losses : ndarray of shape (n_labels,)
        The mean binary log loss over rows, for each column.

    Examples
    --------
    >>> from moa_sklearn.metrics import columnwise_log_loss
    >>> columnwise_log_loss([[1, 0], [0, 0]], [[0.5, 0.5], [0.5, 0.5]]).round(4)
    array([0.6931, 0.6931])
    """
    y_true, y_proba = _check_log_loss_inputs(y_true, y_proba, eps)
    p = np.clip(y_proba, eps, 1 - eps)
    losses = -(y_true * np.log(p) + (1 - y_true) * np.log1p(-p))
    return losses.mean(axis=0)


def mean_columnwise_log_loss(y_true, y_proba, *, eps=PROBA_EPS):
    """The lish-moa metric: mean over labels of the binary log loss.

    Each column's binary log loss is averaged over all rows, then the column
    losses are averaged. Probabilities are clipped to ``[eps, 1 - eps]``. This
    is the "all rows" convention of the competition: control rows are scored
    too (their targets are all 0). Restricting to treated rows gives a figure
    about 1.09 times larger on the real data.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_labels) or (n_samples,)
        Binary label indicator matrix (0/1).
    y_proba : array-like of the same shape
        Predicted probabilities that each label is 1.
    eps : float, default=1e-15
        Clipping of the probabilities, as in the competition.

    Returns
    -------
    loss : float

    Examples
    --------
    >>> from moa_sklearn.metrics import mean_columnwise_log_loss
    >>> y_true = [[1, 0], [0, 0], [0, 1]]
    >>> y_proba = [[0.9, 0.1], [0.2, 0.1], [0.1, 0.8]]
    >>> round(mean_columnwise_log_loss(y_true, y_proba), 4)
    0.1446
    """
    return float(columnwise_log_loss(y_true, y_proba, eps=eps).mean())


def multilabel_proba(estimator, X):
    """P(label = 1) of a fitted classifier as one (n_samples, n_labels) array.

    Accepts the shapes that scikit-learn classifiers return:

    - an (n_samples, n_labels) array (this package's nets, MLPClassifier,
      KNeighborsClassifier with a 2-D y, ...) is returned as is;
    - a list of per-label (n_samples, n_classes) arrays (RandomForestClassifier,
      MultiOutputClassifier, ...) is reduced to the column of class 1 of each
      label, with 0 for a label whose training data had no positive;
    - for a single binary target, an (n_samples, 2) array is reduced to the
      probability of the positive class.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    proba : ndarray of shape (n_samples, n_labels)
    """
    return _label_proba(estimator, estimator.predict_proba(X))


def _label_proba(estimator, proba):
    """:func:`multilabel_proba` of an output of ``estimator.predict_proba``."""
    if isinstance(proba, list):
        classes = getattr(estimator, "classes_", None)
        columns = []
        for j, p in enumerate(proba):
            p = np.asarray(p, dtype=np.float64)
            cls = None
            if isinstance(classes, list) and j < len(classes):
                cls = np.asarray(classes[j])
            if cls is None:
                cls = np.arange(p.shape[1])
            hit = np.flatnonzero(cls == 1)
            columns.append(p[:, hit[0]] if hit.size else np.zeros(p.shape[0]))
        return np.column_stack(columns)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(
            f"{type(estimator).__name__}.predict_proba returned an array of shape "
            f"{proba.shape}; expected (n_samples, n_labels) probabilities of "
            "label = 1 or a list of per-label (n_samples, n_classes) arrays."
        )
    return proba


class _MeanColumnwiseLogLossScorer:
    """Scorer: minus the mean columnwise log loss of ``predict_proba``.

    Use it as ``scoring=neg_mean_columnwise_log_loss`` in ``cross_val_score``,
    ``cross_validate`` or ``GridSearchCV``; greater is better, as for every
    scikit-learn scorer.
    """

    def __init__(self, eps=PROBA_EPS):
        self.eps = eps

    def __call__(self, estimator, X, y_true, **kwargs):
        proba = multilabel_proba(estimator, X)
        y = _as_2d_float(y_true, "y_true")
        if proba.shape[1] == 2 and y.shape[1] == 1:
            # a single binary target: keep P(class 1)
            proba = proba[:, 1:]
        return -mean_columnwise_log_loss(y, proba, eps=self.eps)

    def __repr__(self):
        return "neg_mean_columnwise_log_loss"


neg_mean_columnwise_log_loss = _MeanColumnwiseLogLossScorer()
